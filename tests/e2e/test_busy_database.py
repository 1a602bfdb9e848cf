"""Deploys that meet a busy production database (issue 17, items 5 and 6), with the real engine.

- the first deploy succeeds while an app transaction stays open across it: the new, empty
  idempotency_log gets its indexes in the transaction that creates it (no CONCURRENTLY, which
  would wait for that transaction and time out);
- a deploy step and `invoke rollback` that run out of lock retries name the session they waited for.
"""

from __future__ import annotations

import psycopg
import pytest

pytestmark = [pytest.mark.engine, pytest.mark.db]


def app_session(stack, name: str) -> psycopg.Connection:
    return psycopg.connect(stack.cluster.db_url(), application_name=name)


def test_the_first_deploy_succeeds_with_an_app_transaction_open_across_it(e2e_stack):
    stack = e2e_stack(lock_timeout="500ms")
    with app_session(stack, "habit-app-report") as app:
        app.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")  # a report: holds its snapshot throughout
        app.execute("SELECT count(*) FROM public.habit_tracker")
        stack.invoke("up")
        app.rollback()
    assert stack.query("SELECT count(*) FROM pg_index WHERE indrelid = 'public.idempotency_log'::regclass "
                       "AND indisvalid AND indisready") == [(5,)]
    assert stack.query("SELECT relname FROM pg_class WHERE relname LIKE 'idx_idempotency_%_new'") == []
    stack.invoke("preview", "--expect-no-changes")
    assert "FAIL" not in stack.invoke("smoke-test").stdout


def test_a_step_and_a_rollback_out_of_lock_retries_name_the_session_they_waited_for(e2e_stack):
    stack = e2e_stack(lock_timeout="300ms")
    stack.invoke("up")
    stack.set("dual_write", "disabled")  # ALTER TABLE habit_tracker DISABLE TRIGGER: needs its lock
    with app_session(stack, "habit-app-writer") as app:
        app.execute("UPDATE public.habit_tracker\nSET child_name = child_name")  # ROW EXCLUSIVE, left open
        pid = app.info.backend_pid
        deploy = stack.invoke("up", check=False)
        rollback = stack.invoke("rollback", "--level", "drop-trigger", "--yes", check=False)
        app.rollback()
    for result in (deploy, rollback):
        message = result.stdout + result.stderr
        assert result.returncode != 0, message[-3000:]
        assert f"pid {pid} (user postgres, application_name 'habit-app-writer', state 'idle in transaction'" \
            in message, message[-3000:]
        assert "query: UPDATE public.habit_tracker)" in message, message[-3000:]
    assert "Traceback" not in rollback.stdout + rollback.stderr
    assert f"rollback of stack '{stack.name}' did not run" in rollback.stdout + rollback.stderr
    assert stack.query("SELECT tgenabled FROM pg_trigger WHERE tgname = 'trigger_habit_tracker_dual_write'") \
        == [("O",)]  # neither changed anything
