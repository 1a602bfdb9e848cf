"""An index on idempotency_log: a new definition is a new index (drop, then create)."""

from __future__ import annotations

from psycopg import sql

from dualwrite.objects.base import ObjectKind


class Index(ObjectKind):
    kind = "index"
    replace_on = ("kind", "name", "schema", "checksum")

    def drop_sql(self) -> sql.Composed:
        return sql.SQL("DROP INDEX IF EXISTS {}").format(self.qualified)

    def fingerprint_sql(self) -> sql.Composed:
        return sql.SQL("SELECT pg_get_indexdef(to_regclass({}))").format(self.regclass_text)
