"""A table of migration 013 (idempotency_log, dual_write_errors): created once, never replaced.

Tables hold rows, so nothing here ever drops one to apply a change:

- create makes the table, its privileges and its declared indexes in one transaction (a new
  table is empty and invisible to others until then, so its indexes need no CONCURRENTLY);
- create adopts a table that already exists (pasted from the guide, left by a cut-off
  deploy) when it is compatible: every declared column is there with the declared type.
  Its RLS, policies and privileges are then brought to the declared state by ALTER,
  CREATE/DROP POLICY, REVOKE and GRANT. An incompatible one stops the deploy with one
  paragraph listing each difference (the provider checks this at preview, before any
  object changes);
- update (a refresh saw a change made outside Pulumi) puts back what is declared: RLS,
  policies, privileges. What it cannot put back safely (a column added, dropped or
  retyped by hand) it reports, with the statement to run, and leaves as it is;
- delete drops a table only while it is empty (the program also retains tables on delete,
  so removing one from the program by mistake only forgets it). The declared rollback
  `dual_write: removed` is the one way rows go (objects/removal.py).
"""

from __future__ import annotations

from typing import Any

import psycopg
from pglast import ast
from psycopg import sql

from dualwrite import parsed_sql
from dualwrite.objects import privileges
from dualwrite.objects.base import ObjectKind, Props

# Column types that hold the same values for this migration's purposes.
COMPATIBLE = {"character varying": "text", "timestamp with time zone": "timestamptz"}


class TableHoldsRows(RuntimeError):
    pass


class IncompatibleTable(RuntimeError):
    pass


def _type(name: str) -> str:
    return COMPATIBLE.get(name, name)


