"""The team state backend: the CLI's `postgres://` backend in a PostgreSQL cluster of its own.

Two working copies (two copies of this checkout's files, as two clones would be) deploy one
stack whose state lives in table `pulumi_state` of a second local cluster; the stack's
database is a third. Proves: the copies share the state; two concurrent `up` leave one
refused with the lock message and the state intact; the database password, a stack secret,
sits in the state rows only encrypted.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time

import psycopg
import pytest

from tests.e2e import gitops_support as support

pytestmark = [pytest.mark.engine, pytest.mark.db]
PASSWORD = "Team-Backend-Plaintext-9"  # the target trusts loopback: any password connects
LOCK_MESSAGE = "the stack is currently locked by 1 lock(s)"


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    support.sweep_stale()
    state = support.cluster("state", dbname="ops")
    target = support.cluster("team")
    target.ensure_app_schema()
    url = support.backend_url(state, "ops")
    stack = support.stack_name("team")
    copies = [support.copy_project(tmp_path_factory.mktemp(name)) for name in ("laptop", "runner")]
    try:
        yield state, target, url, stack, copies
    finally:
        support.pulumi(stack, ["destroy", "--yes", "--skip-preview"], backend=url, cwd=copies[0], check=False)
        for copy in copies:
            shutil.rmtree(copy, ignore_errors=True)
        target.destroy()
        state.destroy()


def state_rows(state) -> dict[str, str]:
    """Every row of pulumi_state, its data decoded (the CLI stores {"data": base64})."""
    with psycopg.connect(state.db_url("ops")) as conn:
        rows = conn.execute("SELECT key, data::text FROM pulumi_state").fetchall()
    return {key: base64.b64decode(json.loads(data)["data"]).decode("utf-8", "replace") for key, data in rows}


def test_two_working_copies_share_one_stack_and_its_lock(team):
    state, target, url, stack, (laptop, runner) = team
    stack_file = f"Pulumi.{stack}.yaml"
    # The laptop creates the stack and its secret; the stack file travels by git (here: a copy).
    (laptop / stack_file).write_text(support.stack_file_text(target, extra={"lock_timeout": "30s"}))
    support.init_stack(stack, backend=url, cwd=laptop)
    support.pulumi(stack, ["config", "set", "--secret", "habit-tracker-db:db_password", PASSWORD],
                   backend=url, cwd=laptop)
    shutil.copy(laptop / stack_file, runner / stack_file)
    assert PASSWORD not in (runner / stack_file).read_text()

    support.pulumi(stack, ["up", "--yes", "--skip-preview"], backend=url, cwd=laptop)
    # The other copy sees the same stack and state: nothing to change.
    listed = json.loads(support.pulumi(stack, ["stack", "ls", "--json"], backend=url, cwd=runner).stdout)
    assert stack in [entry["name"] for entry in listed]
    support.pulumi(stack, ["preview", "--expect-no-changes"], backend=url, cwd=runner)

    # Secrets: in the rows only encrypted (the update history keeps the stack's config).
    rows = state_rows(state)
    assert rows, "no state in pulumi_state"
    assert all(PASSWORD not in text for text in rows.values())
    history = [text for key, text in rows.items() if key.endswith(".history.json")]
    assert history and all('"habit-tracker-db:db_password":{"secure":"v1:' in text for text in history)

    # Concurrency: the laptop's `up` waits on a table lock the test holds (a long deploy);
    # the runner's `up` of the same stack meanwhile is refused by the backend's lock.
    (laptop / stack_file).write_text((laptop / stack_file).read_text().replace('phase: "0"', 'phase: "1"'))
    shutil.copy(laptop / stack_file, runner / stack_file)
    env = support.environment(stack, url)
    blocker = psycopg.connect(target.db_url())
    try:
        blocker.execute("LOCK TABLE public.habit_tracker IN ACCESS EXCLUSIVE MODE")
        first = subprocess.Popen([str(support.engine.pulumi_binary()), "up", "--yes", "--skip-preview", "--stack",
                                  stack, "--non-interactive"], cwd=laptop, env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not any("/locks/" in key for key in state_rows(state)):
            assert first.poll() is None and time.monotonic() < deadline, "the first up never took the lock"
            time.sleep(0.2)
        second = support.pulumi(stack, ["up", "--yes", "--skip-preview"], backend=url, cwd=runner, check=False)
        assert second.returncode != 0
        assert LOCK_MESSAGE in second.stderr + second.stdout
    finally:
        blocker.rollback()
        blocker.close()
    output, _ = first.communicate(timeout=300)
    assert first.returncode == 0, output[-3000:]

    # The state is intact: one lock gone, both copies agree, no change left to make.
    assert not any("/locks/" in key for key in state_rows(state))
    support.pulumi(stack, ["preview", "--expect-no-changes"], backend=url, cwd=runner)
    exported = json.loads(support.pulumi(stack, ["stack", "export"], backend=url, cwd=runner).stdout)
    types = [r["type"] for r in exported["deployment"]["resources"]]
    assert "pulumi-python:dynamic/migration013:CronJob" in types
    with psycopg.connect(target.db_url()) as conn:
        assert conn.execute("SELECT count(*) FROM cron.job WHERE jobname = 'cleanup_idempotency_log'").fetchone() == (1,)
