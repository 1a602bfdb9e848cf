"""Deploy locks on a `postgres://` team backend: kept while their deploy runs, removed once it is dead.

The backend keeps each lock as a row of `pulumi_state` (devenv/deploy_lock.py). A deploy cut
off by SIGKILL (a cancelled CI job) leaves its lock and its plugins: the next `invoke up` on
this host removes that lock alone and stops those plugins. `invoke cancel` never removes the
lock of a deploy that still runs here without `--force`, and says "no lock" when there is none.
The backend, the database and the engine's workspace settings are the test's own.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import time
import uuid

import psycopg
import pytest

from devenv import engine_processes
from tests.e2e import gitops_support as support

pytestmark = [pytest.mark.engine, pytest.mark.db]


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    support.sweep_stale()
    state = support.cluster("locks-state", dbname="ops")
    target = support.cluster("locks")
    target.ensure_app_schema()
    url = support.backend_url(state, "ops")
    stack = support.stack_name("locks")
    stack_file = support.ROOT / f"Pulumi.{stack}.yaml"
    env = {**os.environ, "PULUMI_BACKEND_URL": url, "PULUMI_CONFIG_PASSPHRASE": support.PASSPHRASE,
           "PULUMI_HOME": str(tmp_path_factory.mktemp("pulumi-home"))}
    try:
        stack_file.write_text(support.stack_file_text(target, extra={"lock_timeout": "30s"}))
        yield state, target, url, stack, env
    finally:
        stack_file.unlink(missing_ok=True)
        target.destroy()
        state.destroy()


def invoke(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(support.ROOT / ".venv" / "bin" / "invoke"), *args], cwd=support.ROOT, env=env,
                          text=True, capture_output=True, timeout=600)


def lock_rows(state) -> dict[str, dict]:
    """The backend's lock rows of any stack, decoded ({"data": base64 of the engine's JSON})."""
    with psycopg.connect(state.db_url("ops")) as conn:
        rows = conn.execute("SELECT key, data::text FROM pulumi_state WHERE key LIKE '%/.pulumi/locks/%'").fetchall()
    return {key: json.loads(base64.b64decode(json.loads(data)["data"])) for key, data in rows}


def write_lock(state, stack: str, pid: int) -> str:
    """A lock as the engine writes it (pkg/backend/diy/lock.go), for a process that is no deploy."""
    key = f"ops/.pulumi/locks/organization/habit-tracker-db/{stack}/{uuid.uuid4()}.json"
    content = {"pid": pid, "username": "ci", "hostname": socket.gethostname(), "timestamp": "2026-12-02T06:00:00Z"}
    data = {"data": base64.b64encode(json.dumps(content).encode()).decode()}
    with psycopg.connect(state.db_url("ops")) as conn:
        conn.execute("INSERT INTO pulumi_state (key, data) VALUES (%s, %s)", (key, json.dumps(data)))
    return key


def deploy_processes(url: str) -> list[engine_processes.EngineProcess]:
    """The engine processes (CLI, plugins, their Python) of this test's backend."""
    return [p for p in engine_processes.marked(engine_processes.CHECKOUT_VARIABLE, str(support.ROOT))
            if p.environ.get("PULUMI_BACKEND_URL") == url]


