"""Retirement (issue 18): habit_tracker kept as a renamed archive that no API role can read.

create  renames `table` (habit_tracker) to `name` (habit_tracker_archive) and revokes every
        privilege PUBLIC, anon, authenticated and service_role had on it (its columns' too), in
        one transaction, after recording the table's ACL and its columns' ACLs in
        habit_tracker_db.archived_acl (the private schema of the owner record: no API role can
        reach it). Rows, indexes, policies and the id sequence move with the table untouched.
delete  the step back: renames the archive back and restores exactly the recorded ACLs (every
        grantee, privilege and grant option), then forgets the record. Never drops the table:
        dropping the archive is an explicit, separate, reviewed change, not something a phase
        step does (drop_allowed stays True because the delete only renames).
read    the fingerprint says whether the archive is in place (archive there, table gone).

Bad input (neither table there, or both) is refused in one paragraph before anything changes;
the provider also shows it at preview (`incompatibility`).
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from dualwrite.objects.base import ObjectKind
from dualwrite.objects.privileges import ALLOWED, REVOKED_FROM, _roles

RECORD_SCHEMA = "habit_tracker_db"
RECORD = sql.Identifier(RECORD_SCHEMA, "archived_acl")


class ArchiveRefused(RuntimeError):
    """The archive cannot be created or stepped back from as the database is (one paragraph)."""


def _exists(conn: psycopg.Connection, schema: str, name: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.{name}",)).fetchone()[0]  # type: ignore[index]


class Archive(ObjectKind):
    kind = "archive"
    compared = ("kind", "name", "schema", "table", "checksum")
    replace_on = ("kind", "name", "schema", "table")

    @property
    def table(self) -> str:
        return str(self.props["table"])

    def object_id(self) -> str:
        return f"{self.kind}:{self.schema}.{self.table} as {self.name}"

    def describe(self) -> str:
        return f"archive of {self.schema}.{self.table} ({self.schema}.{self.name})"

    # --- checks before anything changes -------------------------------------------------

    def incompatibility(self, conn: psycopg.Connection) -> str | None:
        table, archive = _exists(conn, self.schema, self.table), _exists(conn, self.schema, self.name)
        if table and archive:
            return (f"Cannot archive {self.schema}.{self.table}: {self.schema}.{self.name} already exists beside it, and "
                    f"an archive never replaces a table that holds rows. Nothing was changed. Compare the two, keep "
                    f"the one that is current (rename the other out of the way in a reviewed change), and deploy again.")
        if not table and not archive:
            return (f"Cannot archive {self.schema}.{self.table}: neither it nor {self.schema}.{self.name} exists in this "
                    f"database. Nothing was changed. Retirement archives the app's existing table; check that the stack "
                    f"points at the right database (habit-tracker-db:db_host / db_name).")
        return None

    def adoption(self, conn: psycopg.Connection) -> str | None:
        if self.fingerprint(conn) is None:
            return None
        return f"adopt the existing {self.describe()}: already archived, its recorded ACL kept for the step back"

    # --- operations -----------------------------------------------------------------------

    def _acls(self, conn: psycopg.Connection, table: str) -> tuple[str | None, dict[str, str]]:
        """(the table's ACL, {column: its ACL}) as aclitem[] text; None/absent where the default applies."""
        regclass = f"{self.schema}.{table}"
        relacl = conn.execute("SELECT relacl::text FROM pg_class WHERE oid = to_regclass(%s)", (regclass,)).fetchone()[0]  # type: ignore[index]
        columns: dict[str, str] = dict(conn.execute(
            "SELECT attname, attacl::text FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
            "AND NOT attisdropped AND attacl IS NOT NULL", (regclass,)).fetchall())
        return relacl, columns

    def create(self, conn: psycopg.Connection) -> None:
        problem = self.incompatibility(conn)
        if problem:
            raise ArchiveRefused(problem)
        if _exists(conn, self.schema, self.name):
            # Archived already (a retried deploy, or a refresh saw a grant made by hand): the recorded
            # ACL stays as it was, and the archive loses whatever was granted since.
            conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(sql.Identifier(self.schema, self.name),
                                                                          _roles(REVOKED_FROM)))
            return
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(self.schema, self.table)))
        relacl, columns = self._acls(conn, self.table)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(RECORD_SCHEMA)))
        conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(sql.Identifier(RECORD_SCHEMA),
                                                                       _roles(REVOKED_FROM)))
        conn.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (archive text PRIMARY KEY, original text NOT NULL, relacl aclitem[], "
            "column_acls jsonb NOT NULL, archived_at timestamptz NOT NULL DEFAULT now())").format(RECORD))
        conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(RECORD, _roles(REVOKED_FROM)))
        conn.execute(sql.SQL(
            "INSERT INTO {} (archive, original, relacl, column_acls) VALUES (%s, %s, %s::aclitem[], %s::jsonb) "
            "ON CONFLICT (archive) DO UPDATE SET original = EXCLUDED.original, relacl = EXCLUDED.relacl, "
            "column_acls = EXCLUDED.column_acls, archived_at = now()").format(RECORD),
            (f"{self.schema}.{self.name}", self.table, relacl, Jsonb(columns)))
        conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(self.schema, self.table),
                                                                   sql.Identifier(self.name)))
        # REVOKE on a table revokes its columns' privileges too.
        conn.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(sql.Identifier(self.schema, self.name),
                                                                      _roles(REVOKED_FROM)))

    def update(self, conn: psycopg.Connection, olds: dict) -> None:  # type: ignore[override]
        self.create(conn)

    def drop(self, conn: psycopg.Connection) -> None:
        """The step back: the archive becomes the table again, with the ACLs it had."""
        if not _exists(conn, self.schema, self.name):
            return  # never archived, or stepped back already
        if _exists(conn, self.schema, self.table):
            raise ArchiveRefused(
                f"Cannot step back from retirement: {self.schema}.{self.table} exists again beside the archive "
                f"{self.schema}.{self.name}, and renaming the archive back would need to replace it. Nothing was "
                f"changed. Move the new {self.table} out of the way (after saving its rows) and run the step again.")
        record = None
        if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{RECORD_SCHEMA}.archived_acl",)).fetchone()[0]:  # type: ignore[index]
            record = conn.execute(sql.SQL("SELECT original, relacl::text, column_acls FROM {} WHERE archive = %s")
                                  .format(RECORD), (f"{self.schema}.{self.name}",)).fetchone()
        if record is None:
            raise ArchiveRefused(
                f"Cannot step back from retirement: the ACL {self.schema}.{self.table} had before it was archived is "
                f"not recorded in {RECORD_SCHEMA}.archived_acl, so its privileges cannot be restored exactly. Nothing "
                f"was changed. Rename it back by hand (ALTER TABLE {self.schema}.{self.name} RENAME TO {self.table}) "
                f"and grant what the app's roles need, in a reviewed change.")
        _, relacl, column_acls = record
        target = sql.Identifier(self.schema, self.table)
        conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(self.schema, self.name),
                                                                   sql.Identifier(self.table)))
        self._restore(conn, target, relacl, None)
        for column, acl in column_acls.items():
            self._restore(conn, target, acl, column)
        conn.execute(sql.SQL("DELETE FROM {} WHERE archive = %s").format(RECORD), (f"{self.schema}.{self.name}",))

    def _restore(self, conn: psycopg.Connection, target: sql.Identifier, acl: str | None, column: str | None) -> None:
        """GRANT each recorded (grantee, privilege, grant option) again; a NULL ACL is the default
        (owner only), which the REVOKE of create left already."""
        if acl is None:
            return
        items = conn.execute(
            "SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, "
            "a.is_grantable FROM aclexplode(%s::aclitem[]) AS a "
            "WHERE a.grantee <> (SELECT relowner FROM pg_class WHERE oid = to_regclass(%s))",
            (acl, f"{self.schema}.{self.table}")).fetchall()
        on = sql.SQL("({}) ON TABLE {}").format(sql.Identifier(column), target) if column else \
            sql.SQL(" ON TABLE {}").format(target)
        for grantee, privilege, grantable in items:
            if privilege not in ALLOWED["TABLE"]:
                raise ArchiveRefused(f"Cannot restore {privilege} on {self.schema}.{self.table}: not a table privilege "
                                     f"(recorded ACL {acl}). Nothing was changed.")
            conn.execute(sql.SQL("GRANT {}{} TO {}{}").format(
                sql.SQL(privilege), on,  # one of ALLOWED["TABLE"], checked above
                sql.SQL("PUBLIC") if grantee is None else sql.Identifier(grantee),
                sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL("")))

    def drop_sql(self) -> sql.Composed:
        return sql.SQL("ALTER TABLE {} RENAME TO {}; -- then the recorded ACL is granted again").format(
            sql.Identifier(self.schema, self.name), sql.Identifier(self.table))

    def planned_sql(self, op: str, olds: dict, changed: list[str]) -> list[sql.Composable]:  # type: ignore[override]
        if op == "delete":
            return [self.drop_sql()]
        return [sql.SQL("-- record the ACLs of {} in {}").format(sql.Identifier(self.schema, self.table), RECORD),
                sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(self.schema, self.table),
                                                              sql.Identifier(self.name)),
                sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(sql.Identifier(self.schema, self.name),
                                                                 _roles(REVOKED_FROM))]

    def fingerprint_sql(self) -> sql.Composed:
        # In place: the archive is there and the table is not. Its ACL is part of it (a grant made
        # by hand shows as a change on refresh, and `up` revokes it again).
        return sql.SQL("SELECT CASE WHEN to_regclass({}) IS NULL THEN 'archived ' || relacl::text END "
                       "FROM pg_class WHERE oid = to_regclass({})").format(
            sql.Literal(f"{self.schema}.{self.table}"), sql.Literal(f"{self.schema}.{self.name}"))
