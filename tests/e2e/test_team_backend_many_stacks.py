"""A `postgres://` team backend holding 10 stacks: every task works, and nothing hangs.

Before: with 4 or more stacks in the backend `pulumi stack ls` never returned (the engine's
postgres backend lists each stack's state with 10 workers on a pool of 2 x GOMAXPROCS
connections, and each worker needs two), and every task asked for it first. The backend is
a cluster of the test's own; the stacks beside ours are created in a temp folder; the engine's
workspace settings (the selected stack) live in the test's own PULUMI_HOME.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from devenv import engine, engine_processes
from tests.e2e import gitops_support as support

pytestmark = [pytest.mark.engine, pytest.mark.db]
OTHERS = 9  # stacks beside ours: 10 in all
TASK_TIMEOUT = 300  # far above what each task takes; a hang fails the test instead of stalling the suite


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    support.sweep_stale()
    state = support.cluster("many-state", dbname="ops")
    target = support.cluster("many")
    target.ensure_app_schema()
    url = support.backend_url(state, "ops")
    home = tmp_path_factory.mktemp("pulumi-home")
    others = tmp_path_factory.mktemp("other-stacks")
    (others / "Pulumi.yaml").write_text("name: habit-tracker-db\nruntime: python\n")
    stack = support.stack_name("many")
    stack_file = support.ROOT / f"Pulumi.{stack}.yaml"
    try:
        env = cli_env(url, home)
        for number in range(OTHERS):
            created = subprocess.run([str(engine.pulumi_binary()), "stack", "init", f"team-{number}",
                                      "--secrets-provider", "passphrase", "--non-interactive"],
                                     cwd=others, env=env, text=True, capture_output=True, timeout=120)
            assert created.returncode == 0, created.stderr
        stack_file.write_text(support.stack_file_text(target))
        yield state, target, url, stack, home
    finally:
        stack_file.unlink(missing_ok=True)
        target.destroy()
        state.destroy()


def task_env(url: str, home: Path) -> dict[str, str]:
    return {**os.environ, "PULUMI_BACKEND_URL": url, "PULUMI_CONFIG_PASSPHRASE": support.PASSPHRASE,
            "PULUMI_HOME": str(home)}


def cli_env(url: str, home: Path) -> dict[str, str]:
    """The plain CLI as the tasks run it on this backend (no stack chosen by the environment)."""
    env = engine.environment("unused", task_env(url, home))
    env.pop("PULUMI_STACK")
    return env


def run_task(*args: str, url: str, home: Path) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run([str(support.ROOT / ".venv" / "bin" / "invoke"), *args], cwd=support.ROOT,
                                env=task_env(url, home), text=True, capture_output=True, timeout=TASK_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`invoke {' '.join(args)}` did not return in {TASK_TIMEOUT} s (the backend's listing hangs)")
    assert result.returncode == 0, f"invoke {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def selected_stack(url: str, home: Path) -> list[str]:
    listed = subprocess.run([str(engine.pulumi_binary()), "stack", "ls", "--json"], cwd=support.ROOT,
                            env=cli_env(url, home),
                            text=True, capture_output=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    return [entry["name"] for entry in json.loads(listed.stdout) if entry.get("current")]


def test_every_task_works_with_ten_stacks_in_a_postgres_backend(backend):
    state, target, url, stack, home = backend
    env = cli_env(url, home)
    # The user works on another stack in this checkout: the tasks must leave that selection alone.
    select = subprocess.run([str(engine.pulumi_binary()), "stack", "select", "team-0", "--non-interactive"],
                            cwd=support.ROOT, env=env, text=True, capture_output=True, timeout=120)
    assert select.returncode == 0, select.stderr

    run_task("preview", "--stack", stack, url=url, home=home)  # creates the stack: the 10th
    run_task("up", "--stack", stack, url=url, home=home)
    run_task("preview", "--expect-no-changes", "--stack", stack, url=url, home=home)
    smoke = run_task("smoke-test", "--stack", stack, url=url, home=home)
    assert "FAIL" not in smoke.stdout
    run_task("refresh", "--stack", stack, url=url, home=home)
    assert "no changes" in run_task("pr-comment", "--stack", stack, url=url, home=home).stdout
    for name in ("monitor", "drift", "backfill"):
        run_task(name, "--stack", stack, url=url, home=home)
    assert "no lock" in run_task("cancel", "--stack", stack, url=url, home=home).stdout
    run_task("destroy", "--stack", stack, url=url, home=home)

    assert selected_stack(url, home) == ["team-0"]
    listed = subprocess.run([str(engine.pulumi_binary()), "stack", "ls", "--json"], cwd=support.ROOT, env=env,
                            text=True, capture_output=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == OTHERS + 1


def test_an_engine_call_that_hangs_ends_with_one_paragraph(backend):
    """The engine's default of 10 workers, forced back: the listing hangs, the call is stopped."""
    state, target, url, stack, home = backend
    hang = {"PULUMI_BACKEND_URL": url, "PULUMI_CONFIG_PASSPHRASE": support.PASSPHRASE, "PULUMI_HOME": str(home),
            "PULUMI_DIY_BACKEND_PARALLEL": "10"}
    with pytest.raises(engine.EngineError) as raised:
        engine.run(stack, ["stack", "ls", "--json"], capture=True, extra_env=hang, timeout=10)
    message = str(raised.value)
    assert "did not finish in 10 s and was stopped" in message and "\n" not in message
    assert "postgres://127.0.0.1" in message and support.PASSPHRASE not in message
    # The stopped CLI is gone, and left nothing running.
    left = [p for p in engine_processes.marked(engine_processes.CHECKOUT_VARIABLE, str(support.ROOT))
            if p.environ.get("PULUMI_BACKEND_URL") == url]
    assert left == []
