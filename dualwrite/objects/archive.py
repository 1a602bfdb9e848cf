"""Retirement's archive: habit_tracker kept, renamed habit_tracker_archive, that no API role can use.

Its create renames the table (rows, indexes, policies and its id sequence stay as they are: a
rename touches no row) and revokes every privilege of anon, authenticated, service_role and
PUBLIC, in one bounded transaction (column privileges too: REVOKE on a table revokes its
columns'); the ACLs it had before are recorded in the table's comment (JSON: `previous_acl`, and
`column_acls` for columns that had their own), so the step back restores exactly those, grant
options included, whoever runs it (the engine, or dualwrite/migration.py without a state). Its
delete, the step back to Phase 3, renames it back and grants those privileges again. It never
drops the table: that is an explicit, separate, reviewed change, never a phase. A database where
both tables exist, or neither, is refused in one paragraph before anything changes (also at
preview: `incompatibility`).

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


class ArchiveRefused(RuntimeError):
    """The archive cannot be created, or stepped back from, as the database is (one paragraph)."""
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

    def _exists(self, conn: psycopg.Connection, name: str) -> bool:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{self.schema}.{name}",)).fetchone()[0]  # type: ignore[index]

    def incompatibility(self, conn: psycopg.Connection) -> str | None:
        if not self.archived:
            return None
        source, archive = self._exists(conn, self.source), self._exists(conn, self.name)
        if source and archive:
            return (f"Cannot archive {self.schema}.{self.source}: {self.schema}.{self.name} already exists beside it, "
                    f"and an archive never replaces a table that holds rows. Nothing was changed. Compare the two, keep "
                    f"the one that is current (rename the other out of the way in a reviewed change), and deploy again.")
        if not source and not archive:
            return (f"Cannot archive {self.schema}.{self.source}: neither it nor {self.schema}.{self.name} exists in "
                    f"this database. Nothing was changed. Retirement archives the app's existing table; check that "
                    f"the stack points at the right database (habit-tracker-db:db_host / db_name).")
        return None

    def create(self, conn: psycopg.Connection) -> None:
        if not self.archived:
            return
        problem = self.incompatibility(conn)
        if problem:
            raise ArchiveRefused(problem)
        if not self._exists(conn, self.source):
            # Archived already (adopted, or a refresh saw a grant made by hand): its comment keeps the
            # ACL from before, and the archive loses whatever was granted since.
            conn.execute(self._revoke())
            return
        regclass = f"{self.schema}.{self.source}"
        previous = conn.execute("SELECT relacl::text FROM pg_class WHERE oid = to_regclass(%s)",
                                (regclass,)).fetchone()[0]  # type: ignore[index]
        columns: dict[str, str] = dict(conn.execute(
            "SELECT attname, attacl::text FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
            "AND NOT attisdropped AND attacl IS NOT NULL", (regclass,)).fetchall())
        conn.execute(self._rename(self.source, self.name))
        conn.execute(self._revoke())
        conn.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(self.qualified, sql.Literal(json.dumps(
            {"note": MARK, "previous_acl": previous, "column_acls": columns}))))

    def update(self, conn: psycopg.Connection, olds: Props) -> None:
        self.create(conn)

    def apply_create(self, session: Session) -> dict[str, Any]:
        def work(conn: psycopg.Connection) -> dict[str, Any]:
            self.create(conn)
            return {"fingerprint": self.fingerprint(conn), "previous_acl": self.previous_acl(conn)}

        return session.change(work)

    def _recorded(self, conn: psycopg.Connection) -> dict[str, Any]:
        """What the archive's comment records ({} when it records nothing readable)."""
        row = conn.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", (f"{self.schema}.{self.name}",)
                           ).fetchone()
        try:
            recorded = json.loads(row[0]) if row and row[0] else {}
        except ValueError:
            return {}
        return recorded if isinstance(recorded, dict) else {}

    def previous_acl(self, conn: psycopg.Connection) -> str | None:
        """The ACL habit_tracker had before it was archived, as its comment records it."""
        if not self.archived:
            return None
        previous = self._recorded(conn).get("previous_acl")
        return previous if isinstance(previous, str) else None

    def drop(self, conn: psycopg.Connection) -> None:
        """The step back: rename back, then grant again what the API roles and PUBLIC had."""
        if not self.archived or conn.execute("SELECT to_regclass(%s)", (f"{self.schema}.{self.name}",)
                                             ).fetchone()[0] is None:  # type: ignore[index]
            return
        if self._exists(conn, self.source):
            raise ArchiveRefused(
                f"Cannot step back from retirement: {self.schema}.{self.source} exists again beside the archive "
                f"{self.schema}.{self.name}, and renaming the archive back would need to replace it. Nothing was "
                f"changed. Move the new {self.source} out of the way (after saving its rows) and run the step again.")
        recorded = self._recorded(conn)
        conn.execute(self._rename(self.name, self.source))
        conn.execute(sql.SQL("COMMENT ON TABLE {} IS NULL").format(sql.Identifier(self.schema, self.source)))
        self._grant_again(conn, recorded.get("previous_acl"), None)
        columns = recorded.get("column_acls")
        for column, acl in (columns.items() if isinstance(columns, dict) else ()):
            self._grant_again(conn, acl, column)

    def _grant_again(self, conn: psycopg.Connection, acl: Any, column: str | None) -> None:
        """GRANT again what an API role or PUBLIC had in `acl` (with its grant option): the owner's and
        other roles' privileges were never revoked."""
        if not isinstance(acl, str):
            return
        granted = conn.execute(
            "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, a.privilege_type, "
            "a.is_grantable FROM aclexplode(%s::aclitem[]) AS a", (acl,)).fetchall()
        target = sql.Identifier(self.schema, self.source)
        on = sql.SQL("({}) ON TABLE {}").format(sql.Identifier(column), target) if column else \
            sql.SQL(" ON TABLE {}").format(target)
        for grantee, privilege, grantable in granted:
            if grantee not in (*API_ROLES, "PUBLIC") or privilege not in PRIVILEGES:
                continue
            conn.execute(sql.SQL("GRANT {}{} TO {}{}").format(
                sql.SQL(privilege), on,  # one of PRIVILEGES, checked above
                sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee),
                sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL("")))

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
