"""A deploy's change run beside an app's open transaction: the change in a thread of its own, its
failure kept for the test to see, and the wait that puts the app's next statement after the
deploy has started waiting on a lock."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import psycopg


def deadlock_timeout_s(conn: psycopg.Connection) -> float:
    return float(conn.execute("SELECT setting::int / 1000.0 FROM pg_settings WHERE name = 'deadlock_timeout'"
                              ).fetchone()[0])


def wait_until_waiting(conn: psycopg.Connection, pid: int | None = None) -> None:
    """Until the session `pid` (None: any session) waits on a lock, read on `conn`, a third session."""
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND (pid = %s OR %s::int IS NULL)"
    while conn.execute(waiting, (pid, pid)).fetchone()[0] == 0:
        pass


@contextmanager
def in_a_thread(work: Callable[[], object]) -> Iterator[None]:
    """`work` runs in a thread while the block runs; after the block, it must have ended without error."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            failure.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield
    finally:
        thread.join(timeout=120)
    assert not thread.is_alive(), "the deploy's change still runs after 120 s"
    assert not failure, failure
