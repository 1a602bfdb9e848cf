"""Migration 013 straight through psycopg: what the tests and the local tooling use.

The Pulumi program applies the same catalog one resource per object; this module applies
it as a whole, in one bounded transaction (lock_timeout / statement_timeout set locally),
so a failure leaves nothing half-applied:

    apply(conn, phase)        create every object of infra/sql_catalog.py in order, then grants
    set_phase(conn, phase)    replace only the phase-specific objects (the GitOps flip)
    drop(conn)                drop every object in reverse order (app tables untouched)

Lock timeouts are retried with backoff: a deploy waits for the app, never the reverse.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Callable, Iterable

import psycopg
from psycopg import sql

from infra.sql_catalog import MIGRATION_013, SCHEMA, SQL_DIR, SqlObject

GRANTS_FILE: Path = SQL_DIR / "013" / "grants.sql"
PHASES = (0, 1)
LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT = "60s"
LOCK_RETRIES = 5


def _check_phase(phase: int) -> None:
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")


def _file_sql(text: str) -> sql.SQL:
    # A reviewed .sql file of this repository, holding no parameters: run verbatim.
    return sql.SQL(text)  # type: ignore[arg-type]


def drop_statement(obj: SqlObject) -> sql.Composed:
    """DROP ... IF EXISTS for one catalog object (IF EXISTS: drop also cleans up half states)."""
    name = sql.Identifier(SCHEMA, obj.name)
    if obj.kind == "trigger":
        return sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
            sql.Identifier(obj.name), sql.Identifier(SCHEMA, obj.on_table)
        )
    if obj.kind == "function":
        # The signature is a constant of the catalog (argument types), not input.
        return sql.SQL("DROP FUNCTION IF EXISTS {}{}").format(name, sql.SQL(obj.signature))  # type: ignore[arg-type]
    if obj.kind == "procedure":
        return sql.SQL("DROP PROCEDURE IF EXISTS {}{}").format(name, sql.SQL(obj.signature))  # type: ignore[arg-type]
    if obj.kind in ("table", "index"):
        return sql.SQL("DROP {} IF EXISTS {}").format(sql.SQL(obj.kind.upper()), name)  # type: ignore[arg-type]
    raise ValueError(f"unknown kind {obj.kind!r} of {obj.name}")


def _bounded(
    conn: psycopg.Connection,
    statements: Iterable[sql.Composable],
    lock_timeout: str,
    statement_timeout: str,
    retries: int = LOCK_RETRIES,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run statements in one transaction with local timeouts; retry it on lock timeouts."""
    batch = list(statements)
    attempt = 0
    while True:
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("SELECT set_config('lock_timeout', {}, true), set_config('statement_timeout', {}, true)")
                    .format(sql.Literal(lock_timeout), sql.Literal(statement_timeout))
                )
                for statement in batch:
                    conn.execute(statement)
            return
        except psycopg.errors.LockNotAvailable:
            attempt += 1
            if attempt > retries:
                raise
            sleep(min(8.0, 0.25 * 2**attempt) * (0.5 + random.random()))


def apply(
    conn: psycopg.Connection,
    phase: int,
    *,
    grants: bool = True,
    lock_timeout: str = LOCK_TIMEOUT,
    statement_timeout: str = STATEMENT_TIMEOUT,
) -> None:
    """Create every object of migration 013 for `phase`, then (by default) sql/013/grants.sql."""
    _check_phase(phase)
    statements = [_file_sql(obj.source(phase)) for obj in MIGRATION_013]
    if grants:
        statements.append(_file_sql(GRANTS_FILE.read_text(encoding="utf-8")))
    _bounded(conn, statements, lock_timeout, statement_timeout)


def set_phase(
    conn: psycopg.Connection,
    phase: int,
    *,
    lock_timeout: str = LOCK_TIMEOUT,
    statement_timeout: str = STATEMENT_TIMEOUT,
) -> None:
    """Switch an applied migration to `phase`: CREATE OR REPLACE the phase-specific objects only.

    CREATE OR REPLACE keeps the functions' privileges, so grants need no re-run.
    """
    _check_phase(phase)
    statements = [_file_sql(obj.source(phase)) for obj in MIGRATION_013 if obj.phase_specific]
    _bounded(conn, statements, lock_timeout, statement_timeout)


def drop(
    conn: psycopg.Connection,
    *,
    lock_timeout: str = LOCK_TIMEOUT,
    statement_timeout: str = STATEMENT_TIMEOUT,
) -> None:
    """Drop every object of migration 013, newest first. The app's tables and rows stay."""
    _bounded(conn, [drop_statement(obj) for obj in reversed(MIGRATION_013)], lock_timeout, statement_timeout)
