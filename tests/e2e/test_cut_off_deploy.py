"""A deploy cut off from the outside leaves nothing running, and the next task needs no manual step.

- `invoke up | head`: the reader goes away, the CLI dies of SIGPIPE at its next line; the task
  stops the plugins it left (they had groups of their own and would serve for ever).
- The task itself killed (SIGKILL to invoke alone): the CLI gets SIGINT (PR_SET_PDEATHSIG), so
  the engine cancels as on Ctrl-C, closes its plugins and unlocks the stack itself.
Each deploy waits on a table lock the test holds, so it is cut off mid-way, on a stack of the
test's own (file backend in a temp dir, its own cluster).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from devenv import engine_processes

pytestmark = [pytest.mark.engine, pytest.mark.db]


def start_blocked_up(stack, **popen) -> tuple[subprocess.Popen, list[engine_processes.EngineProcess]]:
    """`invoke up` while the test holds habit_tracker: returns once the trigger's CREATE waits."""
    deploy = subprocess.Popen([str(Path(sys.executable).parent / "invoke"), "up", "--stack", stack.name],
                              cwd=stack.root, env=stack.env, **popen)
    for _ in range(1200):
        waiting = stack.query("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                              "AND query LIKE '%TRIGGER trigger_habit_tracker_dual_write%'")
        if waiting or deploy.poll() is not None:
            break
        time.sleep(0.1)
    assert waiting, f"the deploy never waited on the lock (exit {deploy.poll()})"
    return deploy, of_stack(stack)


def of_stack(stack) -> list[engine_processes.EngineProcess]:
    return [p for p in engine_processes.marked(engine_processes.CHECKOUT_VARIABLE, str(stack.root))
            if p.environ.get("PULUMI_STACK") == stack.name]


def still_running(processes: list[engine_processes.EngineProcess]) -> list[engine_processes.EngineProcess]:
    pids = {p.pid for p in processes}
    return [p for p in engine_processes.processes() if p.pid in pids]


def locks(stack) -> list[Path]:
    return list((stack.backend / ".pulumi" / "locks").rglob("*.json"))


def test_a_deploy_whose_reader_goes_away_is_cancelled_and_leaves_nothing_running(e2e_stack):
    """`invoke up | head`: the task's reader goes away. The CLI writes to a file the task relays, so it
    never dies of SIGPIPE half-way: the task cancels it as on Ctrl-C, which unlocks the stack and
    stops its plugins."""
    stack = e2e_stack()
    app = psycopg.connect(stack.cluster.db_url())
    try:
        app.execute("LOCK TABLE public.habit_tracker IN ACCESS EXCLUSIVE MODE")
        deploy, engine = start_blocked_up(stack, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert [p for p in engine if not p.is_cli], "no plugin started"
        deploy.stdout.close()  # `| head` has read its lines and exits
    finally:
        app.rollback()  # the trigger is created, the task relays the CLI's next line: its reader is gone
        app.close()
    _, stderr = deploy.communicate(timeout=300)
    assert deploy.returncode != 0
    deadline = time.monotonic() + 120
    while still_running(engine) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert still_running(engine) == [], stderr
    assert locks(stack) == [], stderr

    stack.invoke("up")
    stack.invoke("preview", "--expect-no-changes")


def test_a_killed_task_cancels_its_deploy_which_unlocks_the_stack(e2e_stack):
    stack = e2e_stack()
    app = psycopg.connect(stack.cluster.db_url())
    try:
        app.execute("LOCK TABLE public.habit_tracker IN ACCESS EXCLUSIVE MODE")
        deploy, engine = start_blocked_up(stack, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        [cli] = [p for p in engine if p.is_cli]
        os.kill(deploy.pid, signal.SIGKILL)  # the task alone: its CLI now has no parent to report to
        deploy.wait()
        time.sleep(1)
        assert locks(stack), "the CLI was stopped at once, not cancelled"
    finally:
        app.rollback()  # the create in flight finishes; the engine then stops and unlocks
        app.close()
    deadline = time.monotonic() + 120
    while still_running(engine) and time.monotonic() < deadline:
        time.sleep(0.2)
    output = deploy.stdout.read()
    assert still_running(engine) == [], output
    assert locks(stack) == [], output
    history = json.loads(stack.pulumi("stack", "history", "--json").stdout)
    # Cancelled, not run to its end. (What the CLI printed while cancelling went to the file its
    # killed task relayed; nobody reads it: the history is the record.)
    assert history[0]["result"] == "failed", output
    stack.invoke("up")  # no lock, nothing left: the next deploy just runs
    stack.invoke("preview", "--expect-no-changes")


def test_ctrl_c_lets_the_engine_cancel_and_unlock(e2e_stack):
    """Ctrl-C reaches the task and its CLI (one process group): the task waits for the engine's cancel."""
    stack = e2e_stack()
    app = psycopg.connect(stack.cluster.db_url())
    try:
        app.execute("LOCK TABLE public.habit_tracker IN ACCESS EXCLUSIVE MODE")
        deploy, engine = start_blocked_up(stack, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                          start_new_session=True)
        os.killpg(deploy.pid, signal.SIGINT)  # what the terminal sends to its foreground group
        time.sleep(1)
        assert locks(stack), "the CLI was stopped at once, not cancelled"
    finally:
        app.rollback()
        app.close()
    output, _ = deploy.communicate(timeout=300)
    time.sleep(0.5)
    assert still_running(engine) == [], output
    assert locks(stack) == [], output
    assert json.loads(stack.pulumi("stack", "history", "--json").stdout)[0]["result"] == "failed", output
    again = stack.invoke("up")
    assert "removed the lock" not in again.stdout and "stopped" not in again.stdout
    stack.invoke("preview", "--expect-no-changes")
