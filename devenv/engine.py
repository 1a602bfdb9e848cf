"""Running the real Pulumi CLI with the project's environment, fully offline.

The engine binaries come from `scripts/engine/build.sh` (linked at `.tools/bin`), or
from a `pulumi` already on PATH on a normal workstation. State lives in a local file
backend inside the project unless PULUMI_BACKEND_URL says otherwise; secrets use the
passphrase provider; update checks and plugin downloads are off, so no command of
this project ever tries the internet.

Process hygiene: the CLI gets SIGINT when the task that started it dies, Ctrl-C lets the
engine cancel on its own, and plugins left by a CLI that was killed anyway are stopped
(devenv/engine_processes.py). Locks are read where the backend keeps them, file or
`postgres://` (devenv/deploy_lock.py). Calls that only touch the backend have a timeout.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Callable, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from devenv import deploy_lock, engine_processes
from dualwrite.config import ROOT
from dualwrite.stack_engine import EngineError  # the library's error, raised here too (callers import it from either)

TOOLS_BIN = ROOT / ".tools" / "bin"
STATE = ROOT / ".state"
# Only the embedded local stack gets a built-in passphrase: it holds no secrets. Every
# real stack needs the team's PULUMI_CONFIG_PASSPHRASE (or _FILE).
LOCAL_PASSPHRASE = "local-stack-holds-no-secrets"
# Commands that only read or write the backend (stack export, stack init, cancel) take seconds;
# one that hangs (a backend that stops answering) ends with a paragraph, not a wait for ever.
BACKEND_CALL_TIMEOUT = 120.0
# What Pulumi accepts as a project stack's name, and what Pulumi.<stack>.yaml can be named.
STACK_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


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
    # Every engine process (the CLI, its plugins, the Python they run) inherits this: what a
    # cut-off deploy of this checkout left running is found by it (devenv/engine_processes.py).
    env[engine_processes.CHECKOUT_VARIABLE] = str(ROOT)
    if deploy_lock.is_postgres(env["PULUMI_BACKEND_URL"]):
        # The postgres:// backend reads each stack's state with 10 workers by default, and each
        # holds a pooled connection with a listing's rows open while it asks for a second one;
        # the pool has 2 x GOMAXPROCS connections, so from 4 stacks on (2 cores) every worker
        # waits for ever and `pulumi stack ls` never returns. One worker needs 2 of them.
        env["PULUMI_DIY_BACKEND_PARALLEL"] = "1"
    return env


def check_stack_name(stack: str) -> None:
    if not STACK_NAME.match(stack) or stack in (".", ".."):
        raise EngineError(
            f"'{stack}' is not a stack name: a stack is named with letters, digits, '-', '_' and '.' "
            "(at most 100), as its file Pulumi.<stack>.yaml is; nothing was changed."
        )


def backend_shown(env: Mapping[str, str]) -> str:
    """The backend's URL without a user, password or query, for messages."""
    parts = urlsplit(env.get("PULUMI_BACKEND_URL", ""))
    return urlunsplit(parts._replace(netloc=parts.hostname or "", query="")) if parts.netloc else parts.geturl()


def _backend_dir(env: Mapping[str, str]) -> Path | None:
    url = env.get("PULUMI_BACKEND_URL", "")
    return Path(url[len("file://") :]) if url.startswith("file://") else None


def _die_with_parent(parent: int) -> None:
    """In the CLI's process, before it starts: SIGINT when the task that started it dies, so the
    deploy of a killed task cancels as Ctrl-C would (the engine finishes what is in flight,
    unlocks the stack and closes its plugins) instead of running on unowned."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGINT)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGINT)


def call(
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    capture: bool = False,
    timeout: float | None = None,
    what: str = "",
    input: str | None = None,
    rewrite_line: Callable[[str], str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The CLI, `pulumi <args>`, in the project directory.

    - `input`: what it reads on stdin (a secret: never an argument, which `ps` shows).
    - `rewrite_line`: each line of its output passes through it as it streams (a hint of the
      engine's that would do damage here is replaced by one that does not); not with `capture`.

    - It gets SIGINT if this process dies (Linux), and cancels as on Ctrl-C.
    - Ctrl-C reaches it and this process alike: this process waits for the engine's own
      cancel (a second Ctrl-C stops it at once), where `subprocess.run` would SIGKILL it after
      0.25 s and leave its lock and its plugins behind.
    - Over `timeout` seconds it is stopped, with an EngineError paragraph.
    - Cut off by a signal (SIGKILL, SIGPIPE), the plugins it left are stopped.
    """
    parent = os.getpid()
    command = [str(pulumi_binary()), *args]
    pipe = subprocess.PIPE if capture else None
    # A streamed command writes to an unlinked file that this process relays line by line, never to
    # a pipe: a pipe would close with this process, and a CLI cancelling after its task was killed
    # would die of SIGPIPE at its next line instead of finishing its cancel and unlocking the stack.
    relay = tempfile.TemporaryFile() if rewrite_line is not None and not capture else None
    preexec = (lambda: _die_with_parent(parent)) if _LIBC is not None else None
    with subprocess.Popen(command, cwd=ROOT, env=dict(env), text=True,
                          stdin=subprocess.PIPE if input is not None else None,
                          stdout=relay if relay is not None else pipe, stderr=pipe,
                          preexec_fn=preexec) as process:
        try:
            if relay is not None:
                assert rewrite_line is not None
                if input is not None and process.stdin is not None:
                    process.stdin.write(input)
                    process.stdin.close()
                _relay_lines(process, relay, rewrite_line, timeout)
                stdout, stderr = None, None
            else:
                stdout, stderr = process.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            engine_processes.reap_orphans(ROOT)
            raise EngineError(
                f"`pulumi {' '.join(args)}`{what} did not finish in {timeout:.0f} s and was stopped. It only reads "
                f"or writes the state backend ({backend_shown(env)}), so that backend did not answer: check that it "
                "is reachable and not overloaded, then run the task again; the deploy itself was not started."
            ) from None
        except KeyboardInterrupt:
            print("note: waiting for the engine to cancel (Ctrl-C again stops it now)", file=sys.stderr)
            process.communicate()
            raise
    if relay is not None:
        relay.close()
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if result.returncode < 0:  # killed (SIGKILL, SIGPIPE): its plugins were left to pid 1
        note = engine_processes.reap_orphans(ROOT)
        if note:
            print(f"note: {note}", file=sys.stderr)
    return result


