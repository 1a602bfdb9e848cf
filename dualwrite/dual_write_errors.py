"""`invoke errors`: the rows in dual_write_errors, which of them are still open, and resolving one.

    listed = open_errors(conn, include_handled=False)   # ErrorRow per dual_write_errors row
    result = resolve(session, stack, error_id)          # re-sync that row after its data was fixed

A row is recorded there when the trigger or the backfill could not project its habit_tracker
row (malformed data, an unexpected failure). Its state is read, never stored, so no record is
ever changed or deleted (the table is the history an operator reads):

    open: malformed        the habit_tracker row is still malformed (the problem as it is now):
                           fix its data (the app, or an UPDATE), then resolve it
    open: not synced       the data is fixed but the new schema does not show it yet: resolve it
    handled                the row is in sync (fixed and re-synced, by `--resolve`, the trigger or
                           a backfill), or it is gone and so is its week

Resolving re-syncs that one row (`backfill_habit_tracker(id - 1, 1)`) in one bounded
transaction, refused with the reason, before anything changes, while the row is still malformed.
A reverse-sync error of Phase 2 (its text begins "new -> old: ") is resolved the other way: the
sheet is rebuilt from its week (habit_tracker_from_week), refused while the week is malformed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from dualwrite.db import Session

# How a reverse-sync error (Phase 2: new tables -> habit_tracker) begins its text (sql/013/sync_new_to_old.sql).
REVERSE = "new -> old: "
# How many rows a listing shows (newest first): the table can grow with a bad client.
LIST_LIMIT = 200

# The status of each record. The diff is read once (an uncorrelated IN is hashed), and the
# malformed-row test runs only for the listed rows.
LISTING = """
WITH unsynced AS (SELECT d.legacy_id FROM public.dual_write_diff() AS d)
SELECT e.id, e.tracker_id, e.operation, e.error, e.occurred_at, h.id IS NOT NULL AS row_exists,
       CASE WHEN h.id IS NOT NULL THEN public.habit_tracker_row_error(h.habits, h.week_start_date) END AS problem,
       e.tracker_id IN (SELECT u.legacy_id FROM unsynced AS u) AS out_of_sync
FROM public.dual_write_errors AS e
LEFT JOIN public.habit_tracker AS h ON h.id = e.tracker_id
ORDER BY e.id DESC
"""


class ResolveRefused(ValueError):
    """A resolve that cannot be done (no such record, the row still malformed); nothing was changed."""


@dataclass(frozen=True)
class ErrorRow:
    id: int
    tracker_id: int
    operation: str
    error: str
    occurred_at: datetime
    row_exists: bool
    problem: str | None  # the row's problem as it is now; None when it is projectable (or gone)
    out_of_sync: bool

    @property
    def status(self) -> str:
        if self.problem is not None:
            return "open: malformed"
        return "open: not synced" if self.out_of_sync else "handled"

    @property
    def handled(self) -> bool:
        return self.status == "handled"

    def next_step(self, stack: str) -> str:
        if self.problem is not None:
            return (f"fix habit_tracker id {self.tracker_id} ({self.problem}), then "
                    f"`invoke errors --stack {stack} --resolve {self.id}`")
        if self.out_of_sync:
            return f"`invoke errors --stack {stack} --resolve {self.id}`"
        return "row in sync" if self.row_exists else "row deleted, its week too"


def all_errors(conn: psycopg.Connection) -> list[ErrorRow]:
    return [ErrorRow(*row) for row in conn.execute(LISTING).fetchall()]


def open_errors(conn: psycopg.Connection, *, include_handled: bool = False,
                limit: int = LIST_LIMIT) -> tuple[list[ErrorRow], int, int]:
    """(the rows to show, newest first, at most `limit`; how many are open; how many are handled)."""
    rows = all_errors(conn)
    opened = [row for row in rows if not row.handled]
    shown = rows if include_handled else opened
    return shown[:limit], len(opened), len(rows) - len(opened)


@dataclass(frozen=True)
class Resolved:
    error_id: int
    tracker_id: int
    row_exists: bool


def _resolve_reverse(conn: psycopg.Connection, stack: str, error_id: int, tracker_id: int) -> Resolved:
    """A Phase 2 reverse-sync error: the new schema is the newer copy, so the sheet is rebuilt from its
    week (never projected forward, which would overwrite the new app's write with the old sheet)."""
    week = conn.execute("SELECT id FROM public.weeks WHERE legacy_id = %s", (tracker_id,)).fetchone() \
        if tracker_id else None
    if week is None:
        raise ResolveRefused(
            f"Stack '{stack}': dual_write_errors id {error_id} is a reverse-sync error (new -> old) for a week with "
            f"no habit_tracker row (the week is named in its error text). Fix that week in the new tables; its "
            f"next write copies it, or run the reverse backfill (backfill_new_to_old). Nothing was changed.")
    done = conn.execute("SELECT public.habit_tracker_from_week(%s)", (week[0],)).fetchone()[0]
    if done in ("malformed", "failed"):
        problem = conn.execute("SELECT error FROM public.dual_write_errors ORDER BY id DESC LIMIT 1").fetchone()[0]
        raise ResolveRefused(
            f"Stack '{stack}': week {week[0]} (habit_tracker id {tracker_id}, dual_write_errors id {error_id}) still "
            f"cannot be copied to habit_tracker: {problem}. Fix the week in the new tables first, then run "
            f"`invoke errors --stack {stack} --resolve {error_id}` again. Nothing was changed.")
    return Resolved(error_id, tracker_id, True)


def resolve(session: Session, stack: str, error_id: int) -> Resolved:
    """Re-sync the habit_tracker row of dual_write_errors `error_id`, in one bounded transaction."""

    def work(conn: psycopg.Connection) -> Resolved:
        found = conn.execute("SELECT tracker_id, error FROM public.dual_write_errors WHERE id = %s",
                             (error_id,)).fetchone()
        if found is None:
            raise ResolveRefused(
                f"Stack '{stack}': dual_write_errors has no row with id {error_id}; `invoke errors --stack {stack}` "
                "lists the open ones (the first column is the id to pass). Nothing was changed.")
        tracker_id = int(found[0])
        if str(found[1]).startswith(REVERSE):
            return _resolve_reverse(conn, stack, error_id, tracker_id)
        # FOR SHARE, as the backfill takes it: the row cannot change between the test and the sync.
        row = conn.execute(
            "SELECT public.habit_tracker_row_error(h.habits, h.week_start_date) FROM public.habit_tracker AS h "
            "WHERE h.id = %s FOR SHARE", (tracker_id,)).fetchone()
        if row is not None and row[0] is not None:
            raise ResolveRefused(
                f"Stack '{stack}': habit_tracker id {tracker_id} (dual_write_errors id {error_id}) is still "
                f"malformed: {row[0]}. Fix its data first (the app, or an UPDATE of public.habit_tracker), then "
                f"run `invoke errors --stack {stack} --resolve {error_id}` again. Nothing was changed.")
        conn.execute("SELECT public.backfill_habit_tracker(%s, 1)", (tracker_id - 1,))
        return Resolved(error_id, tracker_id, row is not None)

    return session.change(work)
