"""The backfill paces itself by its own WAL and the server's checkpoints (dualwrite/backfill_pacing.py).

Checkpoints are real: another session (the cluster's admin, as a dashboard superuser would)
runs CHECKPOINT at a known point between two batches. The app's WAL is real too: another
session writes it while a batch runs or between batches. No timing is asserted: only which
pauses the backfill decided on, what WAL it counted, and what it says about them.
"""

from __future__ import annotations

import io
import re
import threading
import time

import psycopg
import pytest
from rich.console import Console

from dualwrite import backfill, backfill_pacing, migration
from dualwrite.backfill_pacing import Budget, WalPacer
from dualwrite.drift import drift_report
from sheets import generate_sheets

pytestmark = pytest.mark.db

NO_BUDGET = Budget(wal_per_checkpoint=1e15, spacing=1.0)  # a WAL rate no test reaches: only checkpoints pause


def checkpoint(admin: psycopg.Connection) -> None:
    """CHECKPOINT, then wait until the stats count it: the checkpointer reports its counters just
    after it wakes the session that asked, so a read right away can still see the old count."""
    query = "SELECT checkpoints_req FROM pg_stat_bgwriter"
    before = admin.execute(query).fetchone()[0]
    admin.execute("CHECKPOINT")
    for _ in range(500):
        if admin.execute(query).fetchone()[0] > before:
            return
        time.sleep(0.01)
    raise AssertionError("the CHECKPOINT never showed in pg_stat_bgwriter.checkpoints_req")


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    migration.apply(conn, 0)
    return conn


def test_a_requested_checkpoint_makes_the_backfill_yield_once(db, admin_conn):
    pacer = WalPacer.start(db, budget=NO_BUDGET)
    assert pacer.after_batch(db, 0).seconds == 0
    checkpoint(admin_conn)  # requested, as one that max_wal_size sets off is
    pause = pacer.after_batch(db, 0)
    assert (pause.seconds, pause.reason) == (backfill_pacing.CHECKPOINT_PAUSE, "for a checkpoint")
    assert pacer.line().endswith(f"paused {backfill_pacing.CHECKPOINT_PAUSE:.1f} s for a checkpoint"), pacer.line()
    assert pacer.after_batch(db, 0).seconds == 0  # once per checkpoint, not for every batch after it
    assert pacer.checkpoints_req == 1


def test_its_own_wal_above_the_budget_makes_the_backfill_wait(db):
    pacer = WalPacer.start(db, budget=Budget(wal_per_checkpoint=1024, spacing=1.0))  # 1 kB/s
    pause = pacer.after_batch(db, 16 * backfill_pacing.MB)  # a batch that wrote 16 MB itself
    assert (pause.seconds, pause.reason) == (backfill_pacing.MAX_PAUSE, "for the WAL budget")
    assert "budget 0 MB/s, paused 2.0 s for the WAL budget" in pacer.line(), pacer.line()
    assert pacer.summary().startswith("WAL 16 MB (server "), pacer.summary()


def test_the_first_checkpoints_distance_of_wal_is_not_paced(db):
    """The budget's total starts one checkpoint's distance in hand: the WAL that requests the
    first checkpoint goes at full speed, and what comes after it is paced."""
    now = [100.0]
    pacer = WalPacer.start(db, clock=lambda: now[0],
                           budget=Budget(wal_per_checkpoint=10 * backfill_pacing.MB, spacing=10.0))  # 1 MB/s
    now[0] += 1.0
    first = pacer.after_batch(db, 8 * backfill_pacing.MB)  # 8 MB/s over the window, within the first 10 MB
    assert (first.seconds, first.reason) == (0.0, ""), first
    now[0] += 1.0
    second = pacer.after_batch(db, 5 * backfill_pacing.MB)  # 13 MB in 2 s: the total's 12 MB, and 1 s ahead
    assert (second.seconds, second.reason) == (pytest.approx(1.0), "for the WAL budget"), second
    now[0] += 10.0
    assert pacer.after_batch(db, 0).seconds == 0.0  # back within the budget's total


def test_the_apps_wal_does_not_make_the_backfill_wait(db, admin_conn):
    """The budget counts the backfill's own WAL: on a busy server, waiting for the app's WAL
    only starved the backfill (bench/results/pacing-notes.md: 319 s of pauses at 1M)."""
    pacer = WalPacer.start(db, budget=Budget(wal_per_checkpoint=1024, spacing=1.0))  # 1 kB/s
    admin_conn.execute("SELECT pg_switch_wal()")  # the rest of the WAL segment counts as the server's
    generate_sheets(admin_conn, 50)  # the app's writes
    pause = pacer.after_batch(db, 0)  # the batch itself wrote nothing
    assert (pause.seconds, pause.reason) == (0.0, "")
    assert pacer.wal == 0 and pacer.server_wal >= 1024 * 1024, (pacer.wal, pacer.server_wal)
    assert re.match(r"WAL 0 MB/s \(server [1-9][\d,]* MB/s\), budget 0 MB/s$", pacer.line()), pacer.line()


