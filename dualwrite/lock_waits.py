"""Who a step waited for: the sessions named when a step runs out of lock retries.

A lock timeout alone says nothing about its cause, and once the waiting statement is
cancelled the wait is gone: `pg_blocking_pids()` of a backend that no longer waits is empty.
So while each attempt runs, `BlockerWatch` samples, on a connection of its own, the sessions
that `pg_blocking_pids()` names for the waiting backend (the holders of a table lock, or,
for CREATE INDEX CONCURRENTLY, the older transactions whose virtual xid it waits on). It
connects only once an attempt has run `DELAY` seconds, so a step that gets its locks at once
opens no connection. When the retries are exhausted, `LockWaitExhausted` names them: pid,
user, application_name, state, transaction age and the first line of the query.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import psycopg

# Seconds an attempt runs before it is watched, and between two samples.
DELAY = 0.1
INTERVAL = 0.2
QUERY_CHARS = 120

BLOCKERS = """
SELECT a.pid, a.usename, a.application_name, a.state,
       extract(epoch FROM now() - a.xact_start)::float8,
       a.query
FROM pg_catalog.pg_stat_activity AS a
WHERE a.pid = ANY (pg_catalog.pg_blocking_pids(%s))
ORDER BY a.pid
"""


@dataclass(frozen=True)
class Blocker:
    pid: int
    user: str | None
    application_name: str | None
    state: str | None
    transaction_seconds: float | None
    query: str | None

    def describe(self) -> str:
        age = "no transaction" if self.transaction_seconds is None else \
            f"transaction open {self.transaction_seconds:.1f} s"
        first_line = next((line.strip() for line in (self.query or "").splitlines() if line.strip()), "")
        if len(first_line) > QUERY_CHARS:
            first_line = first_line[:QUERY_CHARS] + "..."
        return (f"pid {self.pid} (user {self.user or '?'}, application_name '{self.application_name or ''}', "
                f"state '{self.state or '?'}', {age}, query: {first_line or '?'})")


class LockWaitExhausted(psycopg.errors.LockNotAvailable):
    """A step that ran out of lock retries; its message names the sessions it waited for."""


def conninfo_of(conn: psycopg.Connection) -> dict[str, Any]:
    """Connection parameters of an open connection (password included), for a watcher beside it."""
    params: dict[str, Any] = dict(conn.info.get_parameters())
    if conn.info.password:
        params["password"] = conn.info.password
    return params


class BlockerWatch:
    """While the `with` block runs: the sessions blocking backend `pid`, sampled from a second connection."""

    def __init__(self, conninfo: dict[str, Any], pid: int | None) -> None:
        self.conninfo = conninfo
        self.pid = pid
        self.seen: dict[int, Blocker] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> "BlockerWatch":
        if self.pid is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _watch(self) -> None:
        if self._stop.wait(DELAY):
            return
        try:
            settings = {**self.conninfo, "application_name": "habit-tracker-db lock watch"}
            with psycopg.connect(**settings, autocommit=True, prepare_threshold=None) as watcher:
                while not self._stop.is_set():
                    for row in watcher.execute(BLOCKERS, (self.pid,)).fetchall():
                        self.seen[row[0]] = Blocker(*row)
                    self._stop.wait(INTERVAL)
        except Exception:  # noqa: BLE001 - the watch only explains a wait; it never fails the step
            return


def exhausted(error: psycopg.errors.LockNotAvailable, attempts: int, lock_timeout: str,
              blockers: dict[int, Blocker]) -> LockWaitExhausted:
    """The error a step raises when it gives up: what timed out, and who held what it waited for."""
    if blockers:
        who = "It waited for: " + "; ".join(b.describe() for b in blockers.values()) + (
            ". Wait for those sessions to finish, or end them (SELECT pg_terminate_backend(pid)), then run it again.")
    else:
        who = ("No blocking session was seen while it waited (each wait ended before it could be sampled); "
               "pg_stat_activity shows the long transactions.")
    first = str(error).strip().splitlines()[0] if str(error).strip() else "lock timeout"
    return LockWaitExhausted(
        f"gave up waiting for a lock after {attempts} attempt(s) of lock_timeout {lock_timeout} each ({first}). "
        f"{who} What the step changes was rolled back.")
