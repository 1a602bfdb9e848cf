"""`invoke monitor`: the guide's monitoring queries in one table.

Beside them: which rollback is in effect (and whether the stack declares it), drift where
Phase 1 syncs, split into unsynced rows (`invoke backfill`) and malformed ones (`invoke
errors`), and how many recorded errors still have a malformed row.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Any

import psycopg

from dualwrite.db import Session

from dualwrite.catalog import CLEANUP_JOB, TRIGGER
from dualwrite.objects import cron_job
from dualwrite.objects.cron_job import ScheduledJob
from dualwrite.objects.trigger import trigger_states
from dualwrite.config import StackConfig
from dualwrite.drift import can_split
from dualwrite.dual_write_state import deployed_phase, read as read_state

LOG_GROWTH = """
SELECT
  COUNT(*) AS total_logs,
  COUNT(*) FILTER (WHERE expires_at < NOW()) AS expired_logs,
  COUNT(*) FILTER (WHERE status = 'success') AS success_logs,
  COUNT(*) FILTER (WHERE status = 'failed') AS failed_logs
FROM public.idempotency_log
"""


@dataclass(frozen=True)
class Status:
    declared_phase: str
    deployed_phase: str
    trigger: str
    total_logs: int | None
    expired_logs: int | None
    success_logs: int | None
    failed_logs: int | None
    cleanup_job: str
    dual_write_errors: str
    dual_write: str
    drift: str

    def rows(self) -> list[tuple[str, str]]:
        return [(name.replace("_", " "), "-" if value is None else str(value)) for name, value in vars(self).items()]


TRIGGER_STATES = {"O": "enabled (O)", "D": "DISABLED (D)", "R": "replica only (R)", "A": "always (A)"}


def cleanup_job(conn: psycopg.Connection) -> ScheduledJob | None:
    """(schedule, active) of the Phase 1 cleanup job; None when it (or pg_cron) is absent."""
    return cron_job.lookup(conn, CLEANUP_JOB)


def status(conn: psycopg.Connection, config: StackConfig) -> Status:
    trigger = trigger_states(conn, [TRIGGER.name]).get(TRIGGER.name)
    has_log = conn.execute("SELECT to_regclass('public.idempotency_log') IS NOT NULL").fetchone()[0]
    counts = conn.execute(LOG_GROWTH).fetchone() if has_log else (None, None, None, None)
    job = cleanup_job(conn)
    # The malformed-row test reads habit_tracker: not there once it is archived (retired).
    has_errors = conn.execute("SELECT to_regclass('public.dual_write_errors') IS NOT NULL AND "
                              "to_regprocedure('public.habit_tracker_row_error(jsonb, date)') IS NOT NULL AND "
                              "to_regclass('public.habit_tracker') IS NOT NULL").fetchone()[0]
    return Status(
        declared_phase=f"{config.stage.key} ({config.stage.title})",
        deployed_phase=deployed_phase(conn),
        trigger="absent" if trigger is None else TRIGGER_STATES.get(trigger, trigger),
        total_logs=counts[0],
        expired_logs=counts[1],
        success_logs=counts[2],
        failed_logs=counts[3],
        cleanup_job="not scheduled" if job is None else f"'{job[0]}' ({'active' if job[1] else 'inactive'})",
        dual_write_errors=errors_summary(conn, config) if has_errors else "-",
        dual_write=read_state(conn, config).describe(),
        drift=drift_summary(conn, config),
    )


# Recorded errors, and how many of their rows are malformed still (cheap: no diff; the
# malformed-row test runs once per recorded row).
ERRORS = """
SELECT count(*),
       count(DISTINCT e.tracker_id) FILTER (
           WHERE public.habit_tracker_row_error(h.habits, h.week_start_date) IS NOT NULL)
FROM public.dual_write_errors AS e
LEFT JOIN public.habit_tracker AS h ON h.id = e.tracker_id
"""


def errors_summary(conn: psycopg.Connection, config: StackConfig) -> str:
    recorded, malformed = conn.execute(ERRORS).fetchone()
    if not malformed:
        return f"{recorded} recorded; no row malformed now"
    return f"{recorded} recorded; {malformed} rows malformed now (`invoke errors --stack {config.stack}`)"


def drift_summary(conn: psycopg.Connection, config: StackConfig) -> str:
    """Drift where the phase syncs (forward, reverse or both: dualwrite/phases.py), with what it is made
    of and each fix; elsewhere, why it does not apply."""
    from dualwrite.stack_drift import stack_drift

    if config.stage.drift != "reverse" and not can_split(conn):
        return "-"
    result = stack_drift(conn, config)
    if result.not_applicable is not None:
        return str(result.not_applicable)
    parts = []
    if result.report is not None:
        made_of = f": {result.split.advice(config.stack)}" if result.split is not None and result.split.drifted else ""
        verdict = "within" if result.report.within(config.drift_threshold) else "ABOVE"
        parts.append(f"{result.report.drift_pct}% ({verdict} the threshold {config.drift_threshold}%){made_of}")
    if result.reverse is not None:
        verdict = "within" if result.reverse.within(config.drift_threshold) else "ABOVE"
        parts.append(f"reverse (new -> old) {result.reverse.drift_pct}% ({verdict} the threshold "
                     f"{config.drift_threshold}%)")
    return "; ".join(parts)


BATCH = ("SELECT b.deleted, b.next_after FROM public.cleanup_idempotency_log_batch("
         "%s, coalesce(%s::timestamptz, '-infinity')) AS b")


def cleanup_now(conn: psycopg.Connection, config: StackConfig, *, one_transaction: bool = False) -> int:
    """`invoke cleanup`: what the scheduled job does, batch by batch, each batch one bounded transaction
    committed before the next (the app's writers wait for one batch's row locks at most), retried
    on lock timeouts; with `one_transaction`, the guide's `SELECT cleanup_idempotency_log()`, which
    holds every row lock until it ends. Returns how many rows it deleted."""
    session = Session.on(conn, config.lock_timeout, config.statement_timeout)
    if one_transaction:
        return int(session.change(lambda c: c.execute("SELECT public.cleanup_idempotency_log()").fetchone()[0]))
    # One cutoff for the whole run, as the job's DO block takes it: rows expiring meanwhile wait.
    cutoff = session.change(lambda c: c.execute("SELECT now()").fetchone()[0])
    done_until = None
    total = 0
    while True:
        def batch(c: psycopg.Connection, after: Any = done_until) -> Any:
            return c.execute(BATCH, (cutoff, after)).fetchone()

        deleted, next_after = session.change(batch)
        total += deleted
        if next_after is None:
            return total
        done_until = next_after
