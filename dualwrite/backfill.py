"""Backfill: project every existing habit_tracker row into the new schema, batch by batch.

    result = run(conninfo, batch_size=5000, lock_timeout="3s", statement_timeout="30s")

Each batch is one call of `public.backfill_habit_tracker(after_id, batch_size)` in its own
short transaction with local lock/statement timeouts; a batch that cannot get its locks in
time is retried with backoff (batches are idempotent). A batch holds FOR SHARE locks on its
rows until it commits, so an app write to one of them waits for the batch: batches are
sized to last about `max_batch_seconds` (adapted from the last batch's duration, never
above `batch_size`), which bounds that wait whatever batch size the stack configures. Resumable: the run starts just before
the smallest id that `dual_write_diff()` reports (missing, mismatched or orphaned), so after
a kill the rows already projected are skipped; the state is the projection itself, in the
database. Safe while the app writes (see the SQL function).

Paced by its WAL as well (dualwrite/backfill_pacing.py): each batch reports the WAL it wrote
itself, and after it the server's checkpoints are read; the backfill waits when its own WAL
runs above the budget that max_wal_size allows, or once when a checkpoint was requested.
Progress shows rows/s and that pacing ("WAL 12 MB/s (server 20 MB/s), budget 18 MB/s, paused
0.5 s for a checkpoint"); the result sums it up.

Malformed rows (habit_tracker_row_error) cannot be projected until their data is fixed: a
batch records each in dual_write_errors, and a later run starts past those already recorded
there, so one bad row never makes every run re-process the rows after it. The result says
how many rows were projected, how many are malformed (and listed), and how many are left.

Also a command: `python -m dualwrite.backfill postgresql://... [--batch-size N] [--pause S]`.
"""

from __future__ import annotations

import argparse
import functools
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, NamedTuple

import psycopg
from psycopg.conninfo import conninfo_to_dict
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.console import Console
from rich.text import Text

from dualwrite import db
from dualwrite.backfill_pacing import WalPacer
from dualwrite.drift import drift_split, first_to_backfill

DEFAULT_BATCH_SIZE = 5000
# How long an app write may have to wait for a batch's row locks. Measured (bench, 100k rows,
# 2 cores): 0.05 s gives 0.68x the INSERT ... SELECT floor with a concurrent writer's p99 at
# 16.5 ms; 0.1 s gives 0.72x but p99 61 ms, 0.25 s 0.75x (the target is p99 < 50 ms).
MAX_BATCH_SECONDS = 0.05
FIRST_BATCH = 200
MIN_BATCH = 10
RETRIES = 5
RETRYABLE = (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


@dataclass(frozen=True)
class BackfillResult:
    rows: int  # habit_tracker rows covered by this run
    batches: int
    started_after: int | None  # None: nothing to do, the projection already matched
    last_id: int | None
    seconds: float  # the batches' time (what the rows/s is of), without the closing count
    malformed_covered: int = 0  # of `rows`, those that are malformed (recorded, not projected)
    malformed: int = 0  # malformed rows in the whole table after the run
    listed: int = 0  # of those, the ones whose problem is in dual_write_errors
    left: int = 0  # rows still out of sync after the run that a backfill could fix (0 unless the app raced it)
    pacing: str = ""  # the WAL pacing over the run (WalPacer.summary()), "" when it was off

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def projected(self) -> int:
        return self.rows - self.malformed_covered

    def summary(self) -> str:
        return (f"projected {self.projected} rows, malformed {self.malformed} (listed in dual_write_errors: "
                f"{self.listed}; `invoke errors` shows them), left {self.left}")


class RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "- rows/s", style="progress.data.speed")


def _connect(conninfo: dict[str, Any] | str) -> psycopg.Connection:
    info = conninfo_to_dict(conninfo) if isinstance(conninfo, str) else conninfo
    return db.connect(info, autocommit=True)


def resume_point(conn: psycopg.Connection) -> int | None:
    """The id to start after: just before the first row or week that is not in sync, past the
    malformed rows already recorded in dual_write_errors; None if nothing is left to do."""
    first = first_to_backfill(conn)
    return None if first is None else first - 1


def rows_after(conn: psycopg.Connection, after_id: int) -> int:
    return int(conn.execute("SELECT count(*) FROM public.habit_tracker WHERE id > %s", (after_id,)).fetchone()[0])


# One batch as one statement: the batch and the count of the rows it covered. Run under EXPLAIN
# ANALYZE for its "WAL Bytes": the WAL this backend wrote while the statement ran, the
# function's own statements included and no other session's, which is what the pacing budget
# counts (dualwrite/backfill_pacing.py). The server's LSN moved by everyone's WAL meanwhile.
# EXPLAIN returns the plan instead of rows, so the statement leaves its result in a
# transaction-local setting, read by the next one; both go in one round trip (a pipeline).
BATCH = """
EXPLAIN (ANALYZE, WAL, TIMING OFF, COSTS OFF, SUMMARY OFF, FORMAT JSON)
SELECT pg_catalog.set_config('dualwrite.backfill_batch', pg_catalog.json_build_array(
           b.last, (SELECT count(*) FROM public.habit_tracker AS h WHERE h.id > %(after)s AND h.id <= b.last))::text,
       true)
FROM (SELECT public.backfill_habit_tracker(%(after)s, %(size)s) AS last) AS b
"""
BATCH_RESULT = "SELECT pg_catalog.current_setting('dualwrite.backfill_batch')::json"


