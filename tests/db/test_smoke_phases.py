"""`invoke smoke-test`'s checks for the phases after Phase 1 (dualwrite/phases.py `smoke_checks`), on a
database stepped there with migration.set_phase: each phase's own rows pass, and a change a phase
must not have (a trigger missing, the forward trigger back in Phase 3) fails its row. No row is left."""

from __future__ import annotations

import psycopg
import pytest

from dualwrite import migration, phases
from dualwrite.config import parse
from dualwrite.smoke import run_smoke_test

pytestmark = pytest.mark.db


def stepped_to(conn: psycopg.Connection, key: str):
    migration.apply(conn, 0)
    for phase in phases.PATH[1:phases.BY_KEY[key].order + 1]:
        migration.set_phase(conn, phase.order)
    return parse("local", {"phase": key, "db_host": "127.0.0.1"}, has_password=False)


def checks(conn: psycopg.Connection, config) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.ok, c.detail) for c in run_smoke_test(conn, config)}


def sheets(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM public.habit_tracker").fetchone()[0]


def test_phase_2_checks_its_triggers_syncs_a_test_row_and_measures_drift_both_ways(conn):
    config = stepped_to(conn, "2")
    before = sheets(conn)
    found = checks(conn, config)
    triggers = found["9 triggers of phase 2 (both directions) present and enabled"]
    assert triggers[0], triggers
    assert found["phase 2 syncs child, week and 4 records"][0] and found["test row rolled back"][0]
    assert found["drift at most 0.1%"][0] and found["reverse drift (new -> old) at most 0.1%"][0]
    assert all(ok for name, (ok, _) in found.items() if "cleanup" not in name), found
    assert sheets(conn) == before
    conn.execute("DROP TRIGGER trigger_weeks_reverse_sync ON public.weeks")
    missing = checks(conn, config)["9 triggers of phase 2 (both directions) present and enabled"]
    assert not missing[0] and "trigger_weeks_reverse_sync on weeks: missing" in missing[1]


def test_phase_3_checks_the_refused_write_and_no_forward_trigger(conn):
    config = stepped_to(conn, "3")
    found = checks(conn, config)
    refused = found["habit_tracker refuses an old client's write (42501)"]
    assert refused[0] and "42501: habit_tracker is read-only" in refused[1]
    assert found["trigger absent (phase 3 (contract): forward sync off)"][0]
    assert found["test row rolled back"][0] and "phase 1 syncs child, week and 4 records" not in found
    assert all(ok for name, (ok, _) in found.items() if "cleanup" not in name), found
    conn.execute("DROP TRIGGER trigger_habit_tracker_read_only ON public.habit_tracker")
    again = checks(conn, config)
    assert not again["habit_tracker refuses an old client's write (42501)"][0]
    assert again["test row rolled back"][0] and sheets(conn) == 0
