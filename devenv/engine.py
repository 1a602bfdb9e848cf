"""Running the real Pulumi CLI with the project's environment, fully offline.

The engine binaries come from `scripts/engine/build.sh` (linked at `.tools/bin`), or
from a `pulumi` already on PATH on a normal workstation. State lives in a local file
backend inside the project unless PULUMI_BACKEND_URL says otherwise; secrets use the
passphrase provider; update checks and plugin downloads are off, so no command of
this project ever tries the internet.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable, Mapping, Sequence

from dualwrite.config import PROJECT, ROOT

TOOLS_BIN = ROOT / ".tools" / "bin"
STATE = ROOT / ".state"
# Only the embedded local stack gets a built-in passphrase: it holds no secrets. Every
# real stack needs the team's PULUMI_CONFIG_PASSPHRASE (or _FILE).
LOCAL_PASSPHRASE = "local-stack-holds-no-secrets"


class EngineError(RuntimeError):
    """The engine is missing, or a pulumi command failed."""


def pulumi_binary() -> Path:
    built = TOOLS_BIN / "pulumi"
    if built.exists():
        return built
    ambient = shutil.which("pulumi")
    if ambient:
        return Path(ambient)
    raise EngineError(
        "No Pulumi CLI: neither .tools/bin/pulumi (built by `bash scripts/setup`) nor `pulumi` on PATH. "
        "Run `bash scripts/setup` once; it builds the pinned engine from Go modules."
    )


def environment(stack: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables every pulumi invocation of this project runs with."""
    env = dict(os.environ if base is None else base)
    binary = pulumi_binary()
    # The project's virtualenv first, as `source .venv/bin/activate` would: the language host
    # and the dynamic-provider launcher run `python3` from PATH (the older host built here
    # does not read Pulumi.yaml's `virtualenv` option; see scripts/engine/README.md).
    venv = ROOT / ".venv"
    env["VIRTUAL_ENV"] = str(venv)
    # scripts/engine/plugins: the plugin that starts the policy pack (see the script for why).
    env["PATH"] = os.pathsep.join([str(binary.parent), str(venv / "bin"), str(ROOT / "scripts" / "engine" / "plugins"),
                                   env.get("PATH", "")])
    if binary.parent == TOOLS_BIN:
        # Our own build: plugins and the ambient provider live beside the CLI, not in ~/.pulumi.
        env.setdefault("PULUMI_HOME", str(STATE / "pulumi-home"))
    env.setdefault("PULUMI_BACKEND_URL", (STATE / "backend").as_uri())
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
    env["PULUMI_SKIP_CONFIRMATIONS"] = "true"
    env.setdefault("PULUMI_DIY_BACKEND_NO_LEGACY_WARNING", "true")
    if stack == "local" and "PULUMI_CONFIG_PASSPHRASE" not in env and "PULUMI_CONFIG_PASSPHRASE_FILE" not in env:
        env["PULUMI_CONFIG_PASSPHRASE"] = LOCAL_PASSPHRASE
    env["PULUMI_STACK"] = stack
    return env


def _backend_dir(env: Mapping[str, str]) -> Path | None:
    url = env.get("PULUMI_BACKEND_URL", "")
    return Path(url[len("file://") :]) if url.startswith("file://") else None


