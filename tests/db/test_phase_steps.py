"""Each step of dualwrite/phases.py applied straight to PostgreSQL (dualwrite/migration.py), up and back
down: after every step the database holds exactly the objects of the phase, plus the tables that hold
rows (kept when a step back leaves them), and the app's rows are all still there."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from dualwrite import migration, phases
from dualwrite.catalog import MIGRATION_013, objects_in
from dualwrite.monitor import deployed_phase
from dualwrite.objects import Table
from lock_race import deadlock_timeout_s, in_a_thread, wait_until_waiting

pytestmark = pytest.mark.db

OBJECTS = """
SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = ANY(%(names)s)
UNION ALL SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proname = ANY(%(names)s)
UNION ALL SELECT tgname FROM pg_trigger WHERE tgname = ANY(%(names)s)
"""
WALK = ("0", "1", "2", "3", "retired", "3", "2", "1", "0")


def present(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute(OBJECTS, {"names": [o.name for o in MIGRATION_013]}).fetchall()}


def test_each_step_leaves_exactly_the_phases_objects_and_every_row(conn):
    conn.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                 "VALUES (gen_random_uuid(), 'Kept', '2025-10-13', '[]')")
    migration.apply(conn, 0)
    conn.execute("GRANT SELECT ON public.habit_tracker TO anon")  # an ACL the archive must give back as it was
    acl = conn.execute("SELECT relacl::text FROM pg_class WHERE oid = 'public.habit_tracker'::regclass").fetchone()
    tables_so_far: set[str] = set()
    for key in WALK:
        phase = phases.BY_KEY[key]
        migration.set_phase(conn, phase.order)
        expected = {obj.name for obj in objects_in(phase.order)}
        tables_so_far |= {obj.name for obj in objects_in(phase.order) if obj.kind is Table}
        assert present(conn) == expected | tables_so_far, f"after the step to phase {key}"
        if phase.archives:  # no API role can use the archive; the step back restores the ACL exactly
            assert not conn.execute("SELECT has_table_privilege('anon', 'public.habit_tracker_archive', 'SELECT') "
                                    "OR has_table_privilege('service_role', 'public.habit_tracker_archive', 'SELECT') "
                                    "OR has_table_privilege('authenticated', 'public.habit_tracker_archive', 'SELECT')"
                                    ).fetchone()[0]
        else:
            assert conn.execute("SELECT relacl::text FROM pg_class WHERE oid = 'public.habit_tracker'::regclass"
                                ).fetchone() == acl
        assert deployed_phase(conn) == key
        table = "habit_tracker_archive" if phase.archives else "habit_tracker"
        assert conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE child_name = 'Kept'").format(
            sql.Identifier("public", table))).fetchone() == (1,)


def test_retirement_stops_every_sync_first_in_one_transaction(conn):
    """objects/retirement.py: before habit_tracker is archived, every trigger and sync function of Phase 3
    that retirement does not keep is gone; its fingerprint says so; the step back creates them again."""
    from dualwrite.catalog import retirement_props
    from dualwrite.db import Session
    from dualwrite.objects import Retirement

    migration.apply(conn, 0)
    for key in ("1", "2", "3"):
        migration.set_phase(conn, phases.BY_KEY[key].order)
    stop = Retirement(retirement_props())
    assert stop.fingerprint(conn) is None  # Phase 3's triggers are there
    stop.apply_create(Session.on(conn))
    retired = phases.BY_KEY["retired"]
    kept = {obj.name for obj in objects_in(retired.order)} | {obj.name for obj in MIGRATION_013 if obj.kind is Table}
    assert present(conn) == kept - {"habit_tracker_archive"}
    assert stop.fingerprint(conn) is not None
    migration.set_phase(conn, phases.BY_KEY["3"].order)
    assert present(conn) >= {obj.name for obj in objects_in(phases.BY_KEY["3"].order)}


def test_the_reverse_catch_up_brings_habit_tracker_back_to_the_new_schema(conn):
    """objects/reverse_backfill.py: its read counts the sheets behind the weeks (what `up` compares with the
    declared 0), its run rebuilds them batch by batch, and then it reads 0."""
    from dualwrite.db import Session
    from dualwrite.objects import ReverseBackfill

    migration.apply(conn, 0)
    migration.set_phase(conn, 1)
    conn.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                 "SELECT gen_random_uuid(), 'Sheet ' || g, date '2025-10-13' + 7 * g, '[]' FROM generate_series(1, 5) g")
    migration.set_phase(conn, 2)
    # Sheets gone from habit_tracker while their weeks stay (as when it was archived): no sync sees it.
    conn.execute("SET habit_tracker_db.syncing = 'reverse'")
    conn.execute("DELETE FROM public.habit_tracker WHERE child_name IN ('Sheet 2', 'Sheet 4')")
    conn.execute("RESET habit_tracker_db.syncing")
    catch_up = ReverseBackfill({"kind": "reverse_backfill", "batch_size": 2, "sync_checksum": "x", "unsynced": 0})
    session = Session.on(conn)
    assert catch_up.apply_read(session) == {"unsynced": 2}
    assert catch_up.apply_create(session) == {"batches": 4, "unsynced": 0}  # 5 weeks in batches of 2, then none
    assert conn.execute("SELECT count(*) FROM public.habit_tracker").fetchone() == (5,)
    assert catch_up.apply_read(session) == {"unsynced": 0}


def test_retirement_waits_for_a_new_clients_transaction_instead_of_deadlocking_it(conn, db_url):
    """A new client that has written a child and then writes its week, while retirement starts: the deploy
    waits for it (the first table it locks may wait the whole lock_timeout), and the app's write commits."""
    from dualwrite.catalog import retirement_props
    from dualwrite.db import Session
    from dualwrite.objects import Retirement

    migration.apply(conn, 0)
    for key in ("1", "2", "3"):
        migration.set_phase(conn, phases.BY_KEY[key].order)
    with psycopg.connect(db_url) as app, psycopg.connect(db_url, autocommit=True) as deploy:
        child = app.execute("INSERT INTO public.children (user_id, name) VALUES (gen_random_uuid(), 'Mid') "
                            "RETURNING id").fetchone()[0]
        with in_a_thread(lambda: Retirement(retirement_props()).apply_create(Session.on(deploy))):
            # The deploy is waiting on a lock the app's transaction holds before the app writes on.
            wait_until_waiting(conn, deploy.info.backend_pid)
            app.execute("INSERT INTO public.weeks (child_id, week_start_date) VALUES (%s, '2025-10-13')", (child,))
            app.commit()  # no DeadlockDetected: the app's write is kept
    assert conn.execute("SELECT count(*) FROM public.weeks WHERE child_id = %s", (child,)).fetchone() == (1,)


