"""Retirement's first step: the syncs stop before habit_tracker is archived (dualwrite/phases.py, `retired`).

A step up to retirement drops the triggers and sync functions of Phase 3 and renames
habit_tracker to habit_tracker_archive (objects/archive.py). The engine deletes the resources
a program no longer declares only after every create, so left to those deletes the triggers
would still fire, and sit on the archive, after the rename. This object runs them first: its
create drops every trigger, then every function, that retirement does not keep, in one bounded
transaction, and the archive is created after it. The tables those triggers sit on are locked
first, one at a time (db.lock_in_turn), so the drops wait for no one. The tables and statements
come in its props (dualwrite/catalog.py `retirement_props`), so this kind needs nothing of the catalog. The
resources' own deletes find nothing left (IF EXISTS). Its delete, the step back to Phase 3,
changes nothing: Phase 3's resources create the triggers and functions again.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from dualwrite import db
from dualwrite.objects.base import ObjectKind, Props


class Retirement(ObjectKind):
    kind = "retirement"
    compared = ("kind", "checksum")
    replace_on = ("kind",)
    drop_allowed = False

    def describe(self) -> str:
        return "the syncs of migration 013 stopped, before habit_tracker is archived (retirement)"

    def tables(self) -> list[sql.Identifier]:
        return [sql.Identifier(self.props["schema"], table) for table in self.props.get("lock", [])]

    def statements(self) -> list[sql.SQL | sql.Composed]:
        """The locks, as one statement a reviewer reads, then the drops."""
        return [*db.lock_sql(self.tables()), *(sql.SQL(text) for text in self.props.get("statements", []))]

    def create(self, conn: psycopg.Connection) -> None:
        db.lock_in_turn(conn, self.tables())
        for statement in self.props.get("statements", []):
            conn.execute(sql.SQL(statement))

    def update(self, conn: psycopg.Connection, olds: Props) -> None:
        self.create(conn)

    def adoption(self, conn: psycopg.Connection) -> None:
        return None  # nothing to take over: it only drops

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        return [] if op == "delete" else list(self.statements())

    def fingerprint_sql(self) -> sql.Composed:
        # Present while none of the triggers it stops is on any table: one created again by hand shows on refresh.
        return sql.SQL("SELECT 'stopped' WHERE NOT EXISTS (SELECT FROM pg_trigger WHERE tgname = ANY({}))").format(
            sql.Literal(list(self.props.get("triggers", []))))
