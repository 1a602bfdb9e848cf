"""Real Supabase databases, with the real engine, as `postgres` (not a superuser), on stacks of the tests' own.

- migration 013 pasted by hand from the guide is adopted, and the next preview is empty;
- an incompatible table stops the deploy before anything changes;
- a policy added in the dashboard, then removed: `up` works both times, the preview ends empty;
- a column added by hand is reported with its statement while everything else deploys;
- a deploy killed while it waits on an app's lock: the API roles never get a window, and the
  next `invoke up` converges by itself;
- smoke-test, drift, monitor and backfill through a transaction-mode pooler, twice in a row;
- writers through a deploy that changes the trigger end at drift 0.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from dualwrite.catalog import objects_in
from dualwrite.smoke import api_role_access

pytestmark = [pytest.mark.engine, pytest.mark.db]
GUIDE_013 = Path(__file__).parent / "fixtures" / "guide_013.sql"


def test_013_pasted_from_the_guide_is_adopted_then_preview_is_empty(e2e_stack):
    stack = e2e_stack()
    stack.query(GUIDE_013.read_text())
    stack.query("INSERT INTO public.idempotency_log (key, operation, status) "
                "SELECT 'pasted-' || g, 'create_week', 'success' FROM generate_series(1, 20) g")
    assert stack.query("SELECT has_function_privilege('anon', 'public.cleanup_idempotency_log()', 'EXECUTE')") \
        == [(True,)]  # Supabase's default privileges: the hand-made function is open to the API

    plan = stack.invoke("preview", "--diff")
    assert "adopt the existing table public.idempotency_log (its rows stay)" in plan.stdout
    assert "adopt the existing index public.idx_idempotency_created: the declared one is built CONCURRENTLY" \
        in plan.stdout
    assert "adopt the existing index public.idx_idempotency_key as it is" in plan.stdout

    stack.invoke("up")
    stack.invoke("preview", "--expect-no-changes")
    stack.invoke("preview", "--refresh", "--expect-no-changes")
    assert stack.query("SELECT count(*) FROM public.idempotency_log") == [(20,)]
    assert sorted(o.name for o in objects_in(0)) == stack.objects_of_013()
    assert stack.query("SELECT relrowsecurity FROM pg_class WHERE oid = 'public.idempotency_log'::regclass") \
        == [(True,)]
    assert "FAIL" not in stack.invoke("smoke-test").stdout  # privileges, RLS, the 5 indexes, the trigger


def test_an_incompatible_table_stops_the_deploy_before_anything_changes(e2e_stack):
    stack = e2e_stack()
    stack.query("CREATE TABLE public.idempotency_log (id bigint PRIMARY KEY, key text, status integer)")
    result = stack.invoke("up", check=False)
    message = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Table public.idempotency_log already exists but is not the declared one" in message
    assert "column id is bigint, declared uuid" in message and "column operation (text) is missing" in message
    assert "Traceback" not in message
    assert stack.objects_of_013() == ["idempotency_log"]  # nothing else was created


def test_a_policy_added_in_the_dashboard_then_removed_never_wedges_the_stack(e2e_stack):
    stack = e2e_stack()
    stack.invoke("up")
    stack.query("CREATE POLICY dashboard_read ON public.idempotency_log FOR SELECT TO anon USING (true)")
    shown = stack.invoke("preview", "--refresh", "--expect-no-changes", "--diff", check=False)
    assert shown.returncode != 0 and "changed outside Pulumi" in shown.stdout
    stack.invoke("up")  # puts back the declared policies: the hand-made one goes, the table stays
    assert stack.query("SELECT polname FROM pg_policy WHERE polrelid = 'public.idempotency_log'::regclass") \
        == [("idempotency_log_service_role_only",)]
    stack.invoke("preview", "--refresh", "--expect-no-changes")

    # Added and removed again by hand before anyone deploys: nothing is left to do.
    stack.query("CREATE POLICY dashboard_read ON public.idempotency_log FOR SELECT TO anon USING (true)")
    stack.invoke("refresh")
    stack.query("DROP POLICY dashboard_read ON public.idempotency_log")
    stack.invoke("up")
    stack.invoke("preview", "--refresh", "--expect-no-changes")


def test_a_column_added_by_hand_is_reported_and_everything_else_deploys(e2e_stack):
    stack = e2e_stack()
    stack.invoke("up")
    stack.query("ALTER TABLE public.idempotency_log ADD COLUMN note text")
    stack.query("CREATE OR REPLACE FUNCTION public.cleanup_idempotency_log() RETURNS integer LANGUAGE sql AS 'SELECT 0'")
    stack.query("GRANT SELECT ON public.idempotency_log TO anon")
    result = stack.invoke("up")
    assert "ALTER TABLE public.idempotency_log DROP COLUMN note" in result.stderr
    assert stack.query("SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
                       "WHERE p.oid = 'public.cleanup_idempotency_log()'::regprocedure") == [("plpgsql",)]
    assert stack.query("SELECT has_table_privilege('anon', 'public.idempotency_log', 'SELECT')") == [(False,)]
    # Still reported until it is undone; then the preview is clean.
    assert stack.invoke("preview", "--refresh", "--expect-no-changes", check=False).returncode != 0
    stack.query("ALTER TABLE public.idempotency_log DROP COLUMN note")
    stack.invoke("up")
    stack.invoke("preview", "--refresh", "--expect-no-changes")


def test_a_deploy_killed_while_waiting_on_a_lock_leaves_no_window_and_the_next_up_converges(e2e_stack):
    stack = e2e_stack()
    seen_open: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        with psycopg.connect(stack.cluster.db_url(), autocommit=True) as conn:
            while not stop.is_set():
                usable = api_role_access(conn)
                if usable:
                    seen_open.append(f"{time.strftime('%H:%M:%S')}: {usable}")
                time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    app = psycopg.connect(stack.cluster.db_url())  # an app transaction, open: it holds ROW EXCLUSIVE
    try:
        app.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                    "VALUES (gen_random_uuid(), 'in flight', '2025-10-13', '[]')")
        deploy = subprocess.Popen(
            [str(Path(sys.executable).parent / "invoke"), "up", "--stack", stack.name], cwd=stack.root,
            env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        waiting = []
        for _ in range(600):  # the trigger's CREATE waits for the app's lock (lock_timeout, retried)
            waiting = stack.query("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                  "AND query LIKE '%TRIGGER trigger_habit_tracker_dual_write%'")
            if waiting or deploy.poll() is not None:
                break
            time.sleep(0.05)
        assert waiting, deploy.communicate()[0]
        os.killpg(deploy.pid, signal.SIGKILL)  # what a cancelled CI job does to its process group
        deploy.wait()
    finally:
        app.rollback()
        app.close()
    again = stack.invoke("up")  # no manual step on the same host
    stop.set()
    watcher.join()
    assert not seen_open, f"the API roles could use an object of 013 at {seen_open}"
    assert "removed the lock of a cut-off deploy" in again.stdout
    stack.invoke("preview", "--expect-no-changes")
    assert sorted(o.name for o in objects_in(0)) == stack.objects_of_013()
    assert "FAIL" not in stack.invoke("smoke-test").stdout


def test_tasks_work_through_a_transaction_pooler_twice_in_a_row(e2e_stack):
    direct = e2e_stack(pooler=True, phase="1")
    direct.invoke("up")
    pooled = e2e_stack(phase="1")  # a second stack file on the same database, through PgBouncer
    pooled.cluster.destroy()
    pooled.cluster = direct.cluster
    pooled.set("db_port", str(direct.cluster.pooler_port))
    direct.query("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                 "SELECT gen_random_uuid(), 'pooled ' || g, '2025-10-13', '[]' FROM generate_series(1, 30) g")
    for _ in range(2):  # server connections are shared: a second run meets the first one's sessions
        assert "FAIL" not in pooled.invoke("smoke-test").stdout
        pooled.invoke("drift")
        pooled.invoke("monitor")
        pooled.invoke("backfill")
        pooled.invoke("cleanup")
    assert direct.query("SELECT drift_pct FROM public.dual_write_drift()") == [(0,)]


def test_up_through_the_transaction_pooler_port_is_refused_before_any_change(e2e_stack):
    stack = e2e_stack()
    stack.set("db_port", "6543")
    for result in (stack.invoke("up", check=False), stack.pulumi("up", "--yes", "--skip-preview", check=False)):
        message = result.stdout + result.stderr
        assert result.returncode != 0 and "transaction pooler" in message and "5432" in message, message[-2000:]
        assert "Traceback" not in message
    assert stack.objects_of_013() == []


def test_writers_through_a_trigger_changing_deploy_end_at_drift_zero(e2e_stack, tmp_path):
    stack = e2e_stack(phase="1")
    stack.invoke("up")
    copy = stack.copy_project(tmp_path / "changed")
    trigger = copy / "sql" / "013" / "trigger_habit_tracker_dual_write.sql"
    trigger.write_text("-- A comment line: a new definition to deploy.\n" + trigger.read_text())
    stop = threading.Event()
    errors: list[BaseException] = []
    written = [0]

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        user = uuid.UUID(int=seed + 1)
        try:
            with psycopg.connect(stack.cluster.db_url(), autocommit=True) as conn:
                conn.execute("SET client_min_messages = warning")
                while not stop.is_set():
                    week = f"2025-{rng.randint(1, 12):02d}-01"
                    conn.execute(
                        "INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                        "VALUES (%s, %s, date_trunc('week', %s::date)::date, %s) "
                        "ON CONFLICT (user_id, child_name, week_start_date) DO UPDATE SET habits = EXCLUDED.habits",
                        (user, f"child {rng.randint(1, 30)}", week,
                         Jsonb([{"name": "Read", "times": [rng.choice(["green", "", "red"]) for _ in range(7)]}])),
                    )
                    written[0] += 1
        except BaseException as error:  # noqa: BLE001 - any error reaching the app fails the test
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(2)]
    for thread in threads:
        thread.start()
    try:
        before = written[0]
        while written[0] < before + 200 and not errors:
            time.sleep(0.01)
        changed = stack.pulumi("up", "--yes", "--skip-preview", cwd=copy, env={"PYTHONPATH": str(copy)})
        assert "migration013:Trigger" in changed.stdout and "updated" in changed.stdout
        after = written[0]
        while written[0] < after + 200 and not errors:
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors, errors
    assert stack.query("SELECT source_rows > 0, drift_pct FROM public.dual_write_drift()") == [(True, 0)]
