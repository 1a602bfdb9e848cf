"""Backfill: projects every row set-based, idempotent, resumable after a kill, safe to repeat."""

from __future__ import annotations

import io

import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from rich.console import Console
import pytest

from dualwrite import backfill, migration
from dualwrite.drift import drift_report
from sheets import assert_synced, count, habit, insert_sheet, generate_sheets, update_sheet

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    migration.apply(conn, 0)  # rows exist before Phase 1, as in a real rollout
    return conn


def test_backfill_projects_everything_and_is_idempotent(db, db_url):
    generate_sheets(db, 1_200)
    first = insert_sheet(db, child="special", habits=[habit("A", "green"), habit("B", "", "red")])
    migration.set_phase(db, 1)
    result = backfill.run(db_url, batch_size=250, show_progress=False, max_batch_seconds=None)
    assert result.rows == 1_201 and result.batches == 6 and result.started_after == 0
    assert_synced(db, first)
    report = drift_report(db)
    assert (report.synced, report.drift_pct) == (1_201, 0)
    snapshot = db.execute("SELECT count(*), sum(hashtext(r::text)) FROM public.habit_records r").fetchone()
    xmin = db.execute("SELECT max(xmin::text::bigint) FROM public.habit_records").fetchone()
    # Nothing left to do: the resume point says so, and a forced re-run of a batch writes nothing.
    assert backfill.run(db_url, show_progress=False).rows == 0
    db.execute("SELECT public.backfill_habit_tracker(0, 5000)")
    assert db.execute("SELECT count(*), sum(hashtext(r::text)) FROM public.habit_records r").fetchone() == snapshot
    assert db.execute("SELECT max(xmin::text::bigint) FROM public.habit_records").fetchone() == xmin


def test_backfill_repairs_mismatches_orphans_and_stale_slots(db, db_url):
    ids = [insert_sheet(db, child=f"c{i}", habits=[habit("A", "green"), habit("B", "red")]) for i in range(6)]
    migration.set_phase(db, 1)
    migration.set_phase(db, 0)  # Phase 1 -> 0: new schema rows stay, then drift grows
    update_sheet(db, ids[0], habits=[habit("B", "red"), habit("A", "yellow"), habit("C", "green")])
    update_sheet(db, ids[1], child="renamed")
    update_sheet(db, ids[2], habits=[])
    db.execute("DELETE FROM public.habit_tracker WHERE id = %s", (ids[3],))
    # ids[4] moves away from its slot, a new row takes that slot: the stale week there is adopted.
    update_sheet(db, ids[4], child="moved")
    taker = insert_sheet(db, child="c4", habits=[habit("T", "green")])
    assert drift_report(db).drift_pct > 0
    migration.set_phase(db, 1)
    backfill.run(db_url, batch_size=2, show_progress=False)
    report = drift_report(db)
    assert (report.drift_pct, report.orphaned, report.synced) == (0, 0, 6)
    for sheet in (ids[0], ids[1], ids[2], ids[4], ids[5], taker):
        assert_synced(db, sheet)


def test_malformed_rows_are_logged_once_and_skipped(db, db_url):
    good = insert_sheet(db, child="good", habits=[habit("A", "green")])
    bad = insert_sheet(db, child="bad", habits=[{"name": "A"}])
    migration.set_phase(db, 1)
    first = backfill.run(db_url, show_progress=False)
    assert (first.projected, first.malformed, first.listed, first.left) == (1, 1, 1, 0)
    assert first.summary().startswith("projected 1 rows, malformed 1 (listed in dual_write_errors: 1")
    again = backfill.run(db_url, show_progress=False)  # the bad row is recorded: nothing to redo
    assert (again.rows, again.started_after, again.projected, again.malformed, again.left) == (0, None, 0, 1, 0)
    errors = db.execute("SELECT tracker_id, operation FROM public.dual_write_errors").fetchall()
    assert errors == [(bad, "BACKFILL")]
    assert_synced(db, good)
    report = drift_report(db)
    assert (report.missing, report.errors) == (1, 1)


