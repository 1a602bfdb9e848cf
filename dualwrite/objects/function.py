"""A function: CREATE OR REPLACE in place; only a new name or signature is a new object."""

from __future__ import annotations

from psycopg import sql

from dualwrite.objects.base import ObjectKind, function_oid


class Function(ObjectKind):
    kind = "function"
    compared = ("kind", "name", "schema", "signature", "checksum")
    replace_on = ("kind", "name", "schema", "signature")
    keyword = "FUNCTION"

    @property
    def signature(self) -> str:
        return str(self.props.get("signature", ""))

    def object_id(self) -> str:
        return f"{self.kind}:{self.schema}.{self.name}{self.signature}"

    def oid(self) -> sql.Composed:
        return function_oid(self.schema, self.name, self.signature)

    def drop_sql(self) -> sql.Composed:
        # The signature is a constant of the catalog (argument types), never user input.
        return sql.SQL("DROP {} IF EXISTS {}{}").format(
            sql.SQL(self.keyword), self.qualified, sql.SQL(self.signature)  # type: ignore[arg-type]
        )

    def fingerprint_sql(self) -> sql.Composed:
        return sql.SQL("SELECT pg_get_functiondef({})").format(self.oid())