def test_a_live_deploys_lock_is_kept_and_a_killed_ones_is_removed_by_the_next_up(team):
    state, target, url, stack, env = team
    blocker = psycopg.connect(target.db_url())  # an app transaction that the deploy's trigger waits for
    deploy = None
    try:
        blocker.execute("LOCK TABLE public.habit_tracker IN ACCESS EXCLUSIVE MODE")
        deploy = subprocess.Popen([str(support.ROOT / ".venv" / "bin" / "invoke"), "up", "--stack", stack],
                                  cwd=support.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, start_new_session=True)
        waiting = []
        for _ in range(1200):
            with psycopg.connect(target.db_url(), autocommit=True) as conn:
                waiting = conn.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                       "AND query LIKE '%TRIGGER trigger_habit_tracker_dual_write%'").fetchall()
            if waiting or deploy.poll() is not None:
                break
            time.sleep(0.1)
        assert waiting, deploy.communicate()[0]
        [(key, lock)] = lock_rows(state).items()
        assert f"/habit-tracker-db/{stack}/" in key and lock["hostname"] == socket.gethostname()

        # Its process runs: cancel refuses, in one paragraph, and the lock stays.
        refused = invoke("cancel", "--stack", stack, env=env)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "still running on this host" in refused.stderr and f"pid {lock['pid']}" in refused.stderr
        assert "Traceback" not in refused.stderr and "--force" in refused.stderr
        assert list(lock_rows(state)) == [key] and deploy.poll() is None

        # A cancelled CI job: SIGKILL to the job's process group. The plugins have groups of their own.
        before = {p.pid for p in deploy_processes(url)}
        os.killpg(deploy.pid, signal.SIGKILL)
        deploy.wait()
        time.sleep(0.5)
        left = [p for p in deploy_processes(url) if p.pid in before]  # the plugins and what they run
        megabytes = sum(p.rss_kb for p in left) / 1024
        print(f"left running by the killed deploy: {len(left)} processes, {megabytes:.0f} MB")
        assert [p for p in left if p.ppid == 1], "the killed deploy left no plugin running: nothing to reap"
    finally:
        if deploy is not None and deploy.poll() is None:  # an assertion failed before the kill
            os.killpg(deploy.pid, signal.SIGKILL)
            deploy.wait()
        blocker.rollback()
        blocker.close()

    again = invoke("up", "--stack", stack, env=env)  # no manual step on the same host
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"removed the lock of a cut-off deploy of stack '{stack}' (pid {lock['pid']} is gone)" in again.stdout
    assert f"stopped {len(left)} engine process(es)" in again.stdout
    assert not [p for p in deploy_processes(url) if p.pid in before]
    assert lock_rows(state) == {}
    preview = invoke("preview", "--expect-no-changes", "--stack", stack, env=env)
    assert preview.returncode == 0, preview.stdout[-3000:] + preview.stderr[-3000:]


def test_cancel_says_what_it_did_and_removes_a_live_lock_only_when_forced(team):
    state, target, url, stack, env = team
    nothing = invoke("cancel", "--stack", stack, env=env)
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout.strip() == f"stack '{stack}': no lock; nothing was changed"
    assert "canceled" not in nothing.stdout

    dead = subprocess.Popen(["sleep", "0"])
    dead.wait()
    stale = write_lock(state, stack, dead.pid)
    removed = invoke("cancel", "--stack", stack, env=env)
    assert removed.returncode == 0, removed.stderr
    assert "lock removed" in removed.stdout and f"pid {dead.pid}" in removed.stdout
    assert stale not in lock_rows(state)

    other = write_lock(state, "another-stack", dead.pid)  # another stack's lock is never touched
    holder = subprocess.Popen(["sleep", "300"])  # alive, on this host: cancel cannot know it is no deploy
    try:
        live = write_lock(state, stack, holder.pid)
        refused = invoke("cancel", "--stack", stack, env=env)
        assert refused.returncode == 1 and "still running on this host" in refused.stderr
        assert live in lock_rows(state)
        forced = invoke("cancel", "--stack", stack, "--force", env=env)
        assert forced.returncode == 0, forced.stderr
        assert f"pid {holder.pid}" in forced.stdout
        assert list(lock_rows(state)) == [other]
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("name, says", [
    ("../x", "'../x' is not a stack name"),
    ("e2e-gitops-no-such-stack", "does not exist in the state backend postgres://127.0.0.1"),
])
def test_cancel_of_a_bad_or_unknown_stack_is_one_paragraph(team, name, says):
    state, target, url, stack, env = team
    before = lock_rows(state)
    result = invoke("cancel", "--stack", name, env=env)
    assert result.returncode == 1
    assert says in result.stderr and "nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert lock_rows(state) == before
