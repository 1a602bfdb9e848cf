"""The database rows of the Phase 3 and retirement gates (dualwrite/gate.py) on a real database in Phase 2:
old clients' writes over the quiet period, and drift at zero both ways."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dualwrite import gate, migration
from dualwrite.config import parse

pytestmark = pytest.mark.db


def test_the_quiet_period_counts_old_clients_writes_and_drift_must_be_zero_both_ways(conn):
    migration.apply(conn, 0)
    migration.set_phase(conn, 1)
    migration.set_phase(conn, 2)
    config = parse("local", {"phase": "2", "db_host": "127.0.0.1", "quiet_period_hours": "24"}, has_password=False)
    now = datetime.now(timezone.utc)
    assert gate.old_client_writes(conn, config, now).ok  # nobody wrote habit_tracker yet

    conn.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                 "VALUES (gen_random_uuid(), 'Old app', '2025-10-13', '[]')")
    row = gate.old_client_writes(conn, config, now + timedelta(seconds=1))
    assert not row.ok and "1 statement(s) writing habit_tracker" in row.detail and "logged in as postgres" in row.detail
    assert gate.old_client_writes(conn, config, now + timedelta(hours=25)).ok  # quiet for the whole period since

    assert gate.drift_zero(conn, "local").ok and gate.reverse_drift_zero(conn, "local").ok
    conn.execute("SET habit_tracker_db.syncing = 'reverse'")  # a write the reverse sync would make: not counted
    conn.execute("UPDATE public.habit_tracker SET child_name = 'Renamed by hand' WHERE child_name = 'Old app'")
    conn.execute("RESET habit_tracker_db.syncing")
    assert not gate.reverse_drift_zero(conn, "local").ok and not gate.drift_zero(conn, "local").ok
