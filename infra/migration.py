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

import time
from pathlib import Path
from typing import Callable, Iterable

import psycopg
from psycopg import sql

from infra import db
from infra.sql_catalog import MIGRATION_013, SQL_DIR

GRANTS_FILE: Path = SQL_DIR / "013" / "grants.sql"
PHASES = (0, 1)
LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT = "60s"


def _check_phase(phase: int) -> None:
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")


def _file_sql(text: str) -> sql.SQL:
    # A reviewed .sql file of this repository, holding no parameters: run verbatim.
    return sql.SQL(text)  # type: ignore[arg-type]


def _bounded(
    conn: psycopg.Connection,
    statements: Iterable[sql.Composable],
    lock_timeout: str,
    statement_timeout: str,
    retries: int = db.LOCK_RETRIES,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run statements in one transaction with local timeouts; retry it on lock timeouts."""
    batch = list(statements)

    def work(c: psycopg.Connection) -> None:
        for statement in batch:
            c.execute(statement)

    db.run_bounded(conn, work, lock_timeout=lock_timeout, statement_timeout=statement_timeout, retries=retries,
                   sleep=sleep)


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
    _bounded(conn, [obj.drop_sql() for obj in reversed(MIGRATION_013)], lock_timeout, statement_timeout)
