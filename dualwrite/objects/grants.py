"""The privileges of migration 013's tables and functions (sql/013/grants.sql).

Run again on every change (REVOKE and GRANT are idempotent); the fingerprint is the
objects' ACLs as Postgres stores them, so a privilege granted or revoked by hand shows
on refresh. A delete changes nothing: privileges go with their objects.
"""

from __future__ import annotations

from psycopg import sql

from dualwrite.objects.base import ObjectKind, Props


class Grants(ObjectKind):
    kind = "grants"
    compared = ("kind", "name", "schema", "checksum", "objects")
    replace_on = ("kind",)
    drop_allowed = False

    def update(self, conn, olds: Props) -> None:
        conn.execute(self.file_sql())

    def fingerprint_sql(self) -> sql.Composed:
        return sql.SQL(
            "SELECT concat_ws(' / ',"
            " (SELECT string_agg(relname || '=' || coalesce(relacl::text, 'default'), ' ' ORDER BY relname)"
            "  FROM pg_class WHERE relnamespace = {schema}::regnamespace AND relname = ANY({names})),"
            " (SELECT string_agg(proname || '=' || coalesce(proacl::text, 'default'), ' ' ORDER BY proname)"
            "  FROM pg_proc WHERE pronamespace = {schema}::regnamespace AND proname = ANY({names})))"
        ).format(schema=sql.Literal(self.schema), names=sql.Literal(list(self.props["objects"])))