class Table(ObjectKind):
    kind = "table"
    compared = ("kind", "name", "schema", "checksum", "privileges")
    # Renaming or moving a table is never a drop-and-create.
    replace_on = ("kind",)

    @property
    def columns(self) -> list[tuple[str, str]]:
        return [tuple(c) for c in self.props.get("columns", [])]  # type: ignore[misc]

    # --- what the file declares ----------------------------------------------------------

    def _statements(self) -> list[parsed_sql.Statement]:
        return parsed_sql.statements(self.props["sql"], f"table {self.name}'s file")

    def _create_table(self) -> str:
        return next(s.text for s in self._statements() if isinstance(s.node, ast.CreateStmt))

    def _declared_policies(self) -> dict[str, str]:
        return {s.node.policy_name: s.text for s in self._statements() if isinstance(s.node, ast.CreatePolicyStmt)}

    def _other_statements(self) -> list[str]:
        """ALTER TABLE ... ENABLE ROW LEVEL SECURITY and the like: safe to run again."""
        return [s.text for s in self._statements() if not isinstance(s.node, (ast.CreateStmt, ast.CreatePolicyStmt))]

    def privileges_sql(self) -> list[sql.Composed]:
        return privileges.statements("TABLE", self.qualified, self.props.get("privileges", {}))

    # --- what the database has -------------------------------------------------------------

    def exists(self, conn: psycopg.Connection) -> bool:
        return conn.execute(sql.SQL("SELECT to_regclass({})").format(self.regclass_text)).fetchone()[0] is not None

    def differences(self, conn: psycopg.Connection) -> tuple[list[str], list[str]]:
        """(incompatible differences, columns added outside the declaration), each with what to do."""
        have: dict[str, str] = dict(conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (f"{self.schema}.{self.name}",),
        ).fetchall())
        incompatible = []
        for column, declared in self.columns:
            if column not in have:
                incompatible.append(f"column {column} ({declared}) is missing: ALTER TABLE {self.schema}.{self.name} "
                                    f"ADD COLUMN {column} {declared}")
            elif _type(have[column]) != _type(declared):
                incompatible.append(f"column {column} is {have[column]}, declared {declared}: ALTER TABLE "
                                    f"{self.schema}.{self.name} ALTER COLUMN {column} TYPE {declared}")
        declared_names = {c for c, _ in self.columns}
        extra = [f"column {c} ({t}) is not declared: ALTER TABLE {self.schema}.{self.name} DROP COLUMN {c} "
                 "(after saving what it holds)" for c, t in have.items() if c not in declared_names]
        return incompatible, extra

    def incompatibility(self, conn: psycopg.Connection) -> str | None:
        """One paragraph saying why an existing table cannot be adopted; None if it can (or is absent)."""
        if not self.exists(conn):
            return None
        incompatible, _ = self.differences(conn)
        if not incompatible:
            return None
        return (f"Table {self.schema}.{self.name} already exists but is not the declared one, so it cannot be "
                f"adopted: {'; '.join(incompatible)}. Nothing was changed. Fix the table with those statements "
                "(or rename it out of the way) and deploy again.")

    def adoption(self, conn: psycopg.Connection) -> str | None:
        """What create will do to an existing table, in words (shown at preview); None if it is absent."""
        if not self.exists(conn):
            return None
        _, extra = self.differences(conn)
        note = f"; left as they are: {'; '.join(extra)}" if extra else ""
        return (f"adopt the existing table {self.schema}.{self.name} (its rows stay): RLS, policies and privileges "
                f"brought to the declared state{note}")

    # --- operations --------------------------------------------------------------------

    def create(self, conn: psycopg.Connection) -> None:
        if self.exists(conn):
            problem = self.incompatibility(conn)
            if problem:
                raise IncompatibleTable(problem)
            self.reconcile(conn)
            return
        conn.execute(self.file_sql())
        for statement in self.privileges_sql():
            conn.execute(statement)
        # Its declared indexes, in this transaction: the table is new and empty and no other
        # session can see it before this commits, so a plain build waits for no one, while
        # CREATE INDEX CONCURRENTLY would wait for every older transaction in the database (a
        # long one fails the first deploy). Their resources then adopt them as they are.
        for statement in self.props.get("indexes", []):
            conn.execute(sql.SQL(statement))  # type: ignore[arg-type]  # reviewed files of sql/013

    def reconcile(self, conn: psycopg.Connection) -> None:
        """RLS, policies and privileges as declared, by ALTER, CREATE/DROP POLICY, REVOKE and GRANT."""
        for statement in self._other_statements():
            conn.execute(sql.SQL(statement))  # type: ignore[arg-type]
        declared = self._declared_policies()
        present = [r[0] for r in conn.execute(
            "SELECT polname FROM pg_policy WHERE polrelid = to_regclass(%s)", (f"{self.schema}.{self.name}",)
        ).fetchall()]
        for name in present:
            conn.execute(sql.SQL("DROP POLICY {} ON {}").format(sql.Identifier(name), self.qualified))
        for statement in declared.values():
            conn.execute(sql.SQL(statement))  # type: ignore[arg-type]
        for grant in self.privileges_sql():
            conn.execute(grant)

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        if op == "delete":
            return [sql.SQL("-- only while it is empty (a table that holds rows is kept):\n{}").format(self.drop_sql())]
        if op == "create":
            return [self.file_sql(), *self.privileges_sql(),
                    sql.SQL("-- its indexes, in the same transaction (a new, empty table: no CONCURRENTLY needed):"),
                    *(sql.SQL(s) for s in self.props.get("indexes", []))]  # type: ignore[arg-type]
        # An update or an adoption reconciles an existing table (its rows stay): its declared
        # statements again, policies recreated. No CREATE TABLE runs, so no lock is on a new table.
        return [*(sql.SQL(s) for s in self._other_statements()),  # type: ignore[arg-type]
                sql.SQL("-- every policy on the table is dropped, then the declared ones created:"),
                *(sql.SQL(s) for s in self._declared_policies().values()),  # type: ignore[arg-type]
                *self.privileges_sql()]

    def update(self, conn: psycopg.Connection, olds: Props) -> None:
        if not self.exists(conn):
            self.create(conn)
            return
        self.reconcile(conn)

    def attention(self, conn: psycopg.Connection) -> list[str]:
        """Differences update leaves for a person (each with the statement to run)."""
        incompatible, extra = self.differences(conn)
        return incompatible + extra

    def apply_update(self, session, olds: Props) -> dict[str, Any]:
        def work(conn: psycopg.Connection) -> dict[str, Any]:
            self.update(conn, olds)
            attention = self.attention(conn)
            # While a column change made by hand stays, the fingerprint stays the declared one, so
            # every refresh shows the table as changed; once it is undone, the preview is clean.
            fingerprint = olds.get("fingerprint") if attention and olds.get("fingerprint") else self.fingerprint(conn)
            return {"fingerprint": fingerprint, "attention": attention}

        return session.change(work)

    def drop_sql(self) -> sql.Composed:
        return sql.SQL("DROP TABLE IF EXISTS {}").format(self.qualified)

    def drop(self, conn: psycopg.Connection) -> None:
        if not self.exists(conn):
            return
        if conn.execute(sql.SQL("SELECT EXISTS (SELECT FROM {})").format(self.qualified)).fetchone()[0]:
            raise TableHoldsRows(
                f"Table {self.schema}.{self.name} holds rows, so it is not dropped. To drop it and its rows on "
                "purpose, declare `habit-tracker-db:dual_write: removed` (or run `invoke rollback --level all`)."
            )
        conn.execute(self.drop_sql())

    def fingerprint_sql(self) -> sql.Composed:
        # Columns, constraints, RLS and policies, as Postgres stores them (privileges: objects/grants.py).
        return sql.SQL(
            "SELECT c.relrowsecurity::text || ':' || coalesce(("
            "  SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text"
            "         || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY a.attnum)"
            "  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            "  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '') || ':' || coalesce(("
            "  SELECT string_agg(pg_get_constraintdef(k.oid), ', ' ORDER BY k.conname)"
            "  FROM pg_constraint k WHERE k.conrelid = c.oid), '') || ':' || coalesce(("
            "  SELECT string_agg(pol.polname || pol.polcmd::text || pol.polroles::text || coalesce(pg_get_expr(pol.polqual,"
            "         pol.polrelid), '') || coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), ''), ', '"
            "         ORDER BY pol.polname)"
            "  FROM pg_policy pol WHERE pol.polrelid = c.oid), '')"
            " FROM pg_class c WHERE c.oid = to_regclass({})"
        ).format(self.regclass_text)
