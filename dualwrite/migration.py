"""Migration 013 straight through psycopg, by the same per-object operations as the provider.

What the tests, the benchmark and local tooling use instead of the engine. Each object is
created in its own bounded transaction, exactly as `pulumi up` creates one resource
(infra/sql_object.py calls the same `apply_create`), so the tests exercise the transaction
boundaries a deploy has:

    apply(conn, phase)        every object of the phase (dualwrite/catalog.py) in order, then the grants
    set_phase(conn, phase)    the step to another phase (the GitOps flip): objects the phase drops
                              go (tables stay), phase-specific bodies are replaced, new objects created
    drop(conn)                every object in reverse order (app tables untouched)

`phase` is the phase's place on the path (dualwrite/phases.py; `phases.parse("retired").order`).

Lock timeouts are retried with backoff: a deploy waits for the app, never the reverse.
"""

from __future__ import annotations

from typing import Callable

import psycopg
from psycopg import sql

from dualwrite import phases
from dualwrite.catalog import MIGRATION_013, grants_props, objects_in, retirement_props
from dualwrite.db import Session
from dualwrite.objects import Archive, Grants, Retirement, Table


def _check_phase(phase: int) -> None:
    if not isinstance(phase, int) or not 0 <= phase < len(phases.PATH):
        raise ValueError(f"phase must be a place on the path 0..{len(phases.PATH) - 1} "
                         f"({phases.described()}), got {phase!r}")


def apply(conn: psycopg.Connection, phase: int, *, grants: bool = True, session: Session | None = None,
          phase0_log: str = "notice") -> None:
    """Create every object of migration 013 for `phase`, then (by default) their privileges."""
    _check_phase(phase)
    session = session or Session.on(conn)
    present = objects_in(phase)
    for obj in present:
        obj.operations(phase, phase0_log=phase0_log).apply_create(session)
    if grants:
        Grants(grants_props([obj.name for obj in present])).apply_create(session)


def set_phase(conn: psycopg.Connection, phase: int, *, session: Session | None = None,
              phase0_log: str = "notice") -> None:
    """Switch an applied migration to `phase`: what the phase no longer has is dropped, newest first
    (tables are kept with their rows), the phase-specific objects are updated in place, and what it
    adds is created (with its privileges, in its CREATE's transaction).

    CREATE OR REPLACE keeps the functions' privileges, so grants need no re-run.
    """
    _check_phase(phase)
    session = session or Session.on(conn)
    present = objects_in(phase)
    for obj in reversed(MIGRATION_013):
        if obj not in present and obj.kind is Archive:  # the step back from retirement, first of all
            obj.operations(phase).apply_delete(session)
        elif obj not in present and obj.kind is not Table and obj.droppable:
            session.change(_runs(obj.drop_sql()))
    if phases.at(phase).archives:  # the syncs stop before habit_tracker is archived (objects/retirement.py)
        Retirement(retirement_props()).apply_create(session)
    for obj in present:
        operations = obj.operations(phase, phase0_log=phase0_log)
        if obj.phase_specific:
            operations.apply_update(session, {})
        elif session.change(operations.fingerprint) is None:
            operations.apply_create(session)


def _runs(statement: sql.SQL | sql.Composed) -> Callable[[psycopg.Connection], object]:
    return lambda conn: conn.execute(statement)


def drop(conn: psycopg.Connection, *, session: Session | None = None) -> None:
    """Drop every object of migration 013, newest first, in one bounded transaction.
    The app's tables and rows stay; migration 013's own tables go with their rows."""
    from dualwrite import rollback

    (session or Session.on(conn)).change(lambda c: rollback.run(c, "all"))
