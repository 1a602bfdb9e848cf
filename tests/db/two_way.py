"""Phases 2 and 3 in a test database: migration 013's Phase 1 objects, then the objects of the
reverse sync (and of Phase 3), applied by the same per-object operations a deploy runs; Supabase's
row-level security on the app's tables; and a new app client writing the normalized tables as
`authenticated` through it.

The objects are the catalog's (dualwrite/catalog.py, dualwrite/phases.py), applied by migration.py.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import date
from typing import Any, Iterator

import psycopg

from dualwrite import migration
from dualwrite.catalog import SqlObject, objects_in
from dualwrite.db import Session

NEW_TABLES = ("children", "weeks", "habits", "habit_records")


def _added(phase: int, before: int) -> tuple[SqlObject, ...]:
    earlier = {obj.name for obj in objects_in(before)}
    return tuple(obj for obj in objects_in(phase) if obj.name not in earlier)


# What the catalog adds in Phase 2 (the reverse sync, the old-client evidence, reverse drift and
# catch-up) and in Phase 3 (habit_tracker read-only), in creation order.
PHASE2_OBJECTS = _added(2, 1)
PHASE3_OBJECTS = _added(3, 2)
FORWARD_TRIGGER = "trigger_habit_tracker_dual_write"

# Supabase-style policies: each user sees and writes only the rows of their own children.
UID = "nullif(current_setting('request.jwt.claim.sub', true), '')::uuid"
POLICIES = {
    "habit_tracker": f"user_id = {UID}",
    "children": f"user_id = {UID}",
    "weeks": f"EXISTS (SELECT FROM public.children c WHERE c.id = child_id AND c.user_id = {UID})",
    "habits": ("EXISTS (SELECT FROM public.weeks w JOIN public.children c ON c.id = w.child_id "
               f"WHERE w.id = week_id AND c.user_id = {UID})"),
    "habit_records": ("EXISTS (SELECT FROM public.habits h JOIN public.weeks w ON w.id = h.week_id "
                      f"JOIN public.children c ON c.id = w.child_id WHERE h.id = habit_id AND c.user_id = {UID})"),
}


def apply_objects(conn: psycopg.Connection, objects: tuple[SqlObject, ...]) -> None:
    session = Session.on(conn)
    for obj in objects:
        obj.operations(1).apply_create(session)


def enable_rls(conn: psycopg.Connection) -> None:
    for table, rule in POLICIES.items():
        # Table names and rules are constants of this module.
        conn.execute(f"ALTER TABLE public.{table} ENABLE ROW LEVEL SECURITY")
        conn.execute(f"CREATE POLICY own_rows ON public.{table} FOR ALL TO authenticated "
                     f"USING ({rule}) WITH CHECK ({rule})")


def apply_phase2(conn: psycopg.Connection) -> None:
    """Phase 2 as a deploy applies it (both directions sync); RLS on the app's tables."""
    migration.apply(conn, 2)
    enable_rls(conn)


def apply_phase3(conn: psycopg.Connection) -> None:
    """Phase 2, then the step to the contract (forward sync gone, habit_tracker read-only)."""
    apply_phase2(conn)
    migration.set_phase(conn, 3)


@contextmanager
def as_user(conn: psycopg.Connection, user: uuid.UUID) -> Iterator[psycopg.Connection]:
    """One app transaction as `authenticated` for `user`, through RLS (what PostgREST does)."""
    with conn.transaction():
        conn.execute("SET LOCAL ROLE authenticated")
        conn.execute("SELECT set_config('request.jwt.claim.sub', %s, true)", (str(user),))
        yield conn


class NewClient:
    """The new app release: writes children / weeks / habits / habit_records, never habit_tracker."""

    def __init__(self, conn: psycopg.Connection, user: uuid.UUID) -> None:
        self.conn = conn
        self.user = user

    def one(self, query: str, params: Any = ()) -> Any:
        row = self.conn.execute(query, params).fetchone()
        return None if row is None else row[0]

    def child(self, name: str) -> uuid.UUID:
        found = self.one("SELECT id FROM public.children WHERE user_id = %s AND name = %s", (self.user, name))
        return found or self.one("INSERT INTO public.children (user_id, name) VALUES (%s, %s) RETURNING id",
                                 (self.user, name))

    def new_week(self, child: str, week: date, period: str | None = None,
                 habits: tuple[tuple[str, dict[int, str]], ...] = ()) -> uuid.UUID:
        week_id = self.one("INSERT INTO public.weeks (child_id, week_start_date, week_period) VALUES (%s, %s, %s) "
                           "RETURNING id", (self.child(child), week, period))
        for position, (name, days) in enumerate(habits):
            habit_id = self.add_habit(week_id, name, position)
            for day, status in days.items():
                self.tick(habit_id, week, day, status)
        return week_id

    def add_habit(self, week_id: uuid.UUID, name: str, position: int) -> uuid.UUID:
        return self.one("INSERT INTO public.habits (week_id, name, position) VALUES (%s, %s, %s) RETURNING id",
                        (week_id, name, position))

    def habit(self, week_id: uuid.UUID, position: int) -> uuid.UUID:
        return self.one("SELECT id FROM public.habits WHERE week_id = %s AND position = %s", (week_id, position))

    def tick(self, habit_id: uuid.UUID, week: date, day: int, status: str) -> None:
        self.conn.execute(
            "INSERT INTO public.habit_records (habit_id, record_date, status) VALUES (%s, %s::date + %s, %s) "
            "ON CONFLICT (habit_id, record_date) DO UPDATE SET status = EXCLUDED.status",
            (habit_id, week, day, status))

    def untick(self, habit_id: uuid.UUID, week: date, day: int) -> None:
        self.conn.execute("DELETE FROM public.habit_records WHERE habit_id = %s AND record_date = %s::date + %s",
                          (habit_id, week, day))


def sheet(conn: psycopg.Connection, week_id: uuid.UUID) -> dict[str, Any] | None:
    """The habit_tracker row a week mirrors, in the tests' sheet shape (None when there is none)."""
    row = conn.execute(
        "SELECT h.user_id, h.child_name, h.week_start_date, h.week_period, h.habits FROM public.habit_tracker h "
        "JOIN public.weeks w ON w.legacy_id = h.id WHERE w.id = %s", (week_id,)).fetchone()
    if row is None:
        return None
    return {"user_id": row[0], "child": row[1], "week": row[2], "period": row[3], "habits": row[4]}


def reverse_drift(conn: psycopg.Connection) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM public.dual_write_reverse_drift()").fetchone()
    names = ["source_rows", "synced", "missing", "mismatched", "orphaned", "errors", "drift_pct"]
    return dict(zip(names, row))


def rebuilds(admin: psycopg.Connection) -> int:
    """Calls of habit_tracker_from_week so far (pg_stat_user_functions; track_functions = 'pl')."""
    admin.execute("SELECT pg_stat_clear_snapshot()")
    row = admin.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions "
                        "WHERE funcname = 'habit_tracker_from_week'").fetchone()
    return int(row[0])
