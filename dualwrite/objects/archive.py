"""Retirement's archive: habit_tracker kept, renamed habit_tracker_archive, that no API role can use.

Its create renames the table (rows, indexes, policies and its id sequence stay as they are: a
rename touches no row) and revokes every privilege of anon, authenticated, service_role and
PUBLIC, in one bounded transaction; the ACL it had before is recorded in the table's comment
(JSON: `previous_acl`), so the step back restores exactly that whoever runs it (the engine, or
dualwrite/migration.py without a state). Its delete, the step back to Phase 3, renames it back
and grants those privileges again. It never drops the table: that is an explicit, separate,
reviewed change, never a phase.

The phase before retirement declares the same resource with `archived: false` (a no-op) and
everything on habit_tracker depends on it. A change of `archived` is a replace, and the engine
runs a replace (delete, then create) where the resource is declared, while it deletes removed
resources only after every create: so the step back renames the table back before Phase 3's
triggers are created on it. (Going up, objects/retirement.py stops the syncs first.)
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql

from dualwrite.db import Session
from dualwrite.objects.base import ObjectKind, Props

# The roles that lose every privilege on the archive (PUBLIC as well).
API_ROLES = ("anon", "authenticated", "service_role")
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
MARK = "habit-tracker-db migration 013 archive"


class Archive(ObjectKind):
    kind = "archive"
    compared = ("kind", "name", "schema", "source", "archived")
    replace_on = ("kind", "name", "schema", "source", "archived")

    @property
    def source(self) -> str:
        return str(self.props.get("source", "habit_tracker"))

    @property
    def archived(self) -> bool:
        return bool(self.props.get("archived", True))

    def describe(self) -> str:
        what = f"{self.schema}.{self.source} archived as {self.name}"
        return what if self.archived else f"{what}: not yet (the phase before retirement)"

    def _rename(self, old: str, new: str) -> sql.Composed:
        return sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(self.schema, old), sql.Identifier(new))

    def _revoke(self) -> sql.Composed:
        return sql.SQL("REVOKE ALL ON TABLE {} FROM {}, PUBLIC").format(
            self.qualified, sql.SQL(", ").join(sql.Identifier(role) for role in API_ROLES))

    def create(self, conn: psycopg.Connection) -> None:
        if not self.archived:
            return
        if conn.execute("SELECT to_regclass(%s)", (f"{self.schema}.{self.source}",)).fetchone()[0] is None:  # type: ignore[index]
            return  # archived already (adopted): its comment keeps the ACL from before
        previous = conn.execute("SELECT relacl::text FROM pg_class WHERE oid = to_regclass(%s)",
                                (f"{self.schema}.{self.source}",)).fetchone()[0]  # type: ignore[index]
        conn.execute(self._rename(self.source, self.name))
        conn.execute(self._revoke())
        conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(
            self.qualified, sql.Literal(json.dumps({"note": MARK, "previous_acl": previous}))))

    def apply_create(self, session: Session) -> dict[str, Any]:
        def work(conn: psycopg.Connection) -> dict[str, Any]:
            self.create(conn)
            return {"fingerprint": self.fingerprint(conn), "previous_acl": self.previous_acl(conn)}

        return session.change(work)

    def previous_acl(self, conn: psycopg.Connection) -> str | None:
        """The ACL habit_tracker had before it was archived, as its comment records it."""
        if not self.archived:
            return None
        row = conn.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", (f"{self.schema}.{self.name}",)
                           ).fetchone()
        try:
            return json.loads(row[0])["previous_acl"] if row and row[0] else None
        except (ValueError, KeyError, TypeError):
            return None

    def drop(self, conn: psycopg.Connection) -> None:
        """The step back: rename back, then grant again what the API roles and PUBLIC had."""
        if not self.archived or conn.execute("SELECT to_regclass(%s)", (f"{self.schema}.{self.name}",)
                                             ).fetchone()[0] is None:  # type: ignore[index]
            return
        previous = self.previous_acl(conn)
        conn.execute(self._rename(self.name, self.source))
        conn.execute(sql.SQL("COMMENT ON TABLE {} IS NULL").format(sql.Identifier(self.schema, self.source)))
        if previous is None:
            return
        granted = conn.execute(
            "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, a.privilege_type "
            "FROM aclexplode(%s::aclitem[]) AS a", (previous,)).fetchall()
        for grantee, privilege in granted:
            if grantee not in (*API_ROLES, "PUBLIC") or privilege not in PRIVILEGES:
                continue  # the owner's and other roles' privileges were never revoked
            conn.execute(sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                sql.SQL(privilege), sql.Identifier(self.schema, self.source),
                sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee)))

    def drop_sql(self) -> sql.Composed:
        return self._rename(self.name, self.source)

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        if op == "delete" or (op == "replace" and not self.archived):
            return [sql.SQL("-- the step back: rename back, grant again what the API roles had before"),
                    self._rename(self.name, self.source)] if olds.get("archived", True) else []
        if not self.archived:
            return []
        return [self._rename(self.source, self.name), self._revoke(),
                sql.SQL("-- the ACL it had before, recorded in its comment for the step back")]

    def adoption(self, conn: psycopg.Connection) -> str | None:
        return None  # an archive made by hand is read by `fingerprint` and taken as it is

    def fingerprint_sql(self) -> sql.Composed:
        if not self.archived:  # present while habit_tracker is there, not archived
            return sql.SQL("SELECT 'not archived' WHERE to_regclass({}) IS NOT NULL").format(
                sql.Literal(f"{self.schema}.{self.source}"))
        return sql.SQL("SELECT coalesce(relacl::text, '') FROM pg_class WHERE oid = to_regclass({}) "
                       "AND to_regclass({}) IS NULL").format(
            sql.Literal(f"{self.schema}.{self.name}"), sql.Literal(f"{self.schema}.{self.source}"))
