"""The archive, not yet: what the phase before retirement declares where retirement puts its archive.

Retirement renames habit_tracker to habit_tracker_archive (objects/archive.py), and its step back
renames it back. The engine deletes a resource the program no longer declares only after every
create, which is too late for the step back: Phase 3's triggers on habit_tracker are created
before it. A replace, though, runs where the resource is declared (delete, then create). So the
phase before retirement declares the same resource (same name and type) as this kind, first,
with everything on habit_tracker after it: the step back to it is a replace whose delete is the
archive's (rename back, ACL restored) and whose create is this one's, which changes nothing;
the step up to retirement replaces it the other way round. It never touches the database.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from dualwrite.objects.base import ObjectKind, Props


class ArchivePending(ObjectKind):
    kind = "archive_pending"
    compared = ("kind", "name", "schema", "table")
    replace_on = ("kind", "name", "schema", "table")
    drop_allowed = False  # its delete changes nothing: the table is the app's

    @property
    def table(self) -> str:
        return str(self.props["table"])

    def describe(self) -> str:
        return f"{self.schema}.{self.table}, not archived (the phase before retirement)"

    def create(self, conn: psycopg.Connection) -> None:
        return None

    def update(self, conn: psycopg.Connection, olds: Props) -> None:
        return None

    def adoption(self, conn: psycopg.Connection) -> None:
        return None

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        return []

    def fingerprint_sql(self) -> sql.Composed:
        # Present while the table is there under its own name.
        return sql.SQL("SELECT 'not archived' WHERE to_regclass({}) IS NOT NULL").format(
            sql.Literal(f"{self.schema}.{self.table}"))
