"""The dual-write trigger on habit_tracker: changed in place, in one transaction.

Its file is CREATE OR REPLACE TRIGGER (PostgreSQL 14+), so a new definition, or a trigger
that already exists (pasted from the guide), is swapped atomically with its enabled state:
a drop and a create in two transactions would let writes in between go unsynced.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from dualwrite.objects.base import ObjectKind, Props


def set_enabled_sql(name: str, on_table: str, enabled: bool, schema: str) -> sql.Composed:
    """The guide's rollback option 1 (DISABLE) and its way back (ENABLE)."""
    return sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(
        sql.Identifier(schema, on_table), sql.SQL("ENABLE" if enabled else "DISABLE"), sql.Identifier(name)
    )


def trigger_states(conn: psycopg.Connection, names: Iterable[str], on_table: str | None = None,
                   schema: str = "public") -> dict[str, str]:
    """tgname -> tgenabled of the named triggers the database has ('O' fires, 'D' disabled; 'R'/'A'
    are set only by hand): on `on_table`, or on whichever table they sit when it is None (a retired
    stack's triggers would sit on the archive)."""
    query = sql.SQL("SELECT tgname, tgenabled FROM pg_trigger WHERE tgname = ANY({}) AND NOT tgisinternal").format(
        sql.Literal(list(names)))
    if on_table is not None:
        query = sql.SQL("{} AND tgrelid = to_regclass({})").format(query, sql.Literal(f"{schema}.{on_table}"))
    return {name: enabled for name, enabled in conn.execute(query).fetchall()}


class Trigger(ObjectKind):
    kind = "trigger"
    compared = ("kind", "name", "schema", "on_table", "checksum", "enabled")
    replace_on = ("kind", "name", "schema", "on_table")

    @property
    def on_table(self) -> str:
        return str(self.props["on_table"])

    @property
    def enabled(self) -> bool:
        return bool(self.props.get("enabled", True))

    def object_id(self) -> str:
        return f"{self.kind}:{self.schema}.{self.name} on {self.on_table}"

    def set_enabled_sql(self, enabled: bool) -> sql.Composed:
        return set_enabled_sql(self.name, self.on_table, enabled, self.schema)

    def create(self, conn: psycopg.Connection) -> None:
        conn.execute(self.file_sql())
        if not self.enabled:
            conn.execute(self.set_enabled_sql(False))

    def update(self, conn: psycopg.Connection, olds: Props) -> None:
        if olds.get("checksum") != self.props.get("checksum"):
            conn.execute(self.file_sql())  # a new definition starts enabled: the state follows below
        conn.execute(self.set_enabled_sql(self.enabled))

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        if op == "update" and set(changed) <= {"enabled"}:
            return [self.set_enabled_sql(self.enabled)]
        statements = super().planned_sql(op, olds, changed)
        return statements if op == "delete" or self.enabled else statements + [self.set_enabled_sql(False)]

    def drop_sql(self) -> sql.Composed:
        return sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
            sql.Identifier(self.name), sql.Identifier(self.schema, self.on_table)
        )

    def drop(self, conn: psycopg.Connection) -> None:
        table = sql.Literal(f"{self.schema}.{self.on_table}")
        if conn.execute(sql.SQL("SELECT to_regclass({})").format(table)).fetchone()[0] is None:
            return  # the app's table is gone: so is its trigger
        conn.execute(self.drop_sql())

    def fingerprint_sql(self) -> sql.Composed:
        # tgenabled is read separately (observed): a disabled trigger is drift of its own.
        return sql.SQL(
            "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t "
            "WHERE t.tgname = {} AND t.tgrelid = to_regclass({}) AND NOT t.tgisinternal"
        ).format(sql.Literal(self.name), sql.Literal(f"{self.schema}.{self.on_table}"))

    def observed(self, conn: psycopg.Connection) -> dict[str, Any]:
        state = trigger_states(conn, [self.name], self.on_table, self.schema).get(self.name)
        return {} if state is None else {"enabled": state != "D"}
