"""The Phase 1 trigger's cached plans stay per-row lookups while the new schema grows under them.

The flip to Phase 1 comes before the backfill: the app's pooled sessions first fire the
trigger on an almost empty new schema, PL/pgSQL caches a generic plan per statement, and
nothing replans it until an ANALYZE of those tables. The backfill grows them a hundredfold
well within autovacuum's analyze threshold. A cached plan that joins or scans a whole table
then reads all of it on every app write (bench/: a writer's p99 of seconds during the
backfill). Counted, not timed: the tuples one app write reads, from pg_stat_xact_user_tables.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from dualwrite import migration
from sheets import assert_synced, generate_sheets, habit, insert_sheet, update_sheet

pytestmark = pytest.mark.db

NEW_SCHEMA = ("children", "weeks", "habits", "habit_records")
GROWN_SHEETS = 3000  # about 3,000 weeks, 12,000 habits and 14,000 records under the cached plans
# One write of a 2-habit sheet reads its week, child, habits and records by key: a few dozen
# tuples. A plan over a whole table reads thousands.
MOST_TUPLES_PER_WRITE = 200


def tuples_read(app: psycopg.Connection) -> int:
    """Tuples the app's session has read from the new schema and not yet reported (PostgreSQL 15
    reports a session's counts at most once a second, so this may include earlier transactions':
    compare two readings inside one transaction)."""
    row = app.execute(
        "SELECT coalesce(sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)), 0) "
        "FROM pg_stat_xact_user_tables WHERE schemaname = 'public' AND relname = ANY (%s)",
        (list(NEW_SCHEMA),),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_session_that_started_on_a_small_new_schema_keeps_reading_by_key(db_url, conn):
    migration.apply(conn, 1)
    for table in NEW_SCHEMA:  # nothing but this test decides when the tables are analyzed
        conn.execute(sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(
            sql.Identifier("public", table)))
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier("public", table)))

    with psycopg.connect(db_url, autocommit=True) as app:
        user = uuid.uuid4()
        sheets = [insert_sheet(app, user_id=user, child=f"child {n}",
                               habits=[habit("Read", "green"), habit("Walk", "", "red")]) for n in range(3)]
        # Well past the 5 custom plans after which PL/pgSQL may settle on a generic one.
        for step in range(12):
            for sheet in sheets:
                update_sheet(app, sheet, habits=[habit("Read" if step % 2 else "Read more", "green", "", "red"[: step % 4]),
                                                 habit("Walk", *(["yellow"] * (step % 7)))])

        generate_sheets(conn, GROWN_SHEETS, habits=4)  # another session; no ANALYZE

        with app.transaction():
            before = tuples_read(app)
            update_sheet(app, sheets[0], habits=[habit("Read", "green", "yellow"), habit("Walk more", "", "red")])
            read = tuples_read(app) - before
        assert_synced(app, sheets[0])
    assert read <= MOST_TUPLES_PER_WRITE, (
        f"one app write read {read} tuples of the new schema ({GROWN_SHEETS} sheets projected after its session's "
        "plans were cached): a cached plan reads a whole table instead of looking rows up by key")
