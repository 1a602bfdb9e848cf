"""What tests/e2e/test_phase_walk.py needs around its table of steps: a Supabase-shaped app
(auth.uid(), RLS on the app's tables), two application clients writing as `authenticated`
through PostgREST's pattern, and the checks made after every step.

    supabase_app(stack)        auth.uid() and RLS policies: `authenticated` reads and writes
                               only its own rows, in both schemas
    OldClient / NewClient      a thread each: the old app release writes habit_tracker (insert
                               sheets, tick days, edit habits, delete sheets); the new release
                               writes children/weeks/habits/habit_records. Each keeps a ledger
                               of what it committed, sheet by sheet
    Clients                    both, paused together (`with clients.paused():`) for the checks
    old_copy / new_copy        every sheet of a user as either copy holds it, in one shape

A client logs in as `authenticator` and, per transaction, does what PostgREST does for a
signed-in user: SET LOCAL ROLE authenticated and the JWT claims as a transaction setting.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Iterator

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

# Supabase's auth.uid() (supabase/postgres, auth schema migration): the `sub` claim of the
# request's JWT, which PostgREST sets per transaction. The schema is the platform's (its admin's).
AUTH_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role, postgres;
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
$$;
GRANT EXECUTE ON FUNCTION auth.uid() TO anon, authenticated, service_role, postgres;
"""

# The app's policies (written by its owner, postgres): a user sees and writes only their own
# sheets, children, weeks, habits and records; anon gets no policy, so no row.
OWN_ROWS = {
    "habit_tracker": "user_id = (SELECT auth.uid())",
    "children": "user_id = (SELECT auth.uid())",
    "weeks": "EXISTS (SELECT FROM public.children AS c WHERE c.id = child_id AND c.user_id = (SELECT auth.uid()))",
    "habits": "EXISTS (SELECT FROM public.weeks AS w JOIN public.children AS c ON c.id = w.child_id "
              "WHERE w.id = week_id AND c.user_id = (SELECT auth.uid()))",
    "habit_records": "EXISTS (SELECT FROM public.habits AS h JOIN public.weeks AS w ON w.id = h.week_id "
                     "JOIN public.children AS c ON c.id = w.child_id "
                     "WHERE h.id = habit_id AND c.user_id = (SELECT auth.uid()))",
}
STATUSES = ("green", "yellow", "red", "")
FIRST_MONDAY = date(2025, 1, 6)


