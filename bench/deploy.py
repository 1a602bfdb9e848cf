"""The engine's own floor for the deploy figures: `pulumi version` and a preview of an empty program.

The empty program runs with the project's runtime (Python, .venv) and engine build, in a
temporary project with its own file backend, so it touches no stack and no database.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from devenv import engine

EMPTY_PROJECT = """name: bench-empty
runtime:
  name: python
  options:
    toolchain: pip
    virtualenv: {venv}
"""


def _timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, text=True, capture_output=True, timeout=300)
    took = time.perf_counter() - started
    if result.returncode != 0:
        output = f"{result.stdout}\n{result.stderr}"
        errors = [" ".join(line.split()) for line in output.splitlines() if "error" in line.lower()]
        detail = "; ".join(dict.fromkeys(errors)) if errors else " ".join(output.split())[-500:]
        raise engine.EngineError(f"`pulumi {' '.join(command[1:3])}` failed: {detail[:600]}")
    return took


def floors(repeats: int = 3) -> dict[str, float]:
    """Median seconds of `pulumi version` and of `pulumi preview` of an empty program."""
    binary = str(engine.pulumi_binary())
    with tempfile.TemporaryDirectory(prefix="bench-empty-") as folder:
        root = Path(folder)
        (root / "Pulumi.yaml").write_text(EMPTY_PROJECT.format(venv=engine.ROOT / ".venv"), encoding="utf-8")
        (root / "__main__.py").write_text('"""An empty program: the engine\'s floor."""\n', encoding="utf-8")
        env = engine.environment("bench-empty")
        env["PULUMI_BACKEND_URL"] = (root / "backend").as_uri()
        env["PULUMI_CONFIG_PASSPHRASE"] = "bench-empty-holds-no-secrets"
        (root / "backend").mkdir()
        version = statistics.median(_timed([binary, "version"], root, env) for _ in range(repeats))
        _timed([binary, "stack", "init", "bench-empty", "--secrets-provider", "passphrase", "--non-interactive"],
               root, env)
        _timed([binary, "preview", "--non-interactive"], root, env)  # warm-up: plugin and bytecode caches
        preview = statistics.median(
            _timed([binary, "preview", "--non-interactive"], root, env) for _ in range(repeats))
    return {"version_s": version, "empty_preview_s": preview}


STACK = "e2e-bench"  # Pulumi.e2e*.yaml is git-ignored: a throwaway stack file
DEPLOY_DB = "bench_deploy"
STACK_FILE = """# Written and removed by bench/deploy.py: migration 013 into the bench's own database.
config:
  habit-tracker-db:phase: 0
  habit-tracker-db:db_host: 127.0.0.1
  habit-tracker-db:db_port: {port}
  habit-tracker-db:db_name: {db}
  habit-tracker-db:db_user: postgres
  habit-tracker-db:db_sslmode: disable
"""


def project_figures(cluster, repeats: int = 3) -> dict[str, float]:
    """`pulumi up` of a fresh stack, a no-op `pulumi preview`, and `invoke smoke-test`, on a
    throwaway stack whose database is DEPLOY_DB (never the local stack's)."""
    import sys

    binary = str(engine.pulumi_binary())
    # The dynamic provider's plugin finds the virtualenv through infra/.venv (see
    # engine.link_program_virtualenv); a fresh clone or worktree has no link until a task made it.
    engine.link_program_virtualenv()
    stack_file = engine.ROOT / f"Pulumi.{STACK}.yaml"
    cluster.drop_database(DEPLOY_DB)
    cluster.create_database(DEPLOY_DB)
    cluster.ensure_app_schema(DEPLOY_DB)
    stack_file.write_text(STACK_FILE.format(port=cluster.port, db=DEPLOY_DB), encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-deploy-") as folder:
            env = engine.environment(STACK)
            env["PULUMI_BACKEND_URL"] = Path(folder).as_uri()
            env["PULUMI_CONFIG_PASSPHRASE"] = "bench-stack-holds-no-secrets"
            base = [binary]
            tail = ["--stack", STACK, "--non-interactive"]
            _timed([binary, "stack", "init", STACK, "--secrets-provider", "passphrase", "--non-interactive"],
                   engine.ROOT, env)
            up = _timed([*base, "up", "--yes", "--skip-preview", *tail], engine.ROOT, env)
            preview = statistics.median(
                _timed([*base, "preview", "--expect-no-changes", *tail], engine.ROOT, env) for _ in range(repeats))
            invoke = str(Path(sys.executable).parent / "invoke")
            smoke = statistics.median(
                _timed([invoke, "smoke-test", "--stack", STACK], engine.ROOT, env) for _ in range(repeats))
            _timed([*base, "destroy", "--yes", "--skip-preview", *tail], engine.ROOT, env)
    finally:
        stack_file.unlink(missing_ok=True)
        cluster.drop_database(DEPLOY_DB)
    return {"up_s": up, "noop_preview_s": preview, "smoke_test_s": smoke}
