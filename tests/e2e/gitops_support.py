"""What the GitOps tests share: their own clusters, stacks, backends and working copies.

Everything here is owned by the test session that makes it: clusters named
`gitops-<pid>-<what>` on free loopback ports (data in .state/pg, destroyed afterwards),
stacks named `e2e-gitops-<pid>-<what>` (their files `Pulumi.e2e*.yaml` are git-ignored),
backends in temp dirs or in a cluster of their own. Nothing touches stack `local`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from devenv import engine  # noqa: F401  (tests use support.engine)
from devenv.localdb import STATE_DIR, LocalCluster

ROOT = Path(__file__).resolve().parents[2]
PID = os.getpid()
PASSPHRASE = "e2e-gitops-passphrase"
SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "40",
            # the gate's performance row reads pg_stat_user_functions, which needs this
            "track_functions": "pl"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sweep_stale() -> None:
    """Clusters and stack files left by killed sessions of these tests (their pid is gone)."""
    for path in list(STATE_DIR.glob("gitops-*")) if STATE_DIR.is_dir() else []:
        pid = path.name.split("-")[1] if path.name.count("-") >= 2 else ""
        if pid.isdigit() and path.is_dir() and not os.path.exists(f"/proc/{pid}"):
            LocalCluster(name=path.name).destroy()
    for path in ROOT.glob("Pulumi.e2e-gitops-*.yaml"):
        pid = path.name.split("-")[2]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            path.unlink(missing_ok=True)


def cluster(what: str, dbname: str = "habit_tracker") -> LocalCluster:
    """A started cluster of our own (pg_cron's database = `dbname`)."""
    own = LocalCluster(name=f"gitops-{PID}-{what}", port=free_port(), dbname=dbname, settings=SETTINGS)
    own.destroy()
    own.start()
    return own


def stack_name(what: str) -> str:
    return f"e2e-gitops-{PID}-{what}"


def stack_file_text(cluster_: LocalCluster, *, phase: int = 0, promotes_from: str | None = None,
                    extra: Mapping[str, str] | None = None) -> str:
    lines = [
        "config:",
        f'  habit-tracker-db:phase: "{phase}"',
        "  habit-tracker-db:db_host: 127.0.0.1",
        f'  habit-tracker-db:db_port: "{cluster_.port}"',
        f"  habit-tracker-db:db_name: {cluster_.dbname}",
        "  habit-tracker-db:db_sslmode: disable",
    ]
    if promotes_from:
        lines.append(f"  habit-tracker-db:promotes_from: {promotes_from}")
    lines += [f'  habit-tracker-db:{key}: "{value}"' for key, value in (extra or {}).items()]
    return "\n".join(lines) + "\n"


def backend_url(backend: LocalCluster, dbname: str = "pulumi_state") -> str:
    """The CLI's postgres:// backend in a database of its own (the CLI creates table pulumi_state)."""
    return f"postgres://postgres@127.0.0.1:{backend.port}/{dbname}?sslmode=disable"


def environment(stack: str, backend: str, **extra: str) -> dict[str, str]:
    env = engine.environment(stack)
    env["PULUMI_BACKEND_URL"] = backend
    env["PULUMI_CONFIG_PASSPHRASE"] = PASSPHRASE
    env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
    env.update(extra)
    return env


def pulumi(stack: str, args: Sequence[str], *, backend: str, cwd: Path = ROOT, check: bool = True,
           timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The real CLI, `--stack` and `--non-interactive` added, with our own backend and passphrase."""
    command = [str(engine.pulumi_binary()), *args, "--stack", stack, "--non-interactive"]
    result = subprocess.run(command, cwd=cwd, env=environment(stack, backend), text=True, capture_output=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"pulumi {' '.join(args)} (stack {stack}, in {cwd}) exited {result.returncode}:\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def init_stack(stack: str, *, backend: str, cwd: Path = ROOT) -> None:
    command = [str(engine.pulumi_binary()), "stack", "init", stack, "--secrets-provider", "passphrase",
               "--non-interactive"]
    result = subprocess.run(command, cwd=cwd, env=environment(stack, backend), text=True, capture_output=True)
    assert result.returncode == 0 or "already exists" in result.stderr, result.stderr


def invoke(*args: str, cwd: Path = ROOT, env: Mapping[str, str] | None = None,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "invoke"), *args], cwd=cwd,
                            env=dict(env or os.environ), text=True, capture_output=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"invoke {' '.join(args)} exited {result.returncode}\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def copy_project(dest: Path) -> Path:
    """A working copy: the tracked files of this checkout (what a clone has), nothing of .state."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    # What `bash scripts/setup` makes in a clone: its virtualenv (here the checkout's own, linked).
    (dest / ".venv").symlink_to(ROOT / ".venv")
    (dest / "infra" / ".venv").symlink_to(Path("..") / ".venv")
    return dest