def _relay_lines(process: subprocess.Popen[str], relay: IO[bytes], rewrite_line: Callable[[str], str],
                 timeout: float | None) -> None:
    """Copy the CLI's output from `relay` to stdout as it grows, each whole line through `rewrite_line`.
    If this process's own reader goes away (`invoke up | head`), the CLI is cancelled as on Ctrl-C
    (SIGINT: it finishes its step, unlocks the stack, stops its plugins) and its output is dropped."""
    deadline = None if timeout is None else time.monotonic() + timeout
    position, pending, reader_gone = 0, b"", False
    while True:
        finished = process.poll() is not None
        chunk = os.pread(relay.fileno(), 1 << 16, position)
        position += len(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if finished and not chunk and pending:
            lines, pending = [*lines, pending], b""
        for line in lines:
            if reader_gone:
                break
            try:
                sys.stdout.write(rewrite_line(line.decode("utf-8", "replace") + "\n"))
                sys.stdout.flush()
            except BrokenPipeError:
                reader_gone = True
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                process.send_signal(signal.SIGINT)
        if finished and not chunk:
            return
        if deadline is not None and time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(process.args, timeout or 0)
        if not chunk:
            time.sleep(0.05)


def run(
    stack: str,
    args: Sequence[str],
    *,
    capture: bool = False,
    check: bool = True,
    extra_env: Mapping[str, str] | None = None,
    timeout: float | None = None,
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
    result = call([*args, "--stack", stack, "--non-interactive"], env, capture=capture, timeout=timeout,
                  what=f" for stack '{stack}'", input=input, rewrite_line=None if capture else rewrite_line)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()[-2000:] if capture else "see the output above"
        raise EngineError(f"`pulumi {' '.join(args)}` failed for stack '{stack}' (exit {result.returncode}): {detail}")
    return result


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


def _locks(stack: str, env: Mapping[str, str]) -> list[deploy_lock.DeployLock]:
    try:
        return deploy_lock.stack_locks(stack, env)
    except deploy_lock.LockError as error:
        raise EngineError(f"Stack '{stack}': {error}") from None


def _remove(lock: deploy_lock.DeployLock, stack: str, env: Mapping[str, str]) -> bool:
    try:
        return deploy_lock.remove(lock, env)
    except deploy_lock.LockError as error:
        raise EngineError(f"Stack '{stack}': {error}") from None


def recover(stack: str) -> list[str]:
    """Undo what a deploy that was cut off (a cancelled CI job) leaves behind, and say what was done.

    - Engine plugins an earlier cut-off run of this checkout left running are stopped.
    - A lock of this stack whose process is gone, on this host, is removed, that lock alone
      (file and postgres:// backends, devenv/deploy_lock.py). A lock of a live process or of
      another host is never touched: one paragraph names the exact command, for a person to
      run once that deploy is known to be dead.
    - Pending creates (objects whose create was cut off) are cleared from the state; the next
      `up` creates them again, and adopts whatever of them did commit.
    """
    env = environment(stack)
    done: list[str] = []
    stopped = engine_processes.reap_orphans(ROOT)
    if stopped:
        done.append(stopped)
    locks = _locks(stack, env)
    alive = [lock for lock in locks if lock.process_alive]
    if alive:
        lock = alive[0]
        raise EngineError(
            f"Stack '{stack}' is locked by a deploy that may still run: pid {lock.pid} on {lock.hostname}, since "
            f"{lock.timestamp} ({lock.key}). If that process is gone (a cancelled CI job on another runner), remove "
            f"the lock with `.venv/bin/invoke cancel --stack {stack}` and deploy again; nothing was changed."
        )
    for lock in locks:
        if _remove(lock, stack, env):
            done.append(f"removed the lock of a cut-off deploy of stack '{stack}' (pid {lock.pid} is gone)")
    exported = run(stack, ["stack", "export"], capture=True, check=False, timeout=BACKEND_CALL_TIMEOUT)
    if exported.returncode == 0 and exported.stdout.strip():
        pending = (json.loads(exported.stdout).get("deployment") or {}).get("pending_operations") or []
        creates = [op for op in pending if op.get("type") == "creating"]
        if creates:
            run(stack, ["refresh", "--yes", "--skip-preview", "--clear-pending-creates"], capture=True)
            names = ", ".join(op["resource"]["urn"].rsplit("::", 1)[-1] for op in creates)
            done.append(f"cleared {len(creates)} create(s) a cut-off deploy left pending ({names}); "
                        "this deploy creates or adopts them")
    return done


def cancel(stack: str, *, force: bool = False) -> str:
    """Remove a stack's deploy locks, saying what was removed; a lock of a process that still runs
    on this host only with `force`."""
    check_stack_name(stack)
    env = environment(stack)
    if not deploy_lock.supported(env):
        if not force:
            raise EngineError(
                f"Stack '{stack}': the state backend {backend_shown(env)} is neither file:// nor postgres://, so "
                "its locks cannot be read here to tell a live deploy's from a dead one. Make sure no deploy of "
                f"the stack runs, then `invoke cancel --stack {stack} --force` (`pulumi cancel`); nothing was changed."
            )
        run(stack, ["cancel", "--yes"], capture=True, timeout=BACKEND_CALL_TIMEOUT)
        return f"stack '{stack}': every lock removed (`pulumi cancel`)"
    if not stack_exists(stack, env):
        raise EngineError(
            f"Stack '{stack}' does not exist in the state backend {backend_shown(env)}: no stack there has that "
            "name, so it has no lock. Check the name (`pulumi stack ls`) and PULUMI_BACKEND_URL; nothing was changed."
        )
    locks = _locks(stack, env)
    if not locks:
        return f"stack '{stack}': no lock; nothing was changed"
    running = [lock for lock in locks if lock.here and deploy_lock.alive(lock.pid)]
    if running and not force:
        lock = running[0]
        raise EngineError(
            f"Stack '{stack}' is locked by a deploy that is still running on this host: {lock.describe()}. Let "
            f"it finish, or stop it (Ctrl-C in its terminal, or `kill -INT {lock.pid}`: the engine then unlocks "
            f"the stack itself). Only if that process is not a deploy, `invoke cancel --stack {stack} --force` "
            "removes the lock anyway; nothing was changed."
        )
    removed = [lock for lock in locks if _remove(lock, stack, env)]
    if not removed:
        return f"stack '{stack}': no lock (its deploy ended meanwhile); nothing was changed"
    return f"stack '{stack}': lock removed ({'; '.join(lock.describe() for lock in removed)})"


def attention(stack: str) -> list[str]:
    """What the last `up` left for a person (a column added by hand, ...), from the stack's outputs."""
    exported = run(stack, ["stack", "export"], capture=True, check=False, timeout=BACKEND_CALL_TIMEOUT)
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


def stack_exists(stack: str, env: Mapping[str, str]) -> bool:
    """That one stack's own state, read (`stack export`, which reads and selects nothing else):
    no listing of every stack in the backend."""
    folder = _backend_dir(env)
    if folder is not None and not folder.is_dir():
        return False  # a file backend nothing was ever written to
    result = call(["stack", "export", "--stack", stack, "--non-interactive"], env, capture=True,
                  timeout=BACKEND_CALL_TIMEOUT, what=f" for stack '{stack}'")
    if result.returncode == 0:
        return True
    if f"no stack named '{stack}' found" in result.stderr:
        return False
    raise EngineError(f"could not read stack '{stack}' in the state backend {backend_shown(env)}: "
                      f"{result.stderr.strip()[-1000:]}")


def ensure_stack(stack: str) -> None:
    """Create the stack in the backend on first use (a fresh clone has none), leaving the
    workspace's selected stack as it was."""
    check_stack_name(stack)
    link_program_virtualenv()
    env = environment(stack)
    backend = _backend_dir(env)
    if backend is not None:
        backend.mkdir(parents=True, exist_ok=True)
    if stack_exists(stack, env):
        return
    # --no-select: a task never changes which stack a plain `pulumi` in this folder works on.
    created = call(["stack", "init", stack, "--secrets-provider", "passphrase", "--no-select", "--non-interactive"],
                   env, capture=True, timeout=BACKEND_CALL_TIMEOUT, what=f" for stack '{stack}'")
    if created.returncode != 0 and "already exists" not in created.stderr:
        raise EngineError(f"could not create stack '{stack}': {created.stderr.strip()[-1000:]}")
