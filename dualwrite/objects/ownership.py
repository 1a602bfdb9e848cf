"""Who owns migration 013 in a database: one row of habit_tracker_db.owner (sql/013/migration_owner.sql).

The first resource of every stack. Its create and update claim the row for the stack's
project and stack in the same bounded transaction that creates the record's table, and
refuse when another stack holds it; the provider also checks at preview (`incompatibility`),
before any object is created or adopted. Objects pasted by hand have no owner record and are
still adopted: the first stack to deploy claims them. Every other resource carries its
owner (`owner` input, "project/stack"), and its delete is refused while the database names
another owner (`refuse_unless_owner`), so a stack that was handed over cannot drop what the
new owner manages. Ownership moves only by `take_over` (`invoke take-ownership`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from dualwrite.objects.base import ObjectKind, Props

RECORD_SCHEMA = "habit_tracker_db"
RECORD = sql.Identifier(RECORD_SCHEMA, "owner")
MIGRATION = "013"


class Owner(NamedTuple):
    project: str
    stack: str

    def __str__(self) -> str:
        return f"{self.project}/{self.stack}"

    @staticmethod
    def parse(text: str) -> "Owner":
        project, _, stack = text.partition("/")
        return Owner(project, stack)


class OwnedElsewhere(RuntimeError):
    """Another stack owns migration 013 in this database (one paragraph)."""


def recorded(conn: psycopg.Connection, *, lock: bool = False) -> tuple[Owner, Any] | None:
    """(owner, claimed_at) of migration 013 in this database; None when no stack has claimed it.
    `lock`: hold the record (SHARE ROW EXCLUSIVE) until the transaction ends, so two claims serialize."""
    if conn.execute("SELECT to_regclass('habit_tracker_db.owner')").fetchone()[0] is None:  # type: ignore[index]
        return None
    if lock:
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(RECORD))
    row = conn.execute(sql.SQL("SELECT project, stack, claimed_at FROM {} WHERE migration = {}").format(
        RECORD, sql.Literal(MIGRATION))).fetchone()
    return None if row is None else (Owner(row[0], row[1]), row[2])


def _database(conn: psycopg.Connection) -> str:
    return f"database '{conn.info.dbname}' on {conn.info.host}:{conn.info.port}"


def refusal(conn: psycopg.Connection, claimant: Owner, owner: Owner, since: Any) -> str:
    return (f"Stack '{claimant.stack}' cannot deploy migration 013 to {_database(conn)}: stack '{owner.stack}' of "
            f"project '{owner.project}' owns it there (recorded in {RECORD_SCHEMA}.owner on {since:%Y-%m-%d %H:%M} UTC). "
            f"Deploying would adopt and change the objects that stack manages, and destroying either stack would drop "
            f"them. Nothing was changed. If this stack file was copied from '{owner.stack}', point "
            f"habit-tracker-db:db_host / db_name at this stack's own database. To move migration 013 in this database "
            f"to this stack on purpose, run `invoke take-ownership --stack {claimant.stack} --from {owner.stack}`.")


def refuse_unless_owner(conn: psycopg.Connection, owner: str | None, what: str, hint: str | None = None) -> None:
    """Before a drop: raise OwnedElsewhere when the database names an owner other than `owner`
    (state written before owners were recorded names none: nothing to compare)."""
    if not owner:
        return
    found = recorded(conn)
    if found is not None and found[0] != Owner.parse(owner):
        current, stack = found[0], Owner.parse(owner).stack
        hint = hint or (f"To forget this stack's resources without dropping them, run "
                        f"`pulumi stack rm --force --stack {stack}`.")
        raise OwnedElsewhere(
            f"Stack '{stack}' does not drop {what} in {_database(conn)}: stack '{current.stack}' of "
            f"project '{current.project}' owns migration 013 there now (since {found[1]:%Y-%m-%d %H:%M} UTC). "
            f"Nothing was changed. {hint}")


def take_over(conn: psycopg.Connection, claimant: Owner, from_stack: str) -> Owner:
    """Move migration 013 in this database from stack `from_stack` to `claimant`, inside the caller's
    transaction; the previous owner. Refused (OwnedElsewhere) unless `from_stack` owns it now."""
    found = recorded(conn, lock=True)
    if found is None:
        raise OwnedElsewhere(f"No stack owns migration 013 in {_database(conn)} yet, so there is nothing to take "
                             f"from '{from_stack}'. Nothing was changed. `invoke up --stack {claimant.stack}` claims it.")
    owner, since = found
    if owner == claimant:
        return owner
    if owner != Owner(claimant.project, from_stack):
        raise OwnedElsewhere(
            f"Migration 013 in {_database(conn)} is owned by stack '{owner.stack}' of project '{owner.project}' "
            f"(since {since:%Y-%m-%d %H:%M} UTC), not by '{from_stack}'. Nothing was changed. To take it from that "
            f"stack, run `invoke take-ownership --stack {claimant.stack} --from {owner.stack}`.")
    conn.execute(sql.SQL("UPDATE {} SET project = {}, stack = {}, claimed_at = now() WHERE migration = {}").format(
        RECORD, sql.Literal(claimant.project), sql.Literal(claimant.stack), sql.Literal(MIGRATION)))
    return owner


class Ownership(ObjectKind):
    kind = "ownership"
    compared = ("kind", "name", "schema", "checksum", "project", "stack")
    replace_on = ("kind",)

    @property
    def claimant(self) -> Owner:
        return Owner(str(self.props["project"]), str(self.props["stack"]))

    def object_id(self) -> str:
        return f"{self.kind}:{RECORD_SCHEMA}.owner:{MIGRATION}"

    def describe(self) -> str:
        return f"owner record of migration 013 ({RECORD_SCHEMA}.owner)"

    def incompatibility(self, conn: psycopg.Connection) -> str | None:
        found = recorded(conn)
        if found is None or found[0] == self.claimant:
            return None
        return refusal(conn, self.claimant, *found)

    def adoption(self, conn: psycopg.Connection) -> str | None:
        return None  # claiming an unowned database adopts nothing by itself

    def create(self, conn: psycopg.Connection) -> None:
        conn.execute(self.file_sql())
        found = recorded(conn, lock=True)
        if found is None:
            conn.execute(sql.SQL("INSERT INTO {} (migration, project, stack) VALUES ({}, {}, {})").format(
                RECORD, sql.Literal(MIGRATION), sql.Literal(self.claimant.project), sql.Literal(self.claimant.stack)))
        elif found[0] != self.claimant:
            raise OwnedElsewhere(refusal(conn, self.claimant, *found))

    def update(self, conn: psycopg.Connection, olds: Props) -> None:
        self.create(conn)

    def fingerprint(self, conn: psycopg.Connection) -> str | None:
        found = recorded(conn)
        return None if found is None else super().fingerprint(conn)

    def fingerprint_sql(self) -> sql.Composed:
        return sql.SQL("SELECT project || '/' || stack FROM {} WHERE migration = {}").format(
            RECORD, sql.Literal(MIGRATION))

    def drop_sql(self) -> sql.Composed:
        return sql.SQL("DELETE FROM {} WHERE migration = {} AND project = {} AND stack = {}").format(
            RECORD, sql.Literal(MIGRATION), sql.Literal(self.claimant.project), sql.Literal(self.claimant.stack))

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        if op == "delete":
            return [self.drop_sql()]
        return [self.file_sql(), sql.SQL("-- claim migration 013 for {} (refused if another stack owns it)").format(
            sql.Literal(str(self.claimant)))]

    def drop(self, conn: psycopg.Connection) -> None:
        """Release the claim (only this stack's own); the record's table and schema go once nothing is in them."""
        if recorded(conn, lock=True) is None:
            return
        conn.execute(self.drop_sql())
        if conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(RECORD)).fetchone()[0]:  # type: ignore[index]
            conn.execute(sql.SQL("DROP TABLE {}").format(RECORD))
            if conn.execute("SELECT NOT EXISTS (SELECT FROM pg_class WHERE relnamespace = to_regnamespace(%s))",
                            (RECORD_SCHEMA,)).fetchone()[0]:  # type: ignore[index]
                conn.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(RECORD_SCHEMA)))
