"""Concurrent writers on shared children and weeks while the phase flips 0 -> 1 and the backfill runs.

Issue 4's acceptance: no writer sees an error, and the final drift is exactly 0.
"""

from __future__ import annotations

import random
import threading
import uuid
from datetime import date, timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb

from dualwrite import backfill, migration
from dualwrite.db import Session
from dualwrite.drift import drift_report
from sheets import count, generate_sheets

pytestmark = pytest.mark.db

USERS = [uuid.UUID(int=i + 1) for i in range(2)]
CHILDREN = ["Mina", "Jun", "Seo"]
WEEKS = [date(2025, 10, 13) + timedelta(weeks=i) for i in range(4)]  # 24 shared (user, child, week) keys
NAMES = ["Read", "Walk", "Brush", "Sleep", "Tidy"]
STATUSES = ["green", "yellow", "red", "", ""]
WRITERS = 4


def random_habits(rng: random.Random) -> list[dict]:
    names = rng.sample(NAMES, rng.randint(0, 4))  # added / removed / renamed / reordered over time
    return [{"name": n, "times": [rng.choice(STATUSES) for _ in range(7)]} for n in names]


def write_once(conn: psycopg.Connection, rng: random.Random) -> None:
    key = (rng.choice(USERS), rng.choice(CHILDREN), rng.choice(WEEKS))
    action = rng.random()
    if action < 0.45:
        conn.execute(
            "INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, week_period, habits) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id, child_name, week_start_date) "
            "DO UPDATE SET habits = EXCLUDED.habits, week_period = EXCLUDED.week_period",
            (*key, f"p{rng.randint(0, 3)}", Jsonb(random_habits(rng))),
        )
    elif action < 0.85:
        conn.execute(
            "UPDATE public.habit_tracker SET habits = %s, updated_at = now() "
            "WHERE user_id = %s AND child_name = %s AND week_start_date = %s",
            (Jsonb(random_habits(rng)), *key),
        )
    else:
        conn.execute(
            "DELETE FROM public.habit_tracker WHERE user_id = %s AND child_name = %s AND week_start_date = %s", key
        )


class WriteCounter:
    """Writes done by all writers; the test waits on it instead of sleeping."""

    def __init__(self) -> None:
        self.total = 0
        self._changed = threading.Condition()

    def add(self) -> None:
        with self._changed:
            self.total += 1
            self._changed.notify_all()

    def wait_for_more(self, writes: int, errors: list[BaseException], timeout: float = 60) -> None:
        """Block until `writes` more writes have committed (or a writer failed)."""
        target = self.total + writes
        with self._changed:
            if not self._changed.wait_for(lambda: self.total >= target or errors, timeout):
                raise AssertionError(f"writers made {self.total} of {target} writes in {timeout} s")


def writer(url: str, seed: int, stop: threading.Event, errors: list[BaseException], writes: WriteCounter) -> None:
    rng = random.Random(seed)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET client_min_messages = warning")  # the trigger's NOTICEs are not under test here
            while not stop.is_set():
                write_once(conn, rng)
                writes.add()
    except BaseException as error:  # noqa: BLE001 - any error reaching the app fails the test
        errors.append(error)


def test_writers_flip_and_backfill_end_at_drift_zero(conn, db_url):
    migration.apply(conn, 0)
    generate_sheets(conn, 2_000, users=50)  # existing rows the backfill must bring over
    stop = threading.Event()
    errors: list[BaseException] = []
    writes = WriteCounter()
    threads = [threading.Thread(target=writer, args=(db_url, seed, stop, errors, writes)) for seed in range(WRITERS)]
    for thread in threads:
        thread.start()
    try:
        writes.wait_for_more(100, errors)  # Phase 0 writes
        migration.set_phase(conn, 1, session=Session.on(conn, lock_timeout="2s"))
        writes.wait_for_more(50, errors)  # Phase 1 writes before the backfill
        result = backfill.run(db_url, batch_size=200, show_progress=False)
        writes.wait_for_more(100, errors)  # Phase 1 writes after it
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors, errors
    assert writes.total >= 250
    assert result.rows >= 2_000
    report = drift_report(conn)
    assert (report.drift_pct, report.missing, report.mismatched, report.orphaned) == (0, 0, 0, 0), report
    assert count(conn, "dual_write_errors") == 0
