"""An index on idempotency_log, built CONCURRENTLY under a temporary name and swapped in.

A plain CREATE INDEX blocks every write to the table while it builds, and a drop-then-create
leaves a moment with no index at all (for idx_idempotency_key, the only thing that keeps
idempotency keys unique). So create and update both:

1. drop a `<name>_new` left by a build that failed or was cut off (an invalid index);
2. build `<name>_new` with CREATE INDEX CONCURRENTLY, outside any transaction (the only way
   PostgreSQL allows it), on a connection of its own with the stack's timeouts;
3. in one bounded transaction, drop the old index and rename the new one to `<name>`.

The old index serves until the instant the new one takes its name. An index that already
exists with the declared definition (pasted from the guide, left by a cut-off deploy) is
adopted as it is. That includes the indexes of a table the same deploy created: its table
builds them without CONCURRENTLY in the transaction that creates it (objects/table.py), where
no one else can see the table yet, so no older transaction of the app can hold the build up.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import psycopg
from psycopg import sql

from dualwrite.db import Session
from dualwrite.objects.base import ObjectKind, Props

_CREATE = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+(\w+)\s+ON\s+(.+?);?\s*$", re.I | re.S)


def _normalized(definition: str) -> str:
    """An index definition without its name, comments, `USING btree` and spacing, for comparison."""
    text = re.sub(r"--[^\n]*", "", definition)
    text = re.sub(r"\s+USING\s+btree\s*", " ", text, flags=re.I)
    match = _CREATE.match(" ".join(text.split()))
    if not match:
        return text.strip().lower()
    return f"{'unique ' if match.group(1) else ''}on {match.group(3)}".replace(" (", "(").strip().lower()


class Index(ObjectKind):
    kind = "index"
    replace_on = ("kind", "name", "schema")

    @property
    def temporary_name(self) -> str:
        return f"{self.name[:59]}_new"

    def _parts(self) -> tuple[bool, str]:
        match = _CREATE.match(" ".join(re.sub(r"--[^\n]*", "", self.props["sql"]).split()))
        if not match or match.group(2) != self.name:
            raise ValueError(f"index {self.name}: its file must hold one `CREATE [UNIQUE] INDEX {self.name} ON ...`")
        return bool(match.group(1)), match.group(3)

    def build_sql(self) -> sql.Composed:
        unique, rest = self._parts()
        # `rest` is the reviewed file's own text after ON (table and columns); it holds no parameters.
        return sql.SQL("CREATE {}INDEX CONCURRENTLY {} ON {}").format(
            sql.SQL("UNIQUE " if unique else ""), sql.Identifier(self.temporary_name), sql.SQL(rest)  # type: ignore[arg-type]
        )

    def definition(self, conn: psycopg.Connection, name: str | None = None) -> tuple[str, bool] | None:
        """(pg_get_indexdef, valid) of the index (or of `name` in its schema); None if absent."""
        return conn.execute(
            "SELECT pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(%s)",
            (f"{self.schema}.{name or self.name}",),
        ).fetchone()

    def matches(self, conn: psycopg.Connection) -> bool:
        current = self.definition(conn)
        return current is not None and current[1] and _normalized(current[0]) == _normalized(self.props["sql"])

    def adoption(self, conn: psycopg.Connection) -> str | None:
        if self.definition(conn) is None:
            return None
        if self.matches(conn):
            return f"adopt the existing {self.describe()} as it is (same definition)"
        return (f"adopt the existing {self.describe()}: the declared one is built CONCURRENTLY as "
                f"{self.temporary_name} and swapped in")

    def swap_sql(self) -> list[sql.Composed]:
        return [self.drop_sql(), sql.SQL("ALTER INDEX {} RENAME TO {}").format(
            sql.Identifier(self.schema, self.temporary_name), sql.Identifier(self.name))]

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        if op == "delete":
            return [self.drop_sql()]
        return [sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(self.schema, self.temporary_name)),
                self.build_sql(), *self.swap_sql()]

    def drop_sql(self) -> sql.Composed:
        return sql.SQL("DROP INDEX IF EXISTS {}").format(self.qualified)

    def fingerprint_sql(self) -> sql.Composed:
        return sql.SQL("SELECT pg_get_indexdef(i.indexrelid) || ' valid=' || i.indisvalid::text "
                       "FROM pg_index i WHERE i.indexrelid = to_regclass({})").format(self.regclass_text)

    def _swap(self, conn: psycopg.Connection) -> None:
        for statement in self.swap_sql():
            conn.execute(statement)

    def _build(self, session: Session) -> dict[str, Any]:
        temporary = sql.Identifier(self.schema, self.temporary_name)

        def drop_leftover() -> None:
            session.change(lambda conn: conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(temporary)))

        try:
            # Before every attempt: an attempt that timed out waiting for an older transaction
            # left an invalid `<name>_new`, and the next CREATE would fail on its name.
            session.outside_transaction(self.build_sql(), before_each=drop_leftover)
        except psycopg.Error:
            # A failed CONCURRENTLY build leaves an invalid index behind: never leave it there
            # (and never hide why the build failed behind a failure of this drop).
            with contextlib.suppress(psycopg.Error):
                drop_leftover()
            raise

        def swap(conn: psycopg.Connection) -> dict[str, Any]:
            self._swap(conn)
            return {"fingerprint": self.fingerprint(conn)}

        return session.change(swap)

    def apply_create(self, session: Session) -> dict[str, Any]:
        adopted = session.change(lambda conn: {"fingerprint": self.fingerprint(conn)} if self.matches(conn) else None)
        return adopted or self._build(session)

    def apply_update(self, session: Session, olds: Props) -> dict[str, Any]:
        return self.apply_create(session)