def supabase_app(admin_url: str, owner_url: str) -> None:
    """auth.uid() (as the platform's admin) and the app's RLS policies (as the tables' owner)."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL(AUTH_SCHEMA))  # type: ignore[arg-type]
    with psycopg.connect(owner_url) as owner, owner.transaction():
        for table, own in OWN_ROWS.items():
            owner.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(sql.Identifier("public", table)))
            owner.execute(sql.SQL("CREATE POLICY {} ON {} FOR ALL TO authenticated USING ({own}) WITH CHECK ({own})")
                          .format(sql.Identifier(f"{table}_own_rows"), sql.Identifier("public", table),
                                  own=sql.SQL(own)))  # type: ignore[arg-type]


# --- the ledger: what a client committed ----------------------------------------------


@dataclass
class Sheet:
    """One sheet (habit_tracker row / week) as its client last committed it."""
    child: str
    week: date
    period: str
    habits: list[dict[str, Any]]
    written: int  # the client's write number that last changed it
    row_id: int | None = None  # habit_tracker.id (old client)
    week_id: uuid.UUID | None = None  # weeks.id (new client)

    @property
    def key(self) -> tuple[str, date]:
        return (self.child, self.week)

    def shape(self) -> tuple[str, list[dict[str, Any]]]:
        return (self.period, self.habits)


@dataclass
class Failure:
    client: str
    during: str
    what: str
    error: str


@dataclass
class Client:
    """A thread writing as one signed-in user (`user_id`) through RLS, one transaction per write."""
    name: str
    url: str  # as `authenticator`
    user_id: uuid.UUID = field(default_factory=uuid.uuid4)
    pace: float = 0.03  # seconds between writes: two cores shared with the engine and PostgreSQL
    sheets: dict[tuple[str, date], Sheet] = field(default_factory=dict)
    deleted: dict[tuple[str, date], int] = field(default_factory=dict)  # key -> write number of the delete
    failures: list[Failure] = field(default_factory=list)
    writes: int = 0  # committed writes
    created: int = 0  # sheets ever created
    active: bool = False
    during: str = "start"

    def __post_init__(self) -> None:
        self.turn = threading.Lock()
        self.stopping = threading.Event()
        self.random = random.Random(self.name)
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._next_week = 0

    # the loop

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True, application_name=f"walk {self.name}") as conn:
            while not self.stopping.is_set():
                with self.turn:
                    if self.active:
                        self._one_write(conn)
                time.sleep(self.pace)

    def _one_write(self, conn: psycopg.Connection) -> None:
        what = self._choose()
        try:
            with conn.transaction():
                self.as_user(conn)
                done = getattr(self, what)(conn)
        except psycopg.Error as error:
            self.failures.append(Failure(self.name, self.during, what, f"{type(error).__name__}: {error}"))
            return
        self.writes += 1
        done()  # the ledger changes only after the commit

    def as_user(self, conn: psycopg.Connection) -> None:
        """What PostgREST does in each request's transaction for a signed-in user."""
        conn.execute("SET LOCAL ROLE authenticated")
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)",
                     (json.dumps({"sub": str(self.user_id), "role": "authenticated"}),))

    def _choose(self) -> str:
        live = len(self.sheets)
        if live < 3:
            return "create"
        weights = {"create": 3 if live < 25 else 0, "tick": 5, "edit": 2, "delete": 1}
        return self.random.choices(list(weights), weights=list(weights.values()))[0]

    def _new_sheet(self) -> Sheet:
        child = self.random.choice(("Mina", "Joon", "Ari"))
        self._next_week += 1
        week = FIRST_MONDAY + timedelta(weeks=self._next_week)
        habits = [{"name": name, "times": [""] * 7} for name in ("Read", "Brush teeth")]
        return Sheet(child, week, f"{week:%Y-%m-%d} ~ {week + timedelta(days=6):%Y-%m-%d}", habits, 0)

    def _pick(self) -> Sheet:
        return self.sheets[self.random.choice(sorted(self.sheets))]

    def _committed(self, sheet: Sheet, **changes: Any) -> Any:
        def apply() -> None:
            for key, value in changes.items():
                setattr(sheet, key, value)
            sheet.written = self.writes
            if sheet.key not in self.sheets:
                self.created += 1
            self.sheets[sheet.key] = sheet
        return apply

    def _removed(self, sheet: Sheet) -> Any:
        def apply() -> None:
            del self.sheets[sheet.key]
            self.deleted[sheet.key] = self.writes
        return apply

    def visible(self, table: str) -> int:
        """Rows of `table` this user sees through RLS (a connection of the test's own, as PostgREST would)."""
        with psycopg.connect(self.url, autocommit=True) as conn, conn.transaction():
            self.as_user(conn)
            return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("public", table))).fetchone()[0]

    # control, from the test's thread

    def start(self) -> None:
        self.thread.start()

    def wait_for_writes(self, count: int, patience_s: float = 300) -> None:
        """Until `count` more writes have committed (a client that just started has something to check)."""
        goal, deadline = self.writes + count, time.monotonic() + patience_s
        while self.writes < goal and not self.failures and time.monotonic() < deadline:
            time.sleep(0.1)
        assert self.writes >= goal or self.failures, f"{self.name}: {self.writes} of {goal} writes in {patience_s:g} s"

    def stop_writing(self) -> None:
        """No write after this returns (the one in flight, if any, has committed or failed)."""
        self.active = False
        with self.turn:
            pass

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)

    def written_since(self, mark: int) -> set[tuple[str, date]]:
        """Sheets this client changed (or deleted) after its write number `mark`."""
        return ({key for key, sheet in self.sheets.items() if sheet.written > mark}
                | {key for key, number in self.deleted.items() if number > mark})


