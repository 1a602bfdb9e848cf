"""The engine's helper processes that a cut-off deploy leaves running, found and stopped.

The CLI starts each plugin in a process group of its own (`cmdutil.RegisterProcessGroup`):
`pulumi-language-python` (and the program it runs), `pulumi-resource-pulumi-python` with its
`python -m pulumi.dynamic`, the policy pack's analyzer. When the CLI is killed (a cancelled
CI job's SIGKILL, a SIGPIPE from `invoke up | head`), nobody closes them: they are reparented
to pid 1 and serve a gRPC port nobody will call, for ever (about 85 MB a deploy).

A process is this checkout's when its environment carries CHECKOUT_VARIABLE = this checkout's
root: `engine.environment()` sets it on every engine call, and every plugin inherits it. Only
those are ever stopped, and only when orphaned (parent pid 1: their CLI is gone), with the
processes they started. The CLI itself is never stopped here: an orphaned CLI may still be
finishing a deploy its parent could not wait for.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

CHECKOUT_VARIABLE = "HABIT_TRACKER_DB_CHECKOUT"


@dataclass(frozen=True)
class EngineProcess:
    pid: int
    ppid: int
    rss_kb: int
    argv: tuple[str, ...]
    environ: dict[str, str]

    @property
    def is_cli(self) -> bool:
        return bool(self.argv) and Path(self.argv[0]).name == "pulumi"

    @property
    def is_engine(self) -> bool:
        """The CLI, a plugin, or a Python process a plugin runs (the program, the dynamic provider)."""
        return any("pulumi" in part for part in self.argv[:5])

    def describe(self) -> str:
        return f"pid {self.pid} ({' '.join(self.argv)[:120]}, {self.rss_kb // 1024} MB)"


def _read(pid: int) -> EngineProcess | None:
    base = Path("/proc") / str(pid)
    try:
        stat = (base / "stat").read_text()
        argv = tuple(part for part in (base / "cmdline").read_bytes().decode(errors="replace").split("\0") if part)
        raw_env = (base / "environ").read_bytes().decode(errors="replace")
        status = (base / "status").read_text()
    except OSError:  # gone meanwhile, a kernel thread, or not ours to read
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    environ = dict(item.split("=", 1) for item in raw_env.split("\0") if "=" in item)
    return EngineProcess(pid=pid, ppid=int(fields[1]), rss_kb=rss, argv=argv, environ=environ)


def processes() -> list[EngineProcess]:
    found: list[EngineProcess] = []
    if not Path("/proc").is_dir():  # not Linux: nothing is found, nothing is stopped
        return found
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            process = _read(int(entry.name))
            if process is not None:
                found.append(process)
    return found


def _with_descendants(roots: Iterable[EngineProcess], everything: list[EngineProcess]) -> list[EngineProcess]:
    children: dict[int, list[EngineProcess]] = {}
    for process in everything:
        children.setdefault(process.ppid, []).append(process)
    result: list[EngineProcess] = []
    todo = list(roots)
    while todo:
        process = todo.pop()
        if process.pid not in {p.pid for p in result}:
            result.append(process)
            todo.extend(children.get(process.pid, []))
    return result


def marked(variable: str, value: str, everything: list[EngineProcess] | None = None) -> list[EngineProcess]:
    """Engine processes (CLI included) whose environment has variable=value."""
    everything = processes() if everything is None else everything
    return [p for p in everything if p.environ.get(variable) == value and p.is_engine]


def orphans(root: Path) -> list[EngineProcess]:
    """This checkout's engine plugins whose CLI is gone (parent pid 1), with what they started."""
    everything = processes()
    lost = [p for p in marked(CHECKOUT_VARIABLE, str(root), everything) if p.ppid == 1 and not p.is_cli]
    return [p for p in _with_descendants(lost, everything) if p.environ.get(CHECKOUT_VARIABLE) == str(root)]


def stop(found: list[EngineProcess], *, wait: float = 5.0) -> list[EngineProcess]:
    """SIGKILL each (they hold no state: the engine's state is in the backend), wait until they are
    gone; returns those that were stopped."""
    stopped = []
    for process in found:
        current = _read(process.pid)
        if current is None or current.argv != process.argv or current.environ != process.environ:
            continue  # exited meanwhile, or the pid was reused by someone else's process
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        stopped.append(process)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(_read(p.pid) is not None for p in stopped):
        time.sleep(0.05)
    return stopped


def reap_orphans(root: Path) -> str | None:
    """Stop what cut-off engine runs of this checkout left running; one line saying what, or None."""
    stopped = stop(orphans(root))
    if not stopped:
        return None
    megabytes = sum(p.rss_kb for p in stopped) / 1024
    return (f"stopped {len(stopped)} engine process(es) ({megabytes:.0f} MB) that a cut-off deploy of this "
            f"checkout left running: pids {', '.join(str(p.pid) for p in stopped)}")
