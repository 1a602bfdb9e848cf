"""The backfill's pace by the WAL its own batches write and the server's checkpoints, not only batch time.

    pacer = WalPacer.start(conn)                  # reads the server's settings and counters once
    pause = pacer.after_batch(conn, batch_wal)    # after each batch (its own WAL, bytes): how long to wait, and why
    pacer.line()    # "WAL 12 MB/s (server 20 MB/s), budget 18 MB/s, paused 0.5 s for a checkpoint"

Why: an app write commits only when its WAL is on disk, so it waits behind whatever WAL the
backfill just wrote, and behind the checkpoint that WAL sets off. `max_wal_size` is the
platform's setting (Supabase sets it per compute size; the deploy role cannot change it), so
the backfill reads what it can and keeps within it:

- **The WAL budget, for the backfill's own WAL.** PostgreSQL starts a checkpoint once about
  max_wal_size / (1 + checkpoint_completion_target) of WAL was written since the last one, and
  logs "checkpoints are occurring too frequently" when they come closer than
  `checkpoint_warning` (30 s by default). The budget is the rate that keeps them at least that
  far apart: 539 MB / 30 s = 18 MB/s at PostgreSQL's defaults (1 GB). Above it, the backfill
  waits until its average over the last WINDOW_SECONDS is back at the budget, but only once
  its WAL since the start is more than one checkpoint's distance ahead of the budget's total
  (max_wal_size / (1 + checkpoint_completion_target) + budget x seconds since the start). That
  first distance requests one checkpoint at most, however fast it is written, so pacing it
  spaced no checkpoint: a 100k-row backfill (856 MB of WAL, one checkpoint either way) took
  48 s on the budget and 31 s with its first distance unpaced (bench/NOTES.md, 2026-12-03).
  It counts only what its own batches wrote (each batch's WAL as the server measured it for
  that statement: dualwrite/backfill.py), never the server's total: the app's WAL is not the
  backfill's to make up for, and counting it starved the backfill on a busy server (1M rows
  under the bench's writer: 319 s of budget pauses in a 1,990 s run, while most of the
  server's WAL was the app's; bench/results/pacing-notes.md). Waiting cannot lower the app's rate; it only
  keeps the backfill's rows locked and its run open longer. Nor does it spare the app: taking
  the app's WAL off the budget (at least half left to the backfill) spaced checkpoints 29 s
  apart instead of 22 at 1M, but each checkpoint's end still wrote as much at once, and the
  writer's p99 was no better (33.4 against 31.9 ms, one run each) while the backfill took 60%
  longer (bench/NOTES.md, 2026-12-02 night).
- **A checkpoint requested meanwhile** (pg_stat_bgwriter.checkpoints_req moved: anyone's WAL
  volume, or someone's CHECKPOINT): the backfill waits CHECKPOINT_PAUSE once. Right after a
  checkpoint starts, the first change to every page writes the whole page to the WAL, so
  that is when the app's commits queue longest behind a batch's WAL. One pause per
  checkpoint bounds what a busy server can cost the backfill: at most CHECKPOINT_PAUSE per
  max_wal_size / (1 + checkpoint_completion_target) of the server's WAL.

The server's WAL (pg_current_wal_lsn()) is still read after each batch, to show next to the
backfill's own. Everything it reads is readable by the deploy role: pg_current_wal_lsn(),
pg_stat_bgwriter and pg_settings.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import psycopg

WINDOW_SECONDS = 10.0  # the WAL rate is averaged over the batches of about this long (bursts within it are fine:
# a checkpoint comes after a volume of WAL, not a rate)
CHECKPOINT_PAUSE = 0.5  # seconds the backfill yields when a checkpoint was requested
MAX_PAUSE = 2.0  # never wait longer than this after one batch
DEFAULT_SPACING = 30.0  # seconds between checkpoints when checkpoint_warning is 0 (off)
MB = 1024 * 1024

SETTINGS = """
SELECT max(setting::float8 * CASE unit WHEN 'MB' THEN 1024 * 1024 WHEN 'kB' THEN 1024 ELSE 1 END)
           FILTER (WHERE name = 'max_wal_size') AS max_wal_bytes,
       max(setting::float8) FILTER (WHERE name = 'checkpoint_completion_target') AS completion_target,
       max(setting::float8) FILTER (WHERE name = 'checkpoint_warning') AS warning_seconds
