"""What every kind of database object knows about itself.

One subclass per kind, one file each (table.py, index.py, function.py, ...), in the spirit
of pgroll's one operation per file. A kind works on the plain `props` mapping that the
Pulumi program declares and the engine keeps in state, so the same class serves the
Pulumi provider (infra/sql_object.py), the tests that apply migration 013 straight to
PostgreSQL (dualwrite/migration.py) and the tasks. It never imports pulumi.

Each kind says:
- `create(conn)` / `update(conn, olds)`: the SQL that creates it or brings it up to date,
  run inside the caller's bounded transaction (dualwrite/db.py);
- `diff(olds, news)`: which declared inputs changed, and which of those force a new object;
- `fingerprint(conn)`: a hash of how the catalog shows it now, None when it is gone;
- `drop(conn)` and `drop_allowed`: how it is dropped, and whether a delete ever drops it.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Mapping

import psycopg
from psycopg import sql

from dualwrite.db import Session

Props = Mapping[str, Any]
# What psycopg runs: a whole statement, literal or composed.
Executable = sql.SQL | sql.Composed


class ObjectKind:
    kind: ClassVar[str]
    # Declared inputs the diff compares, and those of them whose change needs a new object
    # (drop, then create). A changed kind always does.
    compared: ClassVar[tuple[str, ...]] = ("kind", "name", "schema", "checksum")
    replace_on: ClassVar[tuple[str, ...]] = ("kind", "name", "schema")
    # False: deleting the resource leaves the object in the database (see each kind why).
    drop_allowed: ClassVar[bool] = True

    def __init__(self, props: Props) -> None:
        self.props = dict(props)

    # --- identity ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return str(self.props["name"])

    @property
    def schema(self) -> str:
        return str(self.props["schema"])

    @property
    def qualified(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def regclass_text(self) -> sql.Literal:
        """'schema.name' as a literal for to_regclass(), composed, never formatted into SQL."""
        return sql.Literal(f"{self.schema}.{self.name}")

    def object_id(self) -> str:
        return f"{self.kind}:{self.schema}.{self.name}"

    def describe(self) -> str:
        return f"{self.kind} {self.schema}.{self.name}"

    # --- diff ----------------------------------------------------------------------------

    @classmethod
    def diff(cls, olds: Props, news: Props) -> tuple[list[str], list[str]]:
        """(changed inputs, inputs among them that force a replace)."""
        changed = [key for key in cls.compared if olds.get(key) != news.get(key)]
        return changed, [key for key in changed if key in cls.replace_on]

    # --- SQL -----------------------------------------------------------------------------

    def file_sql(self) -> sql.SQL:
        # The object's own reviewed SQL file, as declared; it holds no parameters.
        return sql.SQL(self.props["sql"])  # type: ignore[arg-type]

    def create(self, conn: psycopg.Connection) -> None:
        conn.execute(self.file_sql())

    def update(self, conn: psycopg.Connection, olds: Props) -> None:
        """Bring the object to the declared version in place; by default its file again
        (every kind whose file is CREATE OR REPLACE)."""
        conn.execute(self.file_sql())

    def drop_sql(self) -> Executable:
        raise NotImplementedError(f"{self.describe()}: no DROP for this kind")

    def drop(self, conn: psycopg.Connection) -> None:
        if self.drop_allowed:
            conn.execute(self.drop_sql())

    # --- for a reviewer: the SQL a planned change runs (the PR comment) -------------------

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        """The statements `op` (create, update, replace, delete, adopt) runs, in order."""
        if op == "delete":
            return [self.drop_sql()] if self.drop_allowed else []
        statements: list[sql.Composable] = [self.drop_sql()] if op == "replace" and self.drop_allowed else []
        return statements + [self.file_sql()]

    # --- catalog -------------------------------------------------------------------------

    def fingerprint_sql(self) -> Executable:
        raise NotImplementedError

    def fingerprint(self, conn: psycopg.Connection) -> str | None:
        row = conn.execute(self.fingerprint_sql()).fetchone()
        if row is None or row[0] is None:
            return None
        return hashlib.sha256(str(row[0]).encode("utf-8")).hexdigest()

    def adoption(self, conn: psycopg.Connection) -> str | None:
        """What create will do to the object when it exists already (pasted from the guide, left by
        a cut-off deploy), in words for the preview; None when it is absent."""
        if self.fingerprint(conn) is None:
            return None
        return f"adopt the existing {self.describe()}: brought to the declared version in place"

    def incompatibility(self, conn: psycopg.Connection) -> str | None:
        """One paragraph saying why an existing object cannot be adopted; None when it can."""
        return None

    def observed(self, conn: psycopg.Connection) -> dict[str, Any]:
        """Declared inputs read back from the catalog, beyond the fingerprint (a trigger's
        enabled state), so a refresh shows them as they are."""
        return {}

    # --- in bounded transactions (the one apply path: provider and tests alike) --------

    def apply_create(self, session: Session) -> dict[str, Any]:
        """Create in one bounded transaction; the outputs to keep in state."""

        def work(conn: psycopg.Connection) -> dict[str, Any]:
            self.create(conn)
            return {"fingerprint": self.fingerprint(conn)}

        return session.change(work)

    def apply_update(self, session: Session, olds: Props) -> dict[str, Any]:
        def work(conn: psycopg.Connection) -> dict[str, Any]:
            self.update(conn, olds)
            return {"fingerprint": self.fingerprint(conn)}

        return session.change(work)

    def apply_delete(self, session: Session) -> None:
        if self.drop_allowed:
            session.change(self.drop)

    def apply_read(self, session: Session) -> dict[str, Any] | None:
        """{'fingerprint': ..., **observed inputs}, or None when the object is gone."""

        def work(conn: psycopg.Connection) -> dict[str, Any] | None:
            fingerprint = self.fingerprint(conn)
            return None if fingerprint is None else {"fingerprint": fingerprint, **self.observed(conn)}

        return session.change(work)


def function_oid(schema: str, name: str, signature: str) -> sql.Composed:
    # to_regprocedure() takes text like 'public.f()'; composed as a literal, never formatted.
    return sql.SQL("to_regprocedure({})").format(sql.Literal(f"{schema}.{name}{signature}"))
