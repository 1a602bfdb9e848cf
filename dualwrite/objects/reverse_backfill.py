"""The reverse catch-up as an object: where the reverse sync runs (Phases 2 and 3), `pulumi up` also
brings habit_tracker up to the new schema (backfill_new_to_old(), sql/013/backfill_new_to_old.sql).

The mirror of the forward backfill (objects/backfill.py). Its read (every refresh, so every
`invoke up`) counts how far habit_tracker is from the new schema (dual_write_reverse_drift():
missing, mismatched and orphaned sheets); the program declares 0, so a difference makes `up`
run the catch-up, after every object of the phase is in place (the resource depends on them).
That is the step back from retirement: the weeks the new app wrote while habit_tracker was
archived get their sheets back. Batch by batch, each batch its own bounded transaction, until
the function says no week is left; never dropped (its rows are the app's).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql

from dualwrite.db import Session
from dualwrite.objects.backfill import READ_STATEMENT_TIMEOUT
from dualwrite.objects.base import ObjectKind, Props

BATCH = "SELECT public.backfill_new_to_old(%s, %s)"


class ReverseBackfill(ObjectKind):
    kind = "reverse_backfill"
    compared = ("sync_checksum", "batch_size", "unsynced")
    replace_on = ()
    drop_allowed = False

    @property
    def name(self) -> str:
        return "reverse_backfill"

    def object_id(self) -> str:
        return "reverse_backfill"

    def describe(self) -> str:
        return "reverse catch-up of the new schema into habit_tracker"

    @classmethod
    def diff(cls, olds: Props, news: Props) -> tuple[list[str], list[str]]:
        """`unsynced` counts as a change only when a read (or run) saw sheets out of sync."""
        changed, replaces = super().diff(olds, news)
        if "unsynced" in changed and not int(olds.get("unsynced") or 0) and not int(news.get("unsynced") or 0):
            changed.remove("unsynced")
        return changed, replaces

    def adoption(self, conn: psycopg.Connection) -> None:
        return None  # nothing in the database to take over

    def planned_sql(self, op: str, olds: Props, changed: list[str]) -> list[sql.Composable]:
        if op == "delete" or (op == "update" and not {"sync_checksum", "unsynced"} & set(changed)):
            return []
        return [sql.SQL("-- batches of at most {} weeks, each its own bounded transaction, until none is left\n"
                        "-- ($1: the last week id of the batch before, NULL at first; $2: this batch's size):\n"
                        "SELECT public.backfill_new_to_old($1, $2)").format(sql.SQL(str(int(self.props["batch_size"]))))]

    def apply_create(self, session: Session) -> dict[str, Any]:
        after: Any = None
        batches = 0
        while True:
            def batch(conn: psycopg.Connection, after: Any = after) -> Any:
                return conn.execute(BATCH, (after, int(self.props["batch_size"]))).fetchone()[0]  # type: ignore[index]

            after = session.change(batch)
            batches += 1
            if after is None:
                break
        return {"batches": batches, "unsynced": self._unsynced(session)}

    def apply_update(self, session: Session, olds: Props) -> dict[str, Any]:
        if olds.get("sync_checksum") != self.props.get("sync_checksum") or int(olds.get("unsynced") or 0):
            return self.apply_create(session)
        return {"batches": olds.get("batches")}

    def _unsynced(self, session: Session) -> int | None:
        def work(conn: psycopg.Connection) -> int | None:
            if conn.execute("SELECT to_regprocedure('public.dual_write_reverse_drift()')").fetchone()[0] is None:  # type: ignore[index]
                return None
            row = conn.execute("SELECT missing + mismatched + orphaned FROM public.dual_write_reverse_drift()").fetchone()
            return int(row[0]) if row else 0

        return replace(session, statement_timeout=READ_STATEMENT_TIMEOUT).change(work)

    def apply_read(self, session: Session) -> dict[str, Any] | None:
        """How many sheets a catch-up would change; gone (None) without the function that counts them."""
        unsynced = self._unsynced(session)
        return None if unsynced is None else {"unsynced": unsynced}
