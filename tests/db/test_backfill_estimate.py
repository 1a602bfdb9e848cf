"""The PR comment's backfill size is read from the target's own habit_tracker, as PostgreSQL keeps it."""

from __future__ import annotations

import psycopg
import pytest

from dualwrite import backfill_estimate
from sheets import generate_sheets
from tests.bench_runs import default_and_full

pytestmark = pytest.mark.db


def test_size_is_counted_until_analysed_then_the_planners_estimate(conn: psycopg.Connection, tmp_path):
    generate_sheets(conn, 30)
    conn.commit()
    rows, how = backfill_estimate.target_rows(conn)
    reltuples = conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'public.habit_tracker'::regclass").fetchone()[0]
    if reltuples < 0:  # never analysed (autovacuum has not come by yet): counted
        assert (rows, how) == (30, "count(*)")
    conn.execute("ANALYZE public.habit_tracker")
    rows, how = backfill_estimate.target_rows(conn)
    assert (rows, how) == (30, "pg_class.reltuples, the planner's estimate")
    runs = default_and_full(tmp_path)
    estimate = backfill_estimate.estimate(conn, runs)
    assert estimate.rate is not None and "30 rows in habit_tracker" in estimate.line()
    assert f"at 2,500 rows/s ({runs[0]}" in estimate.line()