class Batch(NamedTuple):
    last: int | None  # the last id covered; None: no row was left after the batch's start
    covered: int  # habit_tracker rows the batch covered
    wal: int  # bytes of WAL the batch itself wrote


def one_batch(conn: psycopg.Connection, after_id: int, batch_size: int) -> Batch:
    """Project one batch (inside the caller's transaction): its last id, rows covered and own WAL."""
    with conn.pipeline():
        explained = conn.execute(BATCH, {"after": after_id, "size": batch_size})
        result = conn.execute(BATCH_RESULT)
    wal = int(explained.fetchone()[0][0]["Plan"]["WAL Bytes"])
    last, covered = result.fetchone()[0]
    return Batch(None if last is None else int(last), int(covered), wal)


def next_batch_size(size: int, seconds: float, target: float, largest: int) -> int:
    """Scale the batch toward `target` seconds; at most double per step, within [MIN_BATCH, largest]."""
    scaled = int(size * target / max(seconds, 1e-4))
    return max(MIN_BATCH, min(largest, 2 * size, scaled))


def _progress(show: bool, console: Console | None) -> Progress:
    return Progress(
        TextColumn("backfill"), BarColumn(), MofNCompleteColumn(), RowsPerSecond(), TimeElapsedColumn(),
        TextColumn("{task.fields[pace]}"),
        disable=not show, console=console,
    )


def run(
    conninfo: dict[str, Any] | str,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lock_timeout: str = db.LOCK_TIMEOUT,
    statement_timeout: str = db.STATEMENT_TIMEOUT,
    show_progress: bool = True,
    console: Console | None = None,
    pause_seconds: float = 0.0,
    max_batches: int | None = None,
    max_batch_seconds: float | None = MAX_BATCH_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    pace_by_wal: bool = True,
) -> BackfillResult:
    """Backfill from the resume point to the end. `pause_seconds` leaves the app room between
    batches; `max_batches` stops early (a partial run, as a kill would leave it);
    `max_batch_seconds=None` turns the adaptive sizing off (every batch is `batch_size`);
    `pace_by_wal=False` turns the WAL pacing off; `console` is where the progress bar goes
    (default: the terminal)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    started = time.monotonic()
    with _connect(conninfo) as conn:
        start = resume_point(conn)
        if start is None:
            return _closing_count(conn, BackfillResult(0, 0, None, None, time.monotonic() - started))
        after, rows, batches = start, 0, 0
        pacer = WalPacer.start(conn) if pace_by_wal else None
        with _progress(show_progress, console) as progress:
            task = progress.add_task("backfill", total=rows_after(conn, start), pace="")
            size = batch_size if max_batch_seconds is None else min(batch_size, FIRST_BATCH)
            while max_batches is None or batches < max_batches:
                began = time.monotonic()
                # Each batch is its own short, bounded transaction, retried on lock trouble.
                last, covered, wal = db.run_bounded(
                    conn, functools.partial(one_batch, after_id=after, batch_size=size), lock_timeout=lock_timeout,
                    statement_timeout=statement_timeout, retries=RETRIES, sleep=sleep, retry_on=RETRYABLE,
                )
                batches += 1
                if last is None:
                    break
                after, rows = last, rows + covered
                if max_batch_seconds is not None:
                    size = next_batch_size(size, time.monotonic() - began, max_batch_seconds, batch_size)
                wait = 0.0
                if pacer is not None:
                    pause = pacer.after_batch(conn, wal)
                    wait = pause.seconds
                    pacer.paused_for(pause)
                progress.update(task, advance=covered, pace="" if pacer is None else pacer.line())
                if wait or pause_seconds:
                    sleep(wait + pause_seconds)
        result = BackfillResult(rows, batches, start, after, time.monotonic() - started,
                                pacing="" if pacer is None else pacer.summary())
        return _closing_count(conn, result)


def _closing_count(conn: psycopg.Connection, result: BackfillResult) -> BackfillResult:
    """The run's result with what is malformed and what is left, read once after the last batch."""
    covered = (result.started_after, result.last_id) if result.started_after is not None else None
    # In one process: this count reads both schemas whole (1M rows: about 15 s with PostgreSQL's
    # 2 parallel workers, 33 s without), and on a server with few cores the workers took the
    # cores the app's writes needed (bench, 1M rows, 2 cores: the writer's p99 over those last
    # 20 s 81-200 ms, against 27-54 ms over the batches before; bench/NOTES.md, 2026-12-02
    # night). It is for the operator's summary, after the batches: not in the run's seconds.
    with conn.transaction():
        conn.execute("SELECT pg_catalog.set_config('max_parallel_workers_per_gather', '0', true)")
        split = drift_split(conn, covered)
    return replace(result, malformed_covered=split.malformed_in, malformed=split.malformed, listed=split.listed,
                   left=split.unsynced)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Backfill habit_tracker into the new schema.")
    parser.add_argument("url", help="libpq connection URI")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between batches")
    parser.add_argument("--lock-timeout", default=db.LOCK_TIMEOUT)
    parser.add_argument("--statement-timeout", default=db.STATEMENT_TIMEOUT)
    args = parser.parse_args(argv)
    result = run(args.url, batch_size=args.batch_size, pause_seconds=args.pause, lock_timeout=args.lock_timeout,
                 statement_timeout=args.statement_timeout)
    print(f"backfill: {result.summary()}; {result.batches} batches ({result.rows_per_second:,.0f} rows/s)")
    if result.pacing:
        print(f"pacing: {result.pacing}")


if __name__ == "__main__":
    main()
