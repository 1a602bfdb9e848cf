"""A table of migration 013 (idempotency_log, dual_write_errors): created once, never replaced.

Tables hold rows, so nothing here ever drops one to apply a change: a changed SQL file
stops the deploy with what to do instead, and a delete drops a table only while it is
empty (the Pulumi program also retains tables on delete, so removing one from the
program by mistake only forgets it). The declared rollback `dual_write: removed` is the
one way rows go (objects/removal.py).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from dualwrite.objects.base import ObjectKind, Props


class TableHoldsRows(RuntimeError):
    pass


class Table(ObjectKind):
    kind = "table"
    # Renaming or moving a table is never a drop-and-create: update refuses instead.
    replace_on = ("kind",)

    def update(self, conn: psycopg.Connection, olds: Props) -> None:
        raise RuntimeError(
            f"Table {self.schema}.{self.name}: its SQL changed (or it was altered by hand), and tables "
            "are never dropped and recreated automatically because that would lose rows. Write an explicit "
            "ALTER TABLE migration in its SQL file's place, or drop it on purpose with `invoke rollback "
            "--level all`."
        )

    def drop_sql(self) -> sql.Composed:
        return sql.SQL("DROP TABLE IF EXISTS {}").format(self.qualified)

    def drop(self, conn: psycopg.Connection) -> None:
        if conn.execute(sql.SQL("SELECT to_regclass({})").format(self.regclass_text)).fetchone()[0] is None:
            return
        if conn.execute(sql.SQL("SELECT EXISTS (SELECT FROM {})").format(self.qualified)).fetchone()[0]:
            raise TableHoldsRows(
                f"Table {self.schema}.{self.name} holds rows, so it is not dropped. To drop it and its rows on "
                "purpose, declare `habit-tracker-db:dual_write: removed` (or run `invoke rollback --level all`)."
            )
        conn.execute(self.drop_sql())

    def fingerprint_sql(self) -> sql.Composed:
        # Columns, constraints, RLS and policies, as Postgres stores them.
        return sql.SQL(
            "SELECT c.relrowsecurity::text || ':' || coalesce(("
            "  SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text"
            "         || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY a.attnum)"
            "  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            "  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '') || ':' || coalesce(("
            "  SELECT string_agg(pg_get_constraintdef(k.oid), ', ' ORDER BY k.conname)"
            "  FROM pg_constraint k WHERE k.conrelid = c.oid), '') || ':' || coalesce(("
            "  SELECT string_agg(pol.polname || pg_get_expr(pol.polqual, pol.polrelid), ', ' ORDER BY pol.polname)"
            "  FROM pg_policy pol WHERE pol.polrelid = c.oid), '')"
            " FROM pg_class c WHERE c.oid = to_regclass({})"
        ).format(self.regclass_text)
