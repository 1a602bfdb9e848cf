"""The scheduled cleanup on a Phase 1 stack deployed by the real engine (issue 17, items 8 and 9).

- Supabase's Security Advisor lints (tests/lint/test_supabase_linter.py) find no WARN or ERROR
  on migration 013's objects of the deployed database;
- pg_cron itself runs the job's DO block (it COMMITs per batch, which needs a top-level
  statement outside any transaction block) and it deletes exactly the expired rows;
- `invoke cleanup` deletes them batch by batch and says how many.
"""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.lint.test_supabase_linter import findings

pytestmark = [pytest.mark.engine, pytest.mark.db]


def seed(stack, expired: int, live: int) -> None:
    stack.query("INSERT INTO public.idempotency_log (key, operation, status, expires_at) "
                "SELECT 'old-' || g, 'create_week', 'success', now() - g * interval '1 ms' FROM generate_series(1, %s) g "
                "UNION ALL SELECT 'live-' || g, 'create_week', 'success', now() + interval '1 hour' "
                "FROM generate_series(1, %s) g", expired, live)


def test_the_job_runs_under_pg_cron_and_the_linter_is_clean(e2e_stack):
    stack = e2e_stack(phase="1")
    stack.invoke("up")
    with psycopg.connect(stack.cluster.db_url(), autocommit=True) as conn:
        assert [f for f in findings(conn) if f[0] in ("WARN", "ERROR")] == []
        assert conn.execute("SELECT to_regprocedure('public.cleanup_idempotency_log_in_batches(integer)')"
                            ).fetchone()[0] is None

    seed(stack, 12_001, 10)  # three batches of 5,000
    # Run the deployed job now: the admin makes its schedule every minute (this pg_cron has no seconds) (its command and owner,
    # `postgres`, stay as deployed).
    stack.query("SELECT cron.alter_job(jobid, schedule := '* * * * *') FROM cron.job "
                "WHERE jobname = 'cleanup_idempotency_log'", admin=True)
    status = []
    for _ in range(900):  # up to 90 s: the next minute starts within 60
        status = stack.query("SELECT d.status, d.return_message FROM cron.job_run_details d JOIN cron.job j "
                             "USING (jobid) WHERE j.jobname = 'cleanup_idempotency_log' ORDER BY d.runid")
        if status and status[0][0] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    stack.query("SELECT cron.alter_job(jobid, schedule := '17 3 * * *') FROM cron.job "
                "WHERE jobname = 'cleanup_idempotency_log'", admin=True)
    assert status and status[0][0] == "succeeded", status
    assert stack.query("SELECT count(*) FILTER (WHERE key LIKE 'old-%%'), count(*) FILTER (WHERE key LIKE 'live-%%') "
                       "FROM public.idempotency_log") == [(0, 10)]

    seed(stack, 7_000, 0)
    result = stack.invoke("cleanup")
    assert "deleted_count: 7000" in result.stdout
    assert "deleted_count: 0" in stack.invoke("cleanup", "--one-transaction").stdout
