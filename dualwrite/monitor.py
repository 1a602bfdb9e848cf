"""`invoke monitor`: the guide's monitoring queries in one table."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from dualwrite.db import Session

from dualwrite.catalog import CLEANUP_JOB, by_name
from dualwrite.objects import cron_job
from dualwrite.objects.cron_job import ScheduledJob
from dualwrite.config import StackConfig

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
    declared_phase: int
    deployed_phase: str
    trigger: str
    total_logs: int | None
    expired_logs: int | None
    success_logs: int | None
    failed_logs: int | None
    cleanup_job: str
    dual_write_errors: int | None

    def rows(self) -> list[tuple[str, str]]:
        return [(name.replace("_", " "), "-" if value is None else str(value)) for name, value in vars(self).items()]


TRIGGER_STATES = {"O": "enabled (O)", "D": "DISABLED (D)", "R": "replica only (R)", "A": "always (A)"}


def cleanup_job(conn: psycopg.Connection) -> ScheduledJob | None:
    """(schedule, active) of the Phase 1 cleanup job; None when it (or pg_cron) is absent."""
    return cron_job.lookup(conn, CLEANUP_JOB)


def deployed_phase(conn: psycopg.Connection) -> str:
    """Which phase's body sync_old_to_new() runs now, read from the database itself."""
    row = conn.execute("SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure('public.sync_old_to_new()')").fetchone()
    if row is None:
        return "absent"
    function = by_name("sync_old_to_new")
    body = row[0].strip()
    # Every body the project deploys: Phase 0 has one per `phase0_log` mode, Phase 1 one.
    variants = ((0, "notice", "0"), (0, "server", "0 (phase0_log: server)"), (1, "notice", "1"))
    for phase, phase0_log, label in variants:
        if body and body in function.source(phase, phase0_log):
            return label
    return "unknown body (edited by hand?)"


def status(conn: psycopg.Connection, config: StackConfig) -> Status:
    trigger = conn.execute(
        "SELECT tgenabled FROM pg_trigger WHERE tgname = 'trigger_habit_tracker_dual_write'"
    ).fetchone()
    has_log = conn.execute("SELECT to_regclass('public.idempotency_log') IS NOT NULL").fetchone()[0]
    counts = conn.execute(LOG_GROWTH).fetchone() if has_log else (None, None, None, None)
    job = cleanup_job(conn)
    has_errors = conn.execute("SELECT to_regclass('public.dual_write_errors') IS NOT NULL").fetchone()[0]
    errors = conn.execute("SELECT count(*) FROM public.dual_write_errors").fetchone()[0] if has_errors else None
    return Status(
        declared_phase=config.phase,
        deployed_phase=deployed_phase(conn),
        trigger="absent" if trigger is None else TRIGGER_STATES.get(trigger[0], trigger[0]),
        total_logs=counts[0],
        expired_logs=counts[1],
        success_logs=counts[2],
        failed_logs=counts[3],
        cleanup_job="not scheduled" if job is None else f"'{job[0]}' ({'active' if job[1] else 'inactive'})",
        dual_write_errors=errors,
    )


def cleanup_now(conn: psycopg.Connection, config: StackConfig) -> int:
    """The guide's `SELECT cleanup_idempotency_log()`, in one bounded transaction, retried on lock timeouts."""
    session = Session.on(conn, config.lock_timeout, config.statement_timeout)
    return int(session.change(lambda c: c.execute("SELECT public.cleanup_idempotency_log()").fetchone()[0]))
