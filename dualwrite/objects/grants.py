"""The Security component's `privileges`: every object's privileges, watched and put back.

Each table and function already runs its own REVOKE/GRANT in the transaction that creates
it (objects/privileges.py); this object runs them all again on every change and reads the
ACLs back, so a privilege granted or revoked by hand (say, in the dashboard) shows on
refresh and the next `up` puts it back. A delete changes nothing: privileges go with their
objects.

Stacks deployed before per-object privileges hold this resource with the SQL of a
`grants.sql` file instead of `declared`; their first update replaces that with `declared`.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from dualwrite.objects import privileges
from dualwrite.objects.base import ObjectKind, Props


class Grants(ObjectKind):
    kind = "grants"
    compared = ("kind", "name", "schema", "checksum", "objects")
    replace_on = ("kind",)
    drop_allowed = False

    def statements(self) -> list[sql.Composed]:
        out: list[sql.Composed] = []
        for obj in self.props.get("declared", []):
            keyword = "TABLE" if obj["kind"] == "table" else obj["kind"].upper()
            target = sql.SQL("{}{}").format(sql.Identifier(obj["schema"], obj["name"]),
                                            sql.SQL(obj.get("signature", "")))  # type: ignore[arg-type]
            out.extend(privileges.statements(keyword, target, obj["privileges"]))
        return out

    def create(self, conn: psycopg.Connection) -> None:
        for statement in self.statements():
            conn.execute(statement)

    def update(self, conn: psycopg.Connection, olds: Props) -> None:
        self.create(conn)

    def adoption(self, conn) -> None:
        return None  # nothing in the database to take over

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        return [] if op == "delete" else list(self.statements())

    def fingerprint_sql(self) -> sql.Composed:
        return sql.SQL(
            "SELECT concat_ws(' / ',"
            " (SELECT string_agg(relname || '=' || coalesce(relacl::text, 'default'), ' ' ORDER BY relname)"
            "  FROM pg_class WHERE relnamespace = {schema}::regnamespace AND relname = ANY({names})),"
            " (SELECT string_agg(proname || '=' || coalesce(proacl::text, 'default'), ' ' ORDER BY proname)"
            "  FROM pg_proc WHERE pronamespace = {schema}::regnamespace AND proname = ANY({names})))"
        ).format(schema=sql.Literal(self.schema), names=sql.Literal(list(self.props["objects"])))
