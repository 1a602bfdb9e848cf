"""The backfill as an object: entering Phase 1 by `pulumi up` also brings existing rows over.

Created when a stack enters Phase 1 (after the Phase 1 trigger is in place, so rows
written meanwhile are synced by the trigger), run again in place when the sync logic
changes (rows are projected again with the new logic: an update, not a replace, since
nothing is ever dropped), and never dropped: leaving Phase 1 keeps the new schema's rows,
and re-entering it backfills again. Not one transaction: the
runner (dualwrite/backfill.py) commits batch by batch.

Its read (every refresh, so every `invoke up`) counts the habit_tracker rows a backfill would
change (`unsynced`: out of sync and not malformed, or malformed and not yet recorded in
dual_write_errors; dualwrite/drift.py). The program declares
0, so rows written while the trigger did not sync (an emergency `rollback --level disable` or
`drop-trigger`, a trigger disabled in the dashboard) make the diff run the backfill again,
after the trigger is back (the resource depends on every object of the migration), whatever
way the trigger comes back. Malformed rows already recorded are not counted: no backfill can
project them (`invoke errors` lists them), so they never make every deploy re-run it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from psycopg import sql

from dualwrite.db import Session
from dualwrite.objects.base import ObjectKind, Props


# The read scans every table of both schemas once (dual_write_diff(): 5-9 s at 100k rows on this
# 2-core machine under load, ~20 s at 1M in the bench), so the stack's statement_timeout, sized
# for changes that hold locks, would fail every refresh of a large database. It takes no lock
# an app write waits for (plain reads), so it gets a bound of its own.
READ_STATEMENT_TIMEOUT = "10min"


class Backfill(ObjectKind):
    kind = "backfill"
    compared = ("sync_checksum", "batch_size", "unsynced")
    replace_on = ()
    drop_allowed = False

    @property
    def name(self) -> str:
        return "backfill"

    def object_id(self) -> str:
        return "backfill"

    def describe(self) -> str:
        return "backfill of habit_tracker into the new schema"

    @classmethod
    def diff(cls, olds: Props, news: Props) -> tuple[list[str], list[str]]:
        """As every kind, but `unsynced` changes only when the last read (or run) saw rows out of
        sync: state written before it was read back (None) counts as in sync."""
        changed, replaces = super().diff(olds, news)
        if "unsynced" in changed and not int(olds.get("unsynced") or 0) and not int(news.get("unsynced") or 0):
            changed.remove("unsynced")
        return changed, replaces

    def adoption(self, conn) -> None:
        return None  # nothing in the database to take over

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        if op == "delete" or (op == "update" and not {"sync_checksum", "unsynced"} & set(changed)):
            return []  # nothing runs: the rows stay, a new batch size applies to the next backfill
        why = (sql.SQL("-- {} rows out of sync (written while the trigger did not sync):\n").format(
            sql.SQL(str(int(olds.get("unsynced") or 0)))) if op == "update" and "sync_checksum" not in changed
            else sql.SQL(""))
        return [sql.SQL("{}-- batches of at most {} rows, each its own bounded transaction, until none is left\n"
                        "-- ($1: the last id of the batch before, $2: this batch's size):\n"
                        "SELECT public.backfill_habit_tracker($1, $2)").format(
            why, sql.SQL(str(int(self.props["batch_size"]))))]

    def apply_create(self, session: Session) -> dict[str, Any]:
        from dualwrite import backfill

        result = backfill.run(
            session.conninfo,
            batch_size=int(self.props["batch_size"]),
            lock_timeout=session.lock_timeout,
            statement_timeout=session.statement_timeout,
            show_progress=False,
        )
        # What is still out of sync after the run (0 unless the app raced it), so a later
        # preview shows it too.
        return {"rows": result.rows, "unsynced": result.left}

    def apply_update(self, session: Session, olds: Props) -> dict[str, Any]:
        if olds.get("sync_checksum") != self.props.get("sync_checksum"):
            return self.apply_create(session)  # new sync logic: project every row again
        if int(olds.get("unsynced") or 0):
            return self.apply_create(session)  # rows written while the trigger did not sync: catch up
        return {"rows": olds.get("rows")}  # a new batch size alone is no reason to

    def apply_read(self, session: Session) -> dict[str, Any] | None:
        """No catalog object to compare; what it reads back is how many rows a backfill would change."""
        from dualwrite.drift import can_split, drift_split

        def work(conn) -> dict[str, Any] | None:
            # Without the functions that count it (rollback option 3 out of band), read as gone: the
            # next `up` creates it again after them, which backfills everything written meanwhile.
            return {"unsynced": drift_split(conn).backfill_work} if can_split(conn) else None

        return replace(session, statement_timeout=READ_STATEMENT_TIMEOUT).change(work)