def test_retirement_lets_go_rather_than_deadlock_a_save_that_locks_children_last(conn, db_url):
    """A week screen's save (what the walk's new client does): it writes a habit record, then its reverse
    sync reads children at commit. Retirement, having locked children, waits on habit_records; the save
    then asks for children well after deadlock_timeout. The deploy must time out on its second lock
    first (db.lock_in_turn) and retry: the save commits, and the retirement completes."""
    import time

    from dualwrite.catalog import retirement_props
    from dualwrite.db import Session
    from dualwrite.objects import Retirement

    migration.apply(conn, 0)
    for key in ("1", "2", "3"):
        migration.set_phase(conn, phases.BY_KEY[key].order)
    habit = conn.execute(
        "WITH c AS (INSERT INTO public.children (user_id, name) VALUES (gen_random_uuid(), 'Ada') RETURNING id), "
        "w AS (INSERT INTO public.weeks (child_id, week_start_date) SELECT id, '2025-10-13' FROM c RETURNING id) "
        "INSERT INTO public.habits (week_id, name, position) SELECT id, 'Read', 0 FROM w RETURNING id").fetchone()[0]
    with psycopg.connect(db_url) as app, psycopg.connect(db_url, autocommit=True) as deploy:
        app.execute("INSERT INTO public.habit_records (habit_id, record_date, status) VALUES (%s, '2025-10-14', "
                    "'green')", (habit,))
        with in_a_thread(lambda: Retirement(retirement_props()).apply_create(Session.on(deploy))):
            wait_until_waiting(conn, deploy.info.backend_pid)
            time.sleep(deadlock_timeout_s(conn) * 1.5)  # past the deploy's own deadlock check, had it kept waiting
            app.execute("SELECT count(*) FROM public.children")  # what the reverse sync reads at commit
            app.commit()  # no DeadlockDetected: the save is kept
    assert conn.execute("SELECT count(*) FROM public.habit_records WHERE habit_id = %s", (habit,)).fetchone() == (1,)
    assert Retirement(retirement_props()).fingerprint(conn) is not None  # every sync trigger is gone
