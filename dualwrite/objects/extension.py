"""An extension the migration needs (pg_cron for Phase 1).

Never dropped: an extension is shared by the whole database (other jobs may use
pg_cron), so leaving Phase 1 unschedules the job and keeps the extension.
"""

from __future__ import annotations

from psycopg import sql

from dualwrite.objects.base import ObjectKind, Props


class Extension(ObjectKind):
    kind = "extension"
    replace_on = ("kind", "name")
    drop_allowed = False

    def object_id(self) -> str:
        return f"{self.kind}:{self.schema}.{self.name}"

    def create_sql(self) -> sql.Composed:
        return sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(self.name))

    def create(self, conn) -> None:
        conn.execute(self.create_sql())

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        return [] if op == "delete" else [self.create_sql()]

    def update(self, conn, olds: Props) -> None:
        self.create(conn)

    def fingerprint_sql(self) -> sql.Composed:
        return sql.SQL("SELECT extname FROM pg_extension WHERE extname = {}").format(sql.Literal(self.name))