def test_one_malformed_row_does_not_make_every_run_redo_the_rows_after_it(db, db_url):
    """Issue 17.2: the backfill moves past rows it recorded as malformed."""
    bad = insert_sheet(db, child="bad", habits="not a list")
    generate_sheets(db, 300)
    migration.set_phase(db, 1)
    first = backfill.run(db_url, batch_size=100, show_progress=False, max_batch_seconds=None)
    assert (first.rows, first.projected, first.malformed, first.left) == (301, 300, 1, 0)
    xmin = db.execute("SELECT max(xmin::text::bigint) FROM public.weeks").fetchone()
    # Rows written later while the trigger does not sync: the next run starts at them, not at the bad row.
    migration.set_phase(db, 0)
    late = [insert_sheet(db, child=f"late{i}", habits=[habit("L", "red")]) for i in range(3)]
    migration.set_phase(db, 1)
    second = backfill.run(db_url, batch_size=100, show_progress=False, max_batch_seconds=None)
    assert second.started_after == late[0] - 1 and (second.rows, second.projected, second.left) == (3, 3, 0)
    assert second.malformed == 1 and second.listed == 1
    assert db.execute("SELECT count(*) FROM public.weeks WHERE xmin::text::bigint > %s AND legacy_id < %s",
                      (xmin[0], late[0])).fetchone() == (0,), "rows before the late ones were not touched again"
    assert db.execute("SELECT count(*) FROM public.dual_write_errors WHERE tracker_id = %s", (bad,)).fetchone() == (1,)


def test_interrupted_backfill_resumes_where_the_projection_stops(db, db_url):
    generate_sheets(db, 600)
    migration.set_phase(db, 1)
    partial = backfill.run(db_url, batch_size=100, max_batches=2, show_progress=False, max_batch_seconds=None)
    assert partial.rows == 200
    resumed = backfill.run(db_url, batch_size=100, show_progress=False)
    assert resumed.started_after == 200 and resumed.rows == 400
    assert drift_report(db).drift_pct == 0


def test_killed_backfill_resumes_to_drift_zero(db, db_url):
    generate_sheets(db, 3_000)
    migration.set_phase(db, 1)
    process = subprocess.Popen(
        [sys.executable, "-m", "dualwrite.backfill", db_url, "--batch-size", "100", "--pause", "0.05"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while count(db, "weeks") < 500 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = count(db, "weeks")
    assert 500 <= done < 3_000, "the kill must land half-way"
    result = backfill.run(db_url, batch_size=500, show_progress=False)
    assert result.started_after is not None and result.started_after >= 500
    assert drift_report(db).drift_pct == 0


def test_progress_bar_renders(db, db_url):
    generate_sheets(db, 50)
    migration.set_phase(db, 1)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    result = backfill.run(db_url, batch_size=10, show_progress=True, console=console)
    assert result.rows == 50 and result.rows_per_second > 0
    shown = screen.getvalue()
    assert "backfill" in shown and "50/50" in shown and "rows/s" in shown, shown[-500:]


def test_batches_wait_for_a_locked_row_then_retry(db, db_url):
    """A batch that cannot lock its rows within lock_timeout is retried, never half-applied."""
    sheet = insert_sheet(db, habits=[habit("A", "green")])
    migration.set_phase(db, 1)
    migration.set_phase(db, 0)
    update_sheet(db, sheet, habits=[habit("A", "red")])
    migration.set_phase(db, 1)
    with psycopg.connect(db_url) as app:
        app.execute("UPDATE public.habit_tracker SET week_period = 'app' WHERE id = %s", (sheet,))
        slept: list[float] = []

        def release(seconds: float) -> None:
            slept.append(seconds)
            app.commit()  # the app's transaction ends while the backfill backs off

        result = backfill.run(db_url, lock_timeout="100ms", show_progress=False, sleep=release)
    assert slept and result.rows == 1
    assert_synced(db, sheet)


def test_batch_size_adapts_to_the_time_budget():
    assert backfill.next_batch_size(100, 0.0125, 0.025, 5000) == 200  # fast: grow, at most 2x
    assert backfill.next_batch_size(1000, 0.1, 0.025, 5000) == 250  # slow: shrink to the budget
    assert backfill.next_batch_size(4000, 0.001, 0.025, 5000) == 5000  # never above the configured size
    assert backfill.next_batch_size(20, 10.0, 0.025, 5000) == backfill.MIN_BATCH


def test_the_closing_count_leaves_the_other_cores_to_the_app(db, db_url, monkeypatch):
    """The count after the batches reads both schemas whole; it runs without parallel workers,
    which took the cores the app's writes needed (bench/NOTES.md, 2026-12-02 night)."""
    generate_sheets(db, 20)
    migration.set_phase(db, 1)
    workers: list[str] = []
    counted = backfill.drift_split

    def count(conn: psycopg.Connection, covered: tuple[int, int] | None = None) -> object:
        workers.append(conn.execute("SELECT current_setting('max_parallel_workers_per_gather')").fetchone()[0])
        return counted(conn, covered)

    monkeypatch.setattr(backfill, "drift_split", count)
    result = backfill.run(db_url, show_progress=False)
    assert workers == ["0"] and result.rows == 20 and result.left == 0, (workers, result)
