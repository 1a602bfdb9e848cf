"""The two read-only roles a pull request's preview uses (dualwrite/readonly.py says why).

    ensure_preview_role(conn, "dev_preview", password)   in the stack's database, as the deploy role
    ensure_state_reader(conn, "pulumi_state_reader", password, "pulumi_state")   in the team backend

Both are LOGIN roles with no write privilege at all: they own nothing, are granted nothing that
writes, and belong to no role but pg_read_all_data (the preview role); `default_transaction_read_only
= on` is a second fence, not the first (a session may turn it off, and still has no privilege to write). Each runs in one transaction;
the password is composed as a literal, never printed.
"""

from __future__ import annotations

from typing import Mapping

import psycopg
from psycopg import sql

from dualwrite.config import ConfigError
from dualwrite.readonly import backend_location


def _login_role(conn: psycopg.Connection, role: str, password: str) -> None:
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
    conn.execute(sql.SQL("{} ROLE {} LOGIN INHERIT NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD {}").format(
        verb, sql.Identifier(role), sql.Literal(password)))
    conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(sql.Identifier(role)))
    conn.execute(sql.SQL("ALTER ROLE {} SET statement_timeout = '60s'").format(sql.Identifier(role)))


def ensure_preview_role(conn: psycopg.Connection, role: str, password: str) -> str:
    """The stack's preview role. A preview's checks read the catalog and, in Phase 1, pg_cron's `cron.job`
    (a schema the deploy role cannot grant on), so it reads through pg_read_all_data: SELECT on every
    table and USAGE on every schema, no write, and no grant on any object of 013, whose ACLs the
    `privileges` resource keeps exactly as declared. pg_read_all_data does not bypass row-level
    security: rows of cron.job (other roles' jobs), idempotency_log and dual_write_errors stay hidden,
    which is why the gate reads its counts through dual_write_gate_evidence(), the one function
    pg_read_all_data may EXECUTE (dualwrite/gate_evidence.py)."""
    with conn.transaction():
        _login_role(conn, role, password)
        conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(sql.Identifier(role)))
    return role


def ensure_state_reader(conn: psycopg.Connection, role: str, password: str, table: str = "pulumi_state") -> str:
    """A role that can SELECT the backend's state table and nothing else."""
    with conn.transaction():
        _login_role(conn, role, password)
        conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(table), sql.Identifier(role)))
    return role


def team_backend_url(env: Mapping[str, str]) -> str:
    """PULUMI_BACKEND_URL, which must be the team's postgres:// backend, as the role that owns its state table."""
    url = env.get("PULUMI_BACKEND_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise ConfigError("state-reader-role: PULUMI_BACKEND_URL must be the team's postgres:// backend, as the role "
                          "that owns its state table; nothing was changed.")
    return url


def ensure_state_reader_in_backend(url: str, role: str, password: str, table: str = "pulumi_state") -> str:
    """`ensure_state_reader` in the team backend at `url` (a CLI postgres:// backend URL)."""
    libpq, _, _ = backend_location(url)
    with psycopg.connect(libpq, autocommit=True) as conn:
        return ensure_state_reader(conn, role, password, table)