class OldClient(Client):
    """The old app release: whole sheets in habit_tracker, habits as one JSON array."""

    def create(self, conn: psycopg.Connection) -> Any:
        sheet = self._new_sheet()
        row = conn.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, week_period, habits)"
                           " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                           (self.user_id, sheet.child, sheet.week, sheet.period, Jsonb(sheet.habits))).fetchone()
        return self._committed(sheet, row_id=row[0])

    def one_write_outside_the_loop(self) -> psycopg.Error | None:
        """One tick as this user, from the test's thread: the error it got, or None (then it is in the ledger)."""
        with self.turn, psycopg.connect(self.url, autocommit=True) as conn:
            try:
                with conn.transaction():
                    self.as_user(conn)
                    done = self.tick(conn)
            except psycopg.Error as error:
                return error
            self.writes += 1
            done()
            return None

    def _save(self, conn: psycopg.Connection, sheet: Sheet, habits: list[dict[str, Any]]) -> Any:
        updated = conn.execute("UPDATE public.habit_tracker SET habits = %s, updated_at = now() WHERE id = %s",
                               (Jsonb(habits), sheet.row_id)).rowcount
        assert updated == 1, f"{self.name}: sheet {sheet.row_id} not found to update"
        return self._committed(sheet, habits=habits)

    def tick(self, conn: psycopg.Connection) -> Any:
        sheet = self._pick()
        habits = json.loads(json.dumps(sheet.habits))
        day = self.random.randrange(7)
        habits[self.random.randrange(len(habits))]["times"][day] = self.random.choice(STATUSES)
        return self._save(conn, sheet, habits)

    def edit(self, conn: psycopg.Connection) -> Any:
        sheet = self._pick()
        habits = json.loads(json.dumps(sheet.habits))
        choice = self.random.randrange(3)
        if choice == 0 and len(habits) < 5:
            habits.append({"name": f"Habit {self.writes}", "times": [""] * 7})
        elif choice == 1 and len(habits) > 1:
            habits.pop()
        else:
            habits[self.random.randrange(len(habits))]["name"] = f"Renamed {self.writes}"
        return self._save(conn, sheet, habits)

    def delete(self, conn: psycopg.Connection) -> Any:
        sheet = self._pick()
        deleted = conn.execute("DELETE FROM public.habit_tracker WHERE id = %s", (sheet.row_id,)).rowcount
        assert deleted == 1, f"{self.name}: sheet {sheet.row_id} not found to delete"
        return self._removed(sheet)


class NewClient(Client):
    """The new app release: children, weeks, habits and habit_records, row by row, several
    statements in one transaction where the app's screen saves several things at once."""

    def create(self, conn: psycopg.Connection) -> Any:
        sheet = self._new_sheet()
        child = conn.execute("SELECT id FROM public.children WHERE user_id = %s AND name = %s",
                             (self.user_id, sheet.child)).fetchone()
        if child is None:
            child = conn.execute("INSERT INTO public.children (user_id, name) VALUES (%s, %s) RETURNING id",
                                 (self.user_id, sheet.child)).fetchone()
        week = conn.execute("INSERT INTO public.weeks (child_id, week_start_date, week_period) VALUES (%s, %s, %s)"
                            " RETURNING id", (child[0], sheet.week, sheet.period)).fetchone()
        for position, habit in enumerate(sheet.habits):
            conn.execute("INSERT INTO public.habits (week_id, name, position) VALUES (%s, %s, %s)",
                         (week[0], habit["name"], position))
        return self._committed(sheet, week_id=week[0])

    def _habit_id(self, conn: psycopg.Connection, sheet: Sheet, position: int) -> uuid.UUID:
        row = conn.execute("SELECT id FROM public.habits WHERE week_id = %s AND position = %s",
                           (sheet.week_id, position)).fetchone()
        assert row is not None, f"{self.name}: habit {position} of week {sheet.week_id} not found"
        return row[0]

    def tick(self, conn: psycopg.Connection) -> Any:
        """One to three days of one sheet in one transaction (a save of the week screen)."""
        sheet = self._pick()
        habits = json.loads(json.dumps(sheet.habits))
        for _ in range(self.random.randint(1, 3)):
            position, day = self.random.randrange(len(habits)), self.random.randrange(7)
            status = self.random.choice(STATUSES)
            habit_id = self._habit_id(conn, sheet, position)
            if status:
                conn.execute("INSERT INTO public.habit_records (habit_id, record_date, status) VALUES (%s, %s, %s)"
                             " ON CONFLICT (habit_id, record_date) DO UPDATE SET status = EXCLUDED.status",
                             (habit_id, sheet.week + timedelta(days=day), status))
            else:
                conn.execute("DELETE FROM public.habit_records WHERE habit_id = %s AND record_date = %s",
                             (habit_id, sheet.week + timedelta(days=day)))
            habits[position]["times"][day] = status
        return self._committed(sheet, habits=habits)

    def edit(self, conn: psycopg.Connection) -> Any:
        sheet = self._pick()
        habits = json.loads(json.dumps(sheet.habits))
        choice = self.random.randrange(3)
        if choice == 0 and len(habits) < 5:
            conn.execute("INSERT INTO public.habits (week_id, name, position) VALUES (%s, %s, %s)",
                         (sheet.week_id, f"Habit {self.writes}", len(habits)))
            habits.append({"name": f"Habit {self.writes}", "times": [""] * 7})
        elif choice == 1 and len(habits) > 1:
            conn.execute("DELETE FROM public.habits WHERE week_id = %s AND position = %s",
                         (sheet.week_id, len(habits) - 1))
            habits.pop()
        else:
            position = self.random.randrange(len(habits))
            conn.execute("UPDATE public.habits SET name = %s WHERE week_id = %s AND position = %s",
                         (f"Renamed {self.writes}", sheet.week_id, position))
            habits[position]["name"] = f"Renamed {self.writes}"
        return self._committed(sheet, habits=habits)

    def delete(self, conn: psycopg.Connection) -> Any:
        sheet = self._pick()
        deleted = conn.execute("DELETE FROM public.weeks WHERE id = %s", (sheet.week_id,)).rowcount
        assert deleted == 1, f"{self.name}: week {sheet.week_id} not found to delete"
        return self._removed(sheet)


