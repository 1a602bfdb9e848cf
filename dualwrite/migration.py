"""Migration 013 straight through psycopg, by the same per-object operations as the provider.

What the tests, the benchmark and local tooling use instead of the engine. Each object is
created in its own bounded transaction, exactly as `pulumi up` creates one resource
(infra/sql_object.py calls the same `apply_create`), so the tests exercise the transaction
boundaries a deploy has:

    apply(conn, phase)        every object of dualwrite/catalog.py in order, then the grants
    set_phase(conn, phase)    the phase-specific objects again (the GitOps flip)
    drop(conn)                every object in reverse order (app tables untouched)

Lock timeouts are retried with backoff: a deploy waits for the app, never the reverse.
"""

from __future__ import annotations

import psycopg

from dualwrite.catalog import MIGRATION_013, grants_props
from dualwrite.config import PHASES
from dualwrite.db import Session
from dualwrite.objects import Grants


def _check_phase(phase: int) -> None:
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {tuple(PHASES)}, got {phase!r}")


def apply(conn: psycopg.Connection, phase: int, *, grants: bool = True, session: Session | None = None,
          phase0_log: str = "notice") -> None:
    """Create every object of migration 013 for `phase`, then (by default) their privileges."""
    _check_phase(phase)
    session = session or Session.on(conn)
    for obj in MIGRATION_013:
        obj.operations(phase, phase0_log=phase0_log).apply_create(session)
    if grants:
        Grants(grants_props()).apply_create(session)


def set_phase(conn: psycopg.Connection, phase: int, *, session: Session | None = None,
              phase0_log: str = "notice") -> None:
    """Switch an applied migration to `phase`: update the phase-specific objects in place.

    CREATE OR REPLACE keeps the functions' privileges, so grants need no re-run.
    """
    _check_phase(phase)
    session = session or Session.on(conn)
    for obj in MIGRATION_013:
        if obj.phase_specific:
            obj.operations(phase, phase0_log=phase0_log).apply_update(session, {})


def drop(conn: psycopg.Connection, *, session: Session | None = None) -> None:
    """Drop every object of migration 013, newest first, in one bounded transaction.
    The app's tables and rows stay; migration 013's own tables go with their rows."""
    from dualwrite import rollback

    (session or Session.on(conn)).change(rollback.drop_everything)
