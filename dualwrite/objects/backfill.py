"""The backfill as an object: entering Phase 1 by `pulumi up` also brings existing rows over.

Created when a stack enters Phase 1 (after the Phase 1 trigger is in place, so rows
written meanwhile are synced by the trigger), run again in place when the sync logic
changes (rows are projected again with the new logic: an update, not a replace, since
nothing is ever dropped), and never dropped: leaving Phase 1 keeps the new schema's rows,
and re-entering it backfills again. Not one transaction: the
runner (dualwrite/backfill.py) commits batch by batch.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from dualwrite.db import Session
from dualwrite.objects.base import ObjectKind, Props


class Backfill(ObjectKind):
    kind = "backfill"
    compared = ("sync_checksum", "batch_size")
    replace_on = ()
    drop_allowed = False

    @property
    def name(self) -> str:
        return "backfill"

    def object_id(self) -> str:
        return "backfill"

    def describe(self) -> str:
        return "backfill of habit_tracker into the new schema"

    def adoption(self, conn) -> None:
        return None  # nothing in the database to take over

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        if op == "delete" or (op == "update" and "sync_checksum" not in changed):
            return []  # nothing runs: the rows stay, a new batch size applies to the next backfill
        return [sql.SQL("-- batches of at most {} rows, each its own bounded transaction, until none is left\n"
                        "-- ($1: the last id of the batch before, $2: this batch's size):\n"
                        "SELECT public.backfill_habit_tracker($1, $2)").format(
            sql.SQL(str(int(self.props["batch_size"]))))]

    def apply_create(self, session: Session) -> dict[str, Any]:
        from dualwrite import backfill

        result = backfill.run(
            session.conninfo,
            batch_size=int(self.props["batch_size"]),
            lock_timeout=session.lock_timeout,
            statement_timeout=session.statement_timeout,
            show_progress=False,
        )
        return {"rows": result.rows}

    def apply_update(self, session: Session, olds: Props) -> dict[str, Any]:
        if olds.get("sync_checksum") != self.props.get("sync_checksum"):
            return self.apply_create(session)  # new sync logic: project every row again
        return {"rows": olds.get("rows")}  # a new batch size alone is no reason to


    def apply_read(self, session: Session) -> dict[str, Any] | None:
        return {}  # nothing in the catalog to compare: the drift check is its read-back