def test_a_batch_counts_its_own_wal_not_what_others_write_meanwhile(db, admin_conn):
    """A batch's WAL is what its statement wrote (EXPLAIN's WAL Bytes), not how far the server's
    LSN moved: another session writes about 20 MB of WAL while the batch waits for one of its rows."""
    generate_sheets(db, 200)
    migration.set_phase(db, 1)
    with db.transaction():
        alone = backfill.one_batch(db, 0, 100)
    assert alone.last is not None and alone.covered == 100 and alone.wal > 0, alone

    next_id = db.execute("SELECT min(id) FROM habit_tracker WHERE id > %s", (alone.last,)).fetchone()[0]
    lsn = "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    batch: list[backfill.Batch] = []

    def run_batch() -> None:
        with db.transaction():
            batch.append(backfill.one_batch(db, alone.last, 100))

    with psycopg.connect(db.info.dsn, autocommit=True) as app:  # holds a row of the next batch
        app.execute("BEGIN")
        app.execute("SELECT FROM habit_tracker WHERE id = %s FOR UPDATE", (next_id,))
        before = int(admin_conn.execute(lsn).fetchone()[0])
        worker = threading.Thread(target=run_batch)
        worker.start()
        for _ in range(1000):
            if admin_conn.execute(waiting).fetchone()[0]:
                break
            time.sleep(0.01)
        else:
            raise AssertionError("the batch never waited for the row the app session locked")
        app.execute("CREATE TABLE app_noise AS SELECT g, repeat('x', 1000) AS pad FROM generate_series(1, 20000) AS g")
        app.execute("COMMIT")
        worker.join(timeout=60)
    after = int(admin_conn.execute(lsn).fetchone()[0])
    assert batch and batch[0].covered == 100, batch
    assert after - before > 10 * alone.wal, (after - before, alone.wal)  # the server's WAL over the batch: the app's
    assert 0 < batch[0].wal < 4 * alone.wal, (batch[0].wal, alone.wal)  # the batch's own: about the first batch's


def test_the_budget_keeps_checkpoints_as_far_apart_as_checkpoint_warning(db):
    budget = Budget.read(db)
    max_wal, target, warning = db.execute(
        "SELECT pg_size_bytes(current_setting('max_wal_size'))::float8, current_setting('checkpoint_completion_target')::float8,"
        " extract(epoch FROM current_setting('checkpoint_warning')::interval)::float8").fetchone()
    assert budget.bytes_per_second == pytest.approx(max_wal / (1 + target) / (warning or backfill_pacing.DEFAULT_SPACING))
    # PostgreSQL's defaults (1GB, 0.9, 30s): 539 MB of WAL per checkpoint, 18 MB/s.
    assert Budget(1024 * backfill_pacing.MB / 1.9, 30.0).bytes_per_second / backfill_pacing.MB == pytest.approx(17.96, 0.01)


def test_the_backfill_pauses_after_the_batch_that_saw_a_checkpoint(db, db_url, admin_conn):
    generate_sheets(db, 600)
    migration.set_phase(db, 1)
    slept: list[float] = []

    def between_batches(seconds: float) -> None:
        if not slept:
            checkpoint(admin_conn)  # between batch 1 and batch 2
        slept.append(seconds)

    between = 0.001  # --pause: every batch ends in a sleep, so the test sees each decision
    result = backfill.run(db_url, batch_size=100, max_batch_seconds=None, show_progress=False,
                          pause_seconds=between, sleep=between_batches)
    assert result.batches == 7 and result.rows == 600
    assert [round(s - between, 3) >= backfill_pacing.CHECKPOINT_PAUSE for s in slept] == \
        [False, True, False, False, False, False]
    assert "checkpoints 1 requested" in result.pacing, result.pacing
    assert drift_report(db).drift_pct == 0


def test_pacing_can_be_turned_off(db, db_url, admin_conn):
    generate_sheets(db, 300)
    migration.set_phase(db, 1)
    slept: list[float] = []

    def between_batches(seconds: float) -> None:
        checkpoint(admin_conn)
        slept.append(seconds)

    result = backfill.run(db_url, batch_size=100, max_batch_seconds=None, show_progress=False, pause_seconds=0.001,
                          sleep=between_batches, pace_by_wal=False)
    assert slept == [0.001, 0.001, 0.001] and result.pacing == ""


def test_the_progress_line_shows_the_pacing(db, db_url):
    generate_sheets(db, 50)
    migration.set_phase(db, 1)
    screen = io.StringIO()
    result = backfill.run(db_url, batch_size=10, show_progress=True,
                          console=Console(file=screen, force_terminal=True, width=200))
    assert result.rows == 50
    assert re.search(r"WAL \d+ MB/s \(server \d+ MB/s\), budget \d+ MB/s", screen.getvalue()), \
        screen.getvalue()[-600:]