FROM pg_catalog.pg_settings
WHERE name IN ('max_wal_size', 'checkpoint_completion_target', 'checkpoint_warning')
"""
# Each read is its own transaction (autocommit), so the cumulative stats are current.
COUNTERS = """
SELECT pg_catalog.pg_current_wal_lsn() - '0/0'::pg_catalog.pg_lsn, b.checkpoints_req, b.checkpoints_timed
FROM pg_catalog.pg_stat_bgwriter AS b
"""


@dataclass(frozen=True)
class Budget:
    wal_per_checkpoint: float  # bytes of WAL after which PostgreSQL starts a checkpoint
    spacing: float  # seconds the backfill keeps between checkpoints it causes

    @property
    def bytes_per_second(self) -> float:
        return self.wal_per_checkpoint / self.spacing

    @staticmethod
    def read(conn: psycopg.Connection) -> "Budget":
        row = conn.execute(SETTINGS).fetchone()
        assert row is not None  # an aggregate without GROUP BY returns one row
        max_wal, target, warning = row
        return Budget(float(max_wal) / (1 + float(target)), float(warning) or DEFAULT_SPACING)


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic seconds
    server_wal: int  # bytes: pg_current_wal_lsn() (everyone's WAL)
    checkpoints_req: int
    checkpoints_timed: int

    @staticmethod
    def read(conn: psycopg.Connection, clock: Callable[[], float] = time.monotonic) -> "Sample":
        row = conn.execute(COUNTERS).fetchone()
        assert row is not None
        return Sample(clock(), int(row[0]), int(row[1]), int(row[2]))


@dataclass(frozen=True)
class Pause:
    seconds: float
    reason: str  # "" (no pause), "for a checkpoint", "for the WAL budget"


@dataclass(frozen=True)
class Point:
    """Where the run stood after a batch: when, the backfill's own WAL so far, the server's LSN."""
    at: float
    wal: int  # bytes the backfill's batches wrote since the start
    server_wal: int  # pg_current_wal_lsn() in bytes


@dataclass
class WalPacer:
    budget: Budget
    last: Sample
    clock: Callable[[], float] = time.monotonic
    window: deque[Point] = field(default_factory=deque)
    rate: float = 0.0  # the backfill's own WAL, bytes/s over the window, as last measured
    server_rate: float = 0.0  # the server's WAL, bytes/s over the same window
    last_pause: Pause = Pause(0.0, "")
    paused: float = 0.0  # seconds paused in all
    checkpoints_req: int = 0  # requested checkpoints seen since the start
    checkpoints_timed: int = 0
    wal: int = 0  # bytes the backfill's batches wrote since the start (what the budget counts)
    started_at: float = 0.0  # monotonic seconds at the start (the budget's total counts from it)
    server_wal: int = 0  # bytes the whole server wrote since the start (shown, not counted)

    @staticmethod
    def start(conn: psycopg.Connection, clock: Callable[[], float] = time.monotonic,
              budget: Budget | None = None) -> "WalPacer":
        first = Sample.read(conn, clock)
        return WalPacer(budget or Budget.read(conn), first, clock, deque([Point(first.at, 0, first.server_wal)]),
                        started_at=first.at)

    def after_batch(self, conn: psycopg.Connection, batch_wal: int) -> Pause:
        """After a batch that wrote `batch_wal` bytes of WAL itself: read the server's counters;
        how long to wait before the next batch, and why."""
        now = Sample.read(conn, self.clock)
        requested = now.checkpoints_req - self.last.checkpoints_req
        self.checkpoints_req += requested
        self.checkpoints_timed += now.checkpoints_timed - self.last.checkpoints_timed
        self.server_wal += now.server_wal - self.last.server_wal
        self.last = now
        self.wal += batch_wal
        point = Point(now.at, self.wal, now.server_wal)
        self.window.append(point)
        while len(self.window) > 2 and now.at - self.window[1].at >= WINDOW_SECONDS:
            self.window.popleft()
        oldest = self.window[0]
        elapsed = max(now.at - oldest.at, 1e-3)
        written = point.wal - oldest.wal
        self.rate = written / elapsed
        self.server_rate = (point.server_wal - oldest.server_wal) / elapsed
        over_budget = written / self.budget.bytes_per_second - elapsed  # seconds ahead of the budget
        # ... and of the budget's total, which starts one checkpoint's distance of WAL in hand.
        ahead_of_total = ((self.wal - self.budget.wal_per_checkpoint) / self.budget.bytes_per_second
                          - (now.at - self.started_at))
        over_budget = min(over_budget, ahead_of_total)
        if requested > 0:
            pause = Pause(min(MAX_PAUSE, max(CHECKPOINT_PAUSE, over_budget)), "for a checkpoint")
        elif over_budget > 0:
            pause = Pause(min(MAX_PAUSE, over_budget), "for the WAL budget")
        else:
            pause = Pause(0.0, "")
        self.last_pause = pause
        return pause

    def paused_for(self, pause: Pause) -> None:
        """Count a pause that was taken."""
        self.paused += pause.seconds

    def line(self) -> str:
        """The pace as a progress line shows it: the backfill's own WAL rate (what the budget
        counts), the server's beside it."""
        text = (f"WAL {self.rate / MB:,.0f} MB/s (server {self.server_rate / MB:,.0f} MB/s), "
                f"budget {self.budget.bytes_per_second / MB:,.0f} MB/s")
        if self.last_pause.seconds:
            text += f", paused {self.last_pause.seconds:.1f} s {self.last_pause.reason}"
        return text

    def summary(self) -> str:
        """The whole run's pace, for the closing line."""
        return (f"WAL {self.wal / MB:,.0f} MB (server {self.server_wal / MB:,.0f} MB) at budget "
                f"{self.budget.bytes_per_second / MB:,.0f} MB/s; "
                f"checkpoints {self.checkpoints_req} requested, {self.checkpoints_timed} timed; "
                f"paused {self.paused:.1f} s")