class Clients:
    def __init__(self, old: OldClient, new: NewClient) -> None:
        self.old, self.new = old, new
        self.all: tuple[Client, ...] = (old, new)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No client is inside a write while the block runs (each finishes the one it is in)."""
        for client in self.all:
            client.turn.acquire()
        try:
            yield
        finally:
            for client in self.all:
                client.turn.release()

    def during(self, what: str) -> None:
        for client in self.all:
            client.during = what

    def stop(self) -> None:
        for client in self.all:
            client.stop()


# --- the two copies, read as the deploy role (past RLS) ---------------------------------

Shape = dict[tuple[str, date], tuple[str, list[dict[str, Any]]]]


def old_copy(conn: psycopg.Connection, user_id: uuid.UUID, table: str = "habit_tracker") -> Shape:
    rows = conn.execute(sql.SQL("SELECT child_name, week_start_date, week_period, habits FROM {} WHERE user_id = %s")
                        .format(sql.Identifier("public", table)), (user_id,)).fetchall()
    return {(child, week): (period, habits) for child, week, period, habits in rows}


NEW_COPY = """
SELECT c.name, w.week_start_date, w.week_period,
       coalesce((SELECT jsonb_agg(jsonb_build_object(
                   'name', h.name,
                   'times', (SELECT jsonb_agg(coalesce((SELECT r.status FROM public.habit_records AS r
                                                         WHERE r.habit_id = h.id AND r.record_date = w.week_start_date + d),
                                                        '') ORDER BY d)
                             FROM generate_series(0, 6) AS d)) ORDER BY h.position)
                 FROM public.habits AS h WHERE h.week_id = w.id), '[]'::jsonb),
       (SELECT array_agg(h.position ORDER BY h.position) FROM public.habits AS h WHERE h.week_id = w.id),
       (SELECT count(*) FROM public.habit_records AS r JOIN public.habits AS h ON h.id = r.habit_id
        WHERE h.week_id = w.id AND r.record_date - w.week_start_date NOT BETWEEN 0 AND 6)
FROM public.weeks AS w JOIN public.children AS c ON c.id = w.child_id
WHERE c.user_id = %s
"""


def new_copy(conn: psycopg.Connection, user_id: uuid.UUID) -> Shape:
    shape: Shape = {}
    for child, week, period, habits, positions, outside in conn.execute(NEW_COPY, (user_id,)).fetchall():
        # The same week as habit_tracker's array only if positions are 0..n-1 and no day falls outside it.
        assert positions is None or positions == list(range(len(positions))), (child, week, positions)
        assert outside == 0, (child, week, f"{outside} record(s) outside the week")
        shape[(child, week)] = (period, habits)
    return shape


def expected(client: Client, keys: set[tuple[str, date]] | None = None) -> Shape:
    return {key: sheet.shape() for key, sheet in client.sheets.items() if keys is None or key in keys}


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Rows of every table in public (what a smoke test must leave as it found it)."""
    names = [row[0] for row in conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1")]
    return {name: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("public", name))).fetchone()[0]
            for name in names}


def api_roles_reading(conn: psycopg.Connection, table: str) -> list[str]:
    """The API roles (and PUBLIC's members among them) that may SELECT `table`."""
    return [role for role in ("anon", "authenticated", "service_role")
            if conn.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", (role, f"public.{table}")).fetchone()[0]]


def drift_row(conn: psycopg.Connection, function: str) -> dict[str, Any]:
    """One row of dual_write_drift() or dual_write_reverse_drift(), by column name."""
    cursor = conn.execute(sql.SQL("SELECT * FROM {}()").format(sql.Identifier("public", function)))
    return dict(zip([column.name for column in cursor.description], cursor.fetchone()))
