"""Which leftover processes are this checkout's to stop, and which never are (no engine, no database).

Stand-ins for plugins: `sleep`-like Python processes whose command line names a pulumi plugin,
each with the environment a plugin inherits. Only an orphan (parent pid 1) carrying this
checkout's marker is stopped; another checkout's orphan, and a plugin whose parent lives,
are left alone. Every process the test starts is stopped by the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from devenv import engine_processes
from devenv.engine_processes import CHECKOUT_VARIABLE
from dualwrite.config import ROOT

SLEEPER = [sys.executable, "-c", "import time; time.sleep(300)", "pulumi-resource-pulumi-python"]


def env_of(checkout: str) -> dict[str, str]:
    return {**os.environ, CHECKOUT_VARIABLE: checkout}


def orphan(checkout: str) -> int:
    """A stand-in plugin whose parent has exited: reparented to pid 1."""
    started = subprocess.run(["sh", "-c", '"$@" >/dev/null 2>&1 & echo $!', "sh", *SLEEPER],
                             env=env_of(checkout), text=True, capture_output=True, check=True)
    pid = int(started.stdout)
    for _ in range(100):
        if engine_processes._read(pid) and engine_processes._read(pid).ppid == 1:
            return pid
        time.sleep(0.02)
    pytest.skip("orphans are not reparented to pid 1 here (a subreaper above the test)")


def running(pid: int) -> bool:
    return engine_processes._read(pid) is not None


def test_only_orphans_of_this_checkout_are_stopped():
    ours = orphan(str(ROOT))
    theirs = orphan("/work/wt/someone-else")
    child = subprocess.Popen(SLEEPER, env=env_of(str(ROOT)))  # its parent (this test) lives
    try:
        found = {p.pid for p in engine_processes.orphans(ROOT)}
        assert ours in found and theirs not in found and child.pid not in found

        note = engine_processes.reap_orphans(ROOT)
        assert note is not None and str(ours) in note and "engine process(es)" in note and "MB" in note
        assert not running(ours)
        assert running(theirs) and running(child.pid)
        assert engine_processes.reap_orphans(ROOT) is None  # nothing left of ours: nothing said
    finally:
        for pid in (ours, theirs, child.pid):
            if running(pid):
                os.kill(pid, 9)
        child.wait()


def test_a_reused_pid_is_not_stopped():
    """Between finding and stopping, the pid may have become another process: it is checked again."""
    ours = orphan(str(ROOT))
    try:
        [found] = [p for p in engine_processes.orphans(ROOT) if p.pid == ours]
        changed = engine_processes.EngineProcess(pid=found.pid, ppid=1, rss_kb=0, argv=("someone", "else"),
                                                 environ=found.environ)
        assert engine_processes.stop([changed]) == []
        assert running(ours)
    finally:
        os.kill(ours, 9)
