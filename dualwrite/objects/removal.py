"""The declared rollback `dual_write: removed`: the guide's option 3, as a stack declares it.

Tables are retained when their resources leave the program (so removing one by mistake
never drops it), which means nothing else would ever drop them. This object does, on
purpose: its create runs the guide's "Drop Everything" in one bounded transaction, the
same statements as `invoke rollback --level all`, which dualwrite/rollback.py declares in
its props (`removal_props`: the cleanup job to unschedule, then each DROP), so this kind
needs nothing of the catalog (no import cycle catalog -> objects -> rollback -> catalog).
Its delete (the stack declaring the migration again) changes nothing; the objects come
back as they are created again.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from dualwrite import db
from dualwrite.objects.base import ObjectKind, Props
from dualwrite.objects.cron_job import has_pg_cron, unschedule_sql


class Removal(ObjectKind):
    kind = "removal"
    compared = ("kind",)
    replace_on = ("kind",)
    drop_allowed = False

    @property
    def name(self) -> str:
        return "migration_013"

    def object_id(self) -> str:
        return "removal:migration_013"

    def describe(self) -> str:
        return "removal of every object of migration 013 (rollback option 3, declared)"

    def statements(self, conn: psycopg.Connection | None = None) -> list[sql.SQL | sql.Composed]:
        """The cleanup job unscheduled (when pg_cron is there to ask), then every DROP, in order."""
        drops: list[sql.SQL | sql.Composed] = [sql.SQL(text) for text in self.props.get("statements", [])]
        if conn is not None and not has_pg_cron(conn):
            return drops
        return [unschedule_sql(str(self.props.get("cron_job", "cleanup_idempotency_log"))), *drops]

    def create(self, conn: psycopg.Connection) -> None:
        # Every table its drops take, locked up front (dualwrite/rollback.py `tables_to_lock` says why).
        db.lock_in_turn(conn, db.existing_tables(conn, self.props.get("lock", [])))
        for statement in self.statements(conn):
            conn.execute(statement)

    def update(self, conn: psycopg.Connection, olds: Props) -> None:
        self.create(conn)

    def adoption(self, conn) -> None:
        return None  # nothing in the database to take over

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        tables = [db.table_identifier(name) for name in self.props.get("lock", [])]
        return [] if op == "delete" else [*db.lock_sql(tables), *self.statements()]

    def fingerprint_sql(self) -> sql.SQL:
        # Present while idempotency_log is gone: a table created again by hand shows on refresh.
        return sql.SQL("SELECT 'removed' WHERE to_regclass('public.idempotency_log') IS NULL")
