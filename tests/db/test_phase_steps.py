"""Each step of dualwrite/phases.py applied straight to PostgreSQL (dualwrite/migration.py), up and back
down: after every step the database holds exactly the objects of the phase, plus the tables that hold
rows (kept when a step back leaves them), and the app's rows are all still there."""

from __future__ import annotations

import psycopg
import pytest

from dualwrite import migration, phases
from dualwrite.catalog import MIGRATION_013, objects_in
from dualwrite.monitor import deployed_phase
from dualwrite.objects import Table

pytestmark = pytest.mark.db

OBJECTS = """
SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = ANY(%(names)s)
UNION ALL SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proname = ANY(%(names)s)
UNION ALL SELECT tgname FROM pg_trigger WHERE tgname = ANY(%(names)s)
"""
# Up to Phase 3 and back; retirement (the archive) is walked with the engine (tests/e2e).
WALK = ("0", "1", "2", "3", "2", "1", "0")


def present(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute(OBJECTS, {"names": [o.name for o in MIGRATION_013]}).fetchall()}


def test_each_step_leaves_exactly_the_phases_objects_and_every_row(conn):
    conn.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                 "VALUES (gen_random_uuid(), 'Kept', '2025-10-13', '[]')")
    migration.apply(conn, 0)
    tables_so_far: set[str] = set()
    for key in WALK:
        phase = phases.BY_KEY[key]
        migration.set_phase(conn, phase.order)
        expected = {obj.name for obj in objects_in(phase.order)}
        tables_so_far |= {obj.name for obj in objects_in(phase.order) if obj.kind is Table}
        assert present(conn) == expected | tables_so_far, f"after the step to phase {key}"
        assert deployed_phase(conn) == key
        assert conn.execute("SELECT count(*) FROM public.habit_tracker WHERE child_name = 'Kept'").fetchone() == (1,)
