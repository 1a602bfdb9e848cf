"""How tasks reach a stack's database.

Stack `local` is the embedded cluster (started on demand). Every other stack is read
from its stack file; its password is the stack's Pulumi secret, decrypted by the
engine (or taken from PGPASSWORD), held in memory only and never printed.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import psycopg

from dualwrite import config as stack_config
from dualwrite.config import StackConfig


def stack_password(config: StackConfig) -> str | None:
    if not config.has_password:
        return None
    if os.environ.get("PGPASSWORD"):
        return os.environ["PGPASSWORD"]
    from devenv import engine

    result = engine.run(
        config.stack, ["config", "get", f"{stack_config.PROJECT}:db_password"], capture=True
    )
    return result.stdout.rstrip("\n")


def conninfo(stack: str) -> tuple[StackConfig, dict[str, Any]]:
    config = stack_config.load(stack)
    if stack == "local":
        from devenv import localdb

        localdb.ensure_running()
    return config, config.conninfo(stack_password(config))


def connect(stack: str, **kwargs: Any) -> tuple[StackConfig, psycopg.Connection]:
    config, info = conninfo(stack)
    return config, psycopg.connect(**info, **kwargs)


def db_url(stack: str) -> str:
    """libpq URI without the password (libpq takes it from PGPASSWORD or ~/.pgpass)."""
    config = stack_config.load(stack)
    return (
        f"postgresql://{quote(config.db_user)}@{config.db_host}:{config.db_port}/{quote(config.db_name)}"
        f"?sslmode={config.db_sslmode}"
    )
