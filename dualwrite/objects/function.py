"""A function: CREATE OR REPLACE in place; only a new name or signature is a new object."""

from __future__ import annotations

import psycopg
from psycopg import sql

from dualwrite.objects import privileges
from dualwrite.objects.base import ObjectKind, Props, function_oid


class Function(ObjectKind):
    kind = "function"
    compared = ("kind", "name", "schema", "signature", "checksum", "privileges")
    replace_on = ("kind", "name", "schema", "signature")
    keyword = "FUNCTION"

    @property
    def signature(self) -> str:
        return str(self.props.get("signature", ""))

    def object_id(self) -> str:
        return f"{self.kind}:{self.schema}.{self.name}{self.signature}"

    def privileges_sql(self) -> list[sql.Composed]:
        target = sql.SQL("{}{}").format(self.qualified, sql.SQL(self.signature))  # type: ignore[arg-type]
        return privileges.statements(self.keyword, target, self.props.get("privileges", {}))

    def create(self, conn: psycopg.Connection) -> None:
        """CREATE OR REPLACE, then its privileges, in one transaction: a function that already
        exists (pasted from the guide, left by a cut-off deploy) is adopted as it is replaced."""
        conn.execute(self.file_sql())
        for statement in self.privileges_sql():
            conn.execute(statement)

    def update(self, conn: psycopg.Connection, olds: Props) -> None:
        self.create(conn)

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        statements = super().planned_sql(op, olds, changed)
        return statements if op == "delete" else [*statements, *self.privileges_sql()]

    def oid(self) -> sql.Composed:
        return function_oid(self.schema, self.name, self.signature)

    def drop_sql(self) -> sql.Composed:
        # The signature is a constant of the catalog (argument types), never user input.
        return sql.SQL("DROP {} IF EXISTS {}{}").format(
            sql.SQL(self.keyword), self.qualified, sql.SQL(self.signature)  # type: ignore[arg-type]
        )

    def fingerprint_sql(self) -> sql.Composed:
        return sql.SQL("SELECT pg_get_functiondef({})").format(self.oid())
