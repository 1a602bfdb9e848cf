"""The Phase 1 pg_cron job: scheduled, rescheduled and unscheduled by name.

`cron.schedule(name, ...)` with an existing name replaces that job, so create and update
are the same call. Also the one place that reads the job back (`lookup`), for the
provider, the smoke test, monitoring and rollback.
"""

from __future__ import annotations

from typing import NamedTuple

import psycopg
from psycopg import sql

from dualwrite.objects.base import ObjectKind, Props


class ScheduledJob(NamedTuple):
    schedule: str
    active: bool


def has_pg_cron(conn: psycopg.Connection) -> bool:
    return bool(conn.execute("SELECT to_regclass('cron.job') IS NOT NULL").fetchone()[0])


def lookup(conn: psycopg.Connection, name: str) -> ScheduledJob | None:
    """(schedule, active) of a job; None when it, or pg_cron itself, is absent."""
    if not has_pg_cron(conn):
        return None
    row = conn.execute("SELECT schedule, active FROM cron.job WHERE jobname = %s", (name,)).fetchone()
    return None if row is None else ScheduledJob(row[0], row[1])


def unschedule_sql(name: str) -> sql.Composed:
    return sql.SQL("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = {}").format(sql.Literal(name))


class CronJob(ObjectKind):
    kind = "cron_job"
    compared = ("kind", "name", "schema", "checksum", "schedule", "command")
    replace_on = ("kind", "name")

    def object_id(self) -> str:
        return f"{self.kind}:{self.name}"

    def create(self, conn: psycopg.Connection) -> None:
        conn.execute(self.schedule_sql())

    def update(self, conn: psycopg.Connection, olds: Props) -> None:
        self.create(conn)

    def schedule_sql(self) -> sql.Composed:
        return sql.SQL("SELECT cron.schedule({}, {}, {})").format(
            sql.Literal(self.name), sql.Literal(self.props["schedule"]), sql.Literal(self.props["command"]))

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        return [self.drop_sql()] if op == "delete" else [self.schedule_sql()]

    def drop_sql(self) -> sql.Composed:
        return unschedule_sql(self.name)

    def drop(self, conn: psycopg.Connection) -> None:
        if has_pg_cron(conn):  # pg_cron gone already (extension dropped): nothing to unschedule
            conn.execute(self.drop_sql())

    def fingerprint_sql(self) -> sql.Composed:
        return sql.SQL(
            "SELECT schedule || ' | ' || command || ' | ' || active::text FROM cron.job WHERE jobname = {}"
        ).format(sql.Literal(self.name))

    def fingerprint(self, conn: psycopg.Connection) -> str | None:
        return super().fingerprint(conn) if has_pg_cron(conn) else None
