"""Phase 2: an old client (writes habit_tracker) and a new client (writes the new tables) write the
same sheet at once, in two real sessions, as `authenticated` through RLS. In every interleaving
below neither write fails, nobody deadlocks, and the later commit wins in both copies."""

from __future__ import annotations

import threading
import uuid
from typing import Any, Callable, Iterator

import psycopg
import pytest
from psycopg.types.json import Jsonb

from sheets import MONDAY, NEXT_MONDAY, count, drift, habit, insert_sheet, projection, source
from two_way import NewClient, apply_phase2, as_user, reverse_drift, sheet

pytestmark = pytest.mark.db

USER = uuid.UUID("33333333-3333-3333-3333-333333333333")
WAIT = 20  # seconds a step may take before the test calls it stuck


class Session:
    """One app session in a thread of its own, so a step can block while the test goes on."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url)
        self.conn.execute("SET client_min_messages = warning")
        self.conn.commit()
        self.pid = self.conn.info.backend_pid
        self.errors: list[BaseException] = []
        self._thread: threading.Thread | None = None

    def begin(self) -> None:
        self.conn.execute("SET LOCAL ROLE authenticated")
        self.conn.execute("SELECT set_config('request.jwt.claim.sub', %s, true)", (str(USER),))

    def start(self, step: Callable[[psycopg.Connection], Any]) -> None:
        def run() -> None:
            try:
                step(self.conn)
            except BaseException as error:  # noqa: BLE001 - any error reaching the app fails the test
                self.errors.append(error)

        self._thread = threading.Thread(target=run)
        self._thread.start()

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), f"session {self.pid} still running after {WAIT} s"
        assert not self.errors, self.errors

    def commit(self) -> None:
        self.conn.commit()

    def commit_while(self, waiting: "Session") -> None:
        """Commit while `waiting` is blocked: in a thread too, so a commit that would itself wait for
        `waiting` (a deadlock the sync failed to prevent) fails the test instead of hanging it."""
        done = threading.Thread(target=self._commit_or_record)
        done.start()
        waiting.join()
        done.join(WAIT)
        if done.is_alive():
            self.conn.cancel()
            done.join(WAIT)
            raise AssertionError(f"session {self.pid}'s commit still waited after {WAIT} s (cancelled)")
        assert not self.errors, self.errors

    def _commit_or_record(self) -> None:
        try:
            self.conn.commit()
        except BaseException as error:  # noqa: BLE001 - reported by commit_while
            self.errors.append(error)

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self.conn.cancel()  # a step still waiting (a failed test): end it, never hang the suite
            self._thread.join(WAIT)
        self.conn.close()


def wait_until_blocked(watcher: psycopg.Connection, session: Session) -> None:
    """Until `session` waits for a lock the other session holds (what makes the interleaving)."""
    for _ in range(WAIT * 20):
        row = watcher.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (session.pid,)).fetchone()
        if row and row[0] == "Lock":
            return
        assert not session.errors, session.errors
        watcher.execute("SELECT pg_sleep(0.05)")
    raise AssertionError(f"session {session.pid} never waited for a lock")


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    apply_phase2(conn)
    return conn


@pytest.fixture
def old(db: psycopg.Connection, db_url: str) -> Iterator[Session]:
    session = Session(db_url)
    yield session
    session.close()


@pytest.fixture
def new(db: psycopg.Connection, db_url: str) -> Iterator[Session]:
    session = Session(db_url)
    yield session
    session.close()


@pytest.fixture
def shared(db: psycopg.Connection) -> tuple[int, uuid.UUID]:
    """One sheet both clients write: (its habit_tracker id, its week)."""
    with as_user(db, USER):
        legacy = insert_sheet(db, user_id=USER, habits=[habit("Read", "green"), habit("Walk")])
    week = db.execute("SELECT id FROM public.weeks WHERE legacy_id = %s", (legacy,)).fetchone()[0]
    return legacy, week


def old_update(legacy: int, habits: list) -> Callable[[psycopg.Connection], None]:
    def save(c: psycopg.Connection) -> None:
        c.execute("UPDATE public.habit_tracker SET habits = %s, updated_at = now() WHERE id = %s",
                  (Jsonb(habits), legacy))
    return save


def new_tick(week: uuid.UUID, position: int, day: int, status: str) -> Callable[[psycopg.Connection], None]:
    def tick(c: psycopg.Connection) -> None:
        client = NewClient(c, USER)
        client.tick(client.habit(week, position), MONDAY, day, status)
    return tick


def assert_copies_agree(db: psycopg.Connection, legacy: int, week: uuid.UUID, habits: list) -> None:
    assert sheet(db, week)["habits"] == habits
    assert projection(db, legacy) == source(db, legacy)
    forward, reverse = drift(db), reverse_drift(db)
    assert forward["drift_pct"] == 0 and reverse["drift_pct"] == 0, (forward, reverse)
    assert count(db, "dual_write_errors") == 0


def test_new_client_first_then_old_client_old_commits_last(db, old, new, shared):
    legacy, week = shared
    new.begin()
    new_tick(week, 1, 2, "red")(new.conn)  # holds the sheet's habit_tracker row from here
    old.begin()
    old.start(old_update(legacy, [habit("Read", "yellow"), habit("Walk", "", "green")]))
    wait_until_blocked(db, old)
    new.commit_while(old)
    old.commit()
    assert_copies_agree(db, legacy, week, [habit("Read", "yellow"), habit("Walk", "", "green")])


def test_new_client_first_on_the_same_record_old_commits_last(db, old, new, shared):
    """The deadlock the BEFORE lock prevents: the old client's forward sync needs the record the new
    client changed, while the new client's commit needs the old client's habit_tracker row."""
    legacy, week = shared
    new.begin()
    new_tick(week, 0, 0, "red")(new.conn)  # Read's Monday record, row-locked until commit
    old.begin()
    old.start(old_update(legacy, [habit("Read", "yellow"), habit("Walk")]))  # rewrites that record
    wait_until_blocked(db, old)
    new.commit_while(old)
    old.commit()
    assert_copies_agree(db, legacy, week, [habit("Read", "yellow"), habit("Walk")])


def test_old_client_first_then_new_client_new_commits_last(db, old, new, shared):
    legacy, week = shared
    old.begin()
    old_update(legacy, [habit("Read", "yellow"), habit("Walk", "", "green")])(old.conn)
    new.begin()
    new.start(new_tick(week, 1, 2, "red"))  # Walk's Wednesday: a record the old client's write did not touch
    wait_until_blocked(db, new)
    old.commit_while(new)
    new.commit()
    assert_copies_agree(db, legacy, week, [habit("Read", "yellow"), habit("Walk", "", "green", "red")])


def test_old_client_first_on_the_same_record_new_commits_last(db, old, new, shared):
    legacy, week = shared
    old.begin()
    old_update(legacy, [habit("Read", "red"), habit("Walk")])(old.conn)  # rewrites Read's Monday record
    new.begin()
    new.start(new_tick(week, 0, 0, "yellow"))  # waits for that record's row lock
    wait_until_blocked(db, new)
    old.commit_while(new)
    new.commit()
    assert_copies_agree(db, legacy, week, [habit("Read", "yellow"), habit("Walk")])


def test_new_client_transaction_of_many_statements_and_an_old_client_between(db, old, new, shared):
    legacy, week = shared
    new.begin()
    new_tick(week, 0, 1, "green")(new.conn)
    old.begin()
    old.start(old_update(legacy, [habit("Read", "red", "red")]))
    wait_until_blocked(db, old)
    new_tick(week, 1, 3, "yellow")(new.conn)  # more statements while the old client waits
    new.conn.execute("UPDATE public.habits SET name = 'Walk far' WHERE week_id = %s AND position = 1", (week,))
    new.commit_while(old)
    old.commit()
    assert_copies_agree(db, legacy, week, [habit("Read", "red", "red")])


def test_both_create_the_same_sheet_at_once(db, old, new):
    new.begin()
    created = NewClient(new.conn, USER).new_week("Mina", NEXT_MONDAY, habits=(("Read", {0: "green"}),))
    old.begin()
    old.start(lambda c: c.execute(  # the old app's save: an upsert of its sheet
        "INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) VALUES (%s, 'Mina', %s, %s) "
        "ON CONFLICT (user_id, child_name, week_start_date) DO UPDATE SET habits = EXCLUDED.habits",
        (USER, NEXT_MONDAY, Jsonb([habit("Sleep", "", "red")]))))
    wait_until_blocked(db, old)
    new.commit_while(old)
    old.commit()
    legacy = db.execute("SELECT legacy_id FROM public.weeks WHERE id = %s", (created,)).fetchone()[0]
    assert count(db, "habit_tracker") == 1 and count(db, "weeks") == 1
    assert_copies_agree(db, legacy, created, [habit("Sleep", "", "red")])


def test_new_client_deletes_the_week_while_the_old_client_writes_it(db, old, new, shared):
    legacy, week = shared
    new.begin()
    new.conn.execute("DELETE FROM public.weeks WHERE id = %s", (week,))
    old.begin()
    old.start(old_update(legacy, [habit("Read", "red")]))
    wait_until_blocked(db, old)
    new.commit_while(old)  # its UPDATE finds the sheet gone: 0 rows, no error
    old.commit()
    assert count(db, "habit_tracker") == 0 and count(db, "weeks") == 0
    assert reverse_drift(db)["drift_pct"] == 0 and drift(db)["drift_pct"] == 0
    assert count(db, "dual_write_errors") == 0
