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
from typing import Any

import psycopg
from pglast import ast
from psycopg import sql

from dualwrite import parsed_sql
from dualwrite.db import Session
from dualwrite.objects.base import ObjectKind, Props


def _index_statement(text: str, where: str) -> Any:
    """The one CREATE [UNIQUE] INDEX of `text` (an index file, or pg_get_indexdef's output), parsed."""
    found = parsed_sql.statements(text, where)
    if len(found) != 1 or not isinstance(found[0].node, ast.IndexStmt):
        raise ValueError(f"{where}: an index file must hold exactly one `CREATE [UNIQUE] INDEX name ON ...`, "
                         f"found: {'; '.join(s.head() for s in found) or 'no statement'}")
    return found[0].node


def _normalized(definition: str) -> str:
    """An index definition as PostgreSQL's grammar prints it, without its name, for comparison
    (pg_get_indexdef's text against the file's: the printer drops the default `USING btree`)."""
    node = _index_statement(definition, "index definition")
    return parsed_sql.deparse(ast.IndexStmt(**{**{attr: getattr(node, attr) for attr in node},
                                               "idxname": None, "concurrent": False, "if_not_exists": False}))


class Index(ObjectKind):
    kind = "index"
    replace_on = ("kind", "name", "schema")

    @property
    def temporary_name(self) -> str:
        return f"{self.name[:59]}_new"

    def statement(self) -> Any:
        """The file's CREATE [UNIQUE] INDEX, parsed (its name must be the declared one)."""
        node = _index_statement(self.props["sql"], f"index {self.name}")
        if node.idxname != self.name:
            raise ValueError(f"index {self.name}: its file must hold one `CREATE [UNIQUE] INDEX {self.name} ON ...`, "
                             f"not an index named {node.idxname}")
        return node

    def build_sql(self) -> sql.SQL:
        """The file's index, CONCURRENTLY and under the temporary name, printed back by the parser."""
        node = self.statement()
        build = ast.IndexStmt(**{**{attr: getattr(node, attr) for attr in node},
                                 "idxname": self.temporary_name, "concurrent": True})
        # Printed from the reviewed file's own parse tree (names quoted by the printer); no parameters.
        return sql.SQL(parsed_sql.deparse(build))  # type: ignore[arg-type]

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
