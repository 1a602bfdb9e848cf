"""`invoke cancel` on the default file backend: the same answers as on `postgres://`
(tests/e2e/test_team_backend_locks.py). Locks are written as the engine writes them
(pkg/backend/diy/lock.go), in the test's own backend folder."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.db]


def write_lock(stack, pid: int):
    folder = stack.backend / ".pulumi" / "locks" / "organization" / "habit-tracker-db" / stack.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4()}.json"
    path.write_text(json.dumps({"pid": pid, "username": "ci", "hostname": socket.gethostname(),
                                "timestamp": "2026-12-02T06:00:00Z"}))
    return path


def test_cancel_on_a_file_backend(e2e_stack):
    stack = e2e_stack()
    nothing = stack.invoke("cancel")
    assert nothing.stdout.strip() == f"stack '{stack.name}': no lock; nothing was changed"

    holder = subprocess.Popen(["sleep", "300"])
    try:
        live = write_lock(stack, holder.pid)
        refused = stack.invoke("cancel", check=False)
        assert refused.returncode == 1 and "still running on this host" in refused.stderr
        assert "Traceback" not in refused.stderr and live.exists()
        forced = stack.invoke("cancel", "--force")
        assert f"pid {holder.pid}" in forced.stdout and not live.exists()
    finally:
        holder.kill()
        holder.wait()

    dead = subprocess.Popen(["sleep", "0"])
    dead.wait()
    stale = write_lock(stack, dead.pid)
    assert "lock removed" in stack.invoke("cancel").stdout and not stale.exists()


def test_cancel_of_an_unknown_stack_on_a_file_backend(e2e_stack):
    stack = e2e_stack()
    other = type(stack)(f"{stack.name}-missing", stack.cluster, stack.backend)
    missing = other.invoke("cancel", check=False)
    assert missing.returncode == 1
    assert f"Stack '{other.name}' does not exist in the state backend file://" in missing.stderr
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
