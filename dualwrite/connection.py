"""How tasks reach a stack's database.

Stack `local` is the embedded cluster (started on demand). Every other stack is read
from its stack file; its password is the stack's Pulumi secret, decrypted by the
engine the caller passes in (dualwrite/stack_engine.py), or taken from PGPASSWORD; held in
memory only and never printed.
"""

from __future__ import annotations

import os
from typing import Any, Callable, TypeVar
from urllib.parse import quote

import psycopg

from dualwrite import config as stack_config
from dualwrite import db, readonly, stack_engine
from dualwrite.config import StackConfig
from dualwrite.stack_engine import StackEngine

T = TypeVar("T")


def stack_password(config: StackConfig, engine: StackEngine) -> str | None:
    if not config.has_password:
        return None
    if os.environ.get("PGPASSWORD"):
        return os.environ["PGPASSWORD"]
    return stack_engine.stack_password(engine, config.stack)


def conninfo(stack: str, previous_of: str | None = None, *, engine: StackEngine) -> tuple[StackConfig, dict[str, Any]]:
    """`previous_of`: the stack is read as the one before that stack (its promotion gate)."""
    config = stack_config.load(stack)
    if stack == "local":
        engine.start_embedded_database()
    if readonly.active() or (previous_of is not None and readonly.previous_as_preview()):
        # A read-only job: the preview role, never the stack's secret. A deploy job reads the stack
        # before its own as that stack's preview role too: its passphrase is not this job's.
        return config, readonly.conninfo(config.conninfo(), stack, previous_of=previous_of)
    return config, config.conninfo(stack_password(config, engine))


def unreachable(config: StackConfig, error: Exception) -> stack_config.ConfigError:
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return stack_config.ConfigError(
        f"Stack '{config.stack}' ({config.stack_file}): cannot reach its database {config.db_user}@{config.db_host}:"
        f"{config.db_port}/{config.db_name} ({first}). Check habit-tracker-db:db_host, db_port, db_user and the "
        f"db_password secret (`invoke stack-init --stack {config.stack}` stores it again); for Supabase: the "
        "direct host db.<ref>.supabase.co:5432, or the session pooler on port 5432. Nothing was changed."
    )


def connect(stack: str, previous_of: str | None = None, *, engine: StackEngine,
            **kwargs: Any) -> tuple[StackConfig, psycopg.Connection]:
    """A connection to the stack's database; an unreachable one is a ConfigError paragraph, not a traceback."""
    config, info = conninfo(stack, previous_of, engine=engine)
    try:
        return config, db.connect(info, **kwargs)
    except psycopg.OperationalError as error:
        raise unreachable(config, error) from None


def check_reachable(stack: str, engine: StackEngine) -> StackConfig:
    config, conn = connect(stack, engine=engine, autocommit=True)
    conn.close()
    return config


def on_database(stack: str, engine: StackEngine, work: Callable[[psycopg.Connection, StackConfig], T]
                ) -> tuple[StackConfig, T]:
    """`work(conn, config)` on a stack's database (autocommit: each change is its own bounded
    transaction, dualwrite/db.py); returns (config, what it returned)."""
    config, conn = connect(stack, engine=engine, autocommit=True)
    with conn:
        return config, work(conn, config)


def db_url(stack: str, engine: StackEngine) -> str:
    """libpq URI without the password (libpq takes it from PGPASSWORD or ~/.pgpass); the embedded
    database is started first, as every other task does, so the URI it prints answers."""
    config = stack_config.load(stack)
    if stack == "local":
        engine.start_embedded_database()
    return (
        f"postgresql://{quote(config.db_user)}@{config.db_host}:{config.db_port}/{quote(config.db_name)}"
        f"?sslmode={config.db_sslmode}"
    )
