"""Database connection for the project's dynamic providers, from provider configuration.

The engine hands a dynamic provider the stack's configuration (secrets decrypted) in
`configure`. Reading the connection there keeps host, user and password out of every
resource's inputs and state.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import psycopg
from pulumi.dynamic import ConfigureRequest, ResourceProvider

from infra import db
from infra.stack_config import parse

CONNECTION_KEYS = "phase db_host db_port db_name db_user db_sslmode lock_timeout statement_timeout".split()


class StackConnectedProvider(ResourceProvider):
    """A dynamic provider that talks to the stack's database in bounded transactions."""

    # The serialized provider holds no secrets (they arrive in `configure`), so it need
    # not be a secret in state, and it stays byte-identical between runs.
    serialize_as_secret_always = False

    def configure(self, req: ConfigureRequest) -> None:
        raw = {key: req.config.get(key) for key in CONNECTION_KEYS}
        password = req.config.get("db_password")
        settings = parse(
            os.environ.get("PULUMI_STACK", "current"),
            {key: value for key, value in raw.items() if value is not None},
            has_password=password is not None,
        )
        self._conninfo = settings.conninfo(password)
        self._timeouts = {"lock_timeout": settings.lock_timeout, "statement_timeout": settings.statement_timeout}
        self._settings = settings

    def _change(self, work: Callable[[psycopg.Connection], Any]) -> Any:
        return db.change(self._conninfo, work, **self._timeouts)