def run(
    stack: str,
    args: Sequence[str],
    *,
    capture: bool = False,
    check: bool = True,
    extra_env: Mapping[str, str] | None = None,
    input: str | None = None,
    rewrite_line: Callable[[str], str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`pulumi <args> --stack <stack>` in the project directory with the project's environment.

    `input`: what the command reads on stdin (a secret: never an argument, which `ps` shows).
    `rewrite_line`: each line of the engine's output passes through it as it streams (a hint of
    the engine's that would do damage here is replaced by one that does not)."""
    env = environment(stack)
    if extra_env:
        env.update(extra_env)
    backend = _backend_dir(env)
    if backend is not None:
        backend.mkdir(parents=True, exist_ok=True)
    command = [str(pulumi_binary()), *args, "--stack", stack, "--non-interactive"]
    if rewrite_line is not None and not capture:
        return _run_rewriting(command, env, rewrite_line, check=check, args=args, stack=stack)
    result = subprocess.run(command, cwd=ROOT, env=env, text=True, capture_output=capture, input=input)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()[-2000:] if capture else "see the output above"
        raise EngineError(f"`pulumi {' '.join(args)}` failed for stack '{stack}' (exit {result.returncode}): {detail}")
    return result


def _run_rewriting(command: list[str], env: Mapping[str, str], rewrite_line: Callable[[str], str], *,
                   check: bool, args: Sequence[str], stack: str) -> subprocess.CompletedProcess[str]:
    with subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(rewrite_line(line))
            sys.stdout.flush()
    if check and process.returncode != 0:
        raise EngineError(f"`pulumi {' '.join(args)}` failed for stack '{stack}' (exit {process.returncode}): "
                          "see the output above")
    return subprocess.CompletedProcess(command, process.returncode)


def _passphrase_of(env: Mapping[str, str]) -> str | None:
    """The passphrase the engine would use from the environment (the variable, or the file's text)."""
    if env.get("PULUMI_CONFIG_PASSPHRASE") is not None:
        return env["PULUMI_CONFIG_PASSPHRASE"]
    if env.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        try:
            return Path(env["PULUMI_CONFIG_PASSPHRASE_FILE"]).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError:
            return None
    return None


def passphrase_problem(stack: str, env: Mapping[str, str] | None = None) -> str | None:
    """One paragraph when a stack other than `local` has no passphrase to decrypt its secrets."""
    env = os.environ if env is None else env
    if stack == "local":
        return None
    if env.get("PULUMI_CONFIG_PASSPHRASE") is not None or env.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        if _passphrase_of(env) != LOCAL_PASSPHRASE:
            return None
        # A shell activated by an older scripts/activate exports stack local's public passphrase:
        # a real stack's secrets encrypted with it would be readable by anyone with this repository.
        return (f"Stack '{stack}': the passphrase in the environment is stack 'local''s built-in one, which "
                "is public (it is in this repository), so it must not encrypt a real stack's secrets. Set the "
                "team's PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) instead, e.g. in a new "
                "shell; nothing was changed.")
    return (f"Stack '{stack}': no passphrase for its secrets. Set the team's PULUMI_CONFIG_PASSPHRASE (or "
            "PULUMI_CONFIG_PASSPHRASE_FILE, a file holding it) in the environment, as CI does from its "
            "secrets; only stack 'local' has a built-in one. Nothing was changed.")


def _alive(pid: int) -> bool:
    """A process that runs (a zombie, killed and not yet reaped by its parent, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _lock_files(stack: str, env: Mapping[str, str]) -> list[Path]:
    backend = _backend_dir(env)
    locks = backend / ".pulumi" / "locks" if backend else None
    if locks is None or not locks.is_dir():
        return []
    return [p for p in locks.rglob("*.json") if p.parent.name == stack and p.parent.parent.name == PROJECT]


def recover(stack: str) -> list[str]:
    """Undo what a deploy that was cut off (a cancelled CI job) leaves behind, and say what was done.

    - A lock of this stack whose process is gone, on this host, is removed (`pulumi cancel`).
      A lock of a live process or of another host is never touched: one paragraph names the
      exact command, for a person to run once that deploy is known to be dead.
    - Pending creates (objects whose create was cut off) are cleared from the state; the next
      `up` creates them again, and adopts whatever of them did commit.

    File backends only for locks (the default); other backends report their lock in the
    engine's own message.
    """
    env = environment(stack)
    done: list[str] = []
    stale, alive = [], []
    for path in _lock_files(stack, env):
        try:
            lock = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        pid, host = int(lock.get("pid") or 0), str(lock.get("hostname") or "")
        dead = host == socket.gethostname() and pid > 0 and not _alive(pid)
        (stale if dead else alive).append((path, pid, host, lock.get("timestamp", "?")))
    if alive:
        path, pid, host, when = alive[0]
        raise EngineError(
            f"Stack '{stack}' is locked by a deploy that may still run: pid {pid} on {host}, since {when} "
            f"({path}). If that process is gone (a cancelled CI job on another runner), remove the lock with "
            f"`.venv/bin/invoke cancel --stack {stack}` and deploy again; nothing was changed."
        )
    if stale:
        run(stack, ["cancel", "--yes"], capture=True)
        done.append(f"removed the lock of a cut-off deploy of stack '{stack}' (pid {stale[0][1]} is gone)")
    exported = run(stack, ["stack", "export"], capture=True, check=False)
    if exported.returncode == 0 and exported.stdout.strip():
        pending = (json.loads(exported.stdout).get("deployment") or {}).get("pending_operations") or []
        creates = [op for op in pending if op.get("type") == "creating"]
        if creates:
            run(stack, ["refresh", "--yes", "--skip-preview", "--clear-pending-creates"], capture=True)
            names = ", ".join(op["resource"]["urn"].rsplit("::", 1)[-1] for op in creates)
            done.append(f"cleared {len(creates)} create(s) a cut-off deploy left pending ({names}); "
                        "this deploy creates or adopts them")
    return done


def attention(stack: str) -> list[str]:
    """What the last `up` left for a person (a column added by hand, ...), from the stack's outputs."""
    exported = run(stack, ["stack", "export"], capture=True, check=False)
    if exported.returncode != 0 or not exported.stdout.strip():
        return []
    notes = []
    for resource in (json.loads(exported.stdout).get("deployment") or {}).get("resources") or []:
        for item in (resource.get("outputs") or {}).get("attention") or []:
            name = resource["urn"].rsplit("::", 1)[-1]
            notes.append(f"{name}: {item}. The deploy left it as it is; every other object is as declared.")
    return notes


def link_program_virtualenv() -> None:
    """`infra/.venv` -> `../.venv`: the language host built here resolves Pulumi.yaml's
    `virtualenv: .venv` against the program folder (`infra/`), newer hosts against the
    project root; the link makes both find the one virtualenv."""
    link = ROOT / "infra" / ".venv"
    if not link.exists() and not link.is_symlink():
        link.symlink_to(Path("..") / ".venv")


def ensure_stack(stack: str) -> None:
    """Create the stack in the backend on first use (a fresh clone has none)."""
    link_program_virtualenv()
    env = environment(stack)
    backend = _backend_dir(env)
    if backend is not None:
        backend.mkdir(parents=True, exist_ok=True)
    listed = subprocess.run(
        [str(pulumi_binary()), "stack", "ls", "--json"], cwd=ROOT, env=env, text=True, capture_output=True
    )
    if listed.returncode == 0 and any(entry.get("name") == stack for entry in json.loads(listed.stdout or "[]")):
        return
    created = subprocess.run(
        # --no-select: a task never changes which stack a plain `pulumi` in this folder works on.
        [str(pulumi_binary()), "stack", "init", stack, "--secrets-provider", "passphrase", "--no-select",
         "--non-interactive"],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
    )
    if created.returncode != 0 and "already exists" not in created.stderr:
        raise EngineError(f"could not create stack '{stack}': {created.stderr.strip()[-1000:]}")
