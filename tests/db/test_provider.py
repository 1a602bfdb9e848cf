"""The provider's calls on a real database, without the engine: create, read, a hand-made
drop or change seen by read, a hand change undone reading clean again, delete."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from dualwrite.catalog import by_name
from dualwrite.db import Session
from dualwrite.objects.table import TableHoldsRows
from infra.sql_object import OUT_OF_BAND, SqlObjectProvider

pytestmark = pytest.mark.db


@pytest.fixture
def provider(db_url: str) -> SqlObjectProvider:
    provider = SqlObjectProvider()
    provider._session = Session(conninfo_to_dict(db_url))  # what `configure` builds from stack config
    return provider


def create(provider: SqlObjectProvider, name: str, phase: int = 0) -> dict:
    props = {**by_name(name).props(phase), "fingerprint": None}
    result = provider.create(props)
    assert result.outs["fingerprint"]
    return result.outs


def test_read_of_an_object_dropped_by_hand_says_it_is_gone(provider, conn):
    outs = create(provider, "idempotency_log")
    index = create(provider, "idx_idempotency_status")
    assert provider.read("id", index).id == "id"
    conn.execute("DROP INDEX public.idx_idempotency_status")
    gone = provider.read("id", index)
    assert gone.id == "" and not gone.outs  # the engine drops it from state; the next up creates it
    assert provider.read("id", outs).id == "id"


def test_a_hand_change_shows_on_read_and_reads_clean_once_undone(provider, conn):
    outs = create(provider, "cleanup_idempotency_log")
    original = conn.execute("SELECT pg_get_functiondef('public.cleanup_idempotency_log()'::regprocedure)").fetchone()[0]
    conn.execute("CREATE OR REPLACE FUNCTION public.cleanup_idempotency_log() RETURNS integer LANGUAGE sql AS 'SELECT 0'")
    changed = provider.read("id", outs)
    assert changed.inputs["checksum"].startswith(OUT_OF_BAND)
    diff = provider.diff("id", changed.outs, {**outs})
    assert diff.changes and not diff.replaces  # an update in place puts the body back
    conn.execute(original)
    again = provider.read("id", changed.outs)  # the state after the first read, marker and all
    assert again.inputs["checksum"] == outs["checksum"]
    assert not provider.diff("id", again.outs, outs).changes


def test_a_disabled_trigger_reads_as_disabled(provider, conn):
    for name in ("idempotency_log", "dual_write_errors", "habit_tracker_row_error", "sync_old_to_new",
                 "trigger_habit_tracker_dual_write"):
        outs = create(provider, name)
    conn.execute("ALTER TABLE public.habit_tracker DISABLE TRIGGER trigger_habit_tracker_dual_write")
    read = provider.read("id", outs)
    assert read.inputs["enabled"] is False
    assert provider.diff("id", read.outs, outs).replaces == []


def test_a_table_with_rows_is_never_dropped_by_a_delete(provider, conn):
    outs = create(provider, "idempotency_log")
    conn.execute("INSERT INTO public.idempotency_log (key, operation, status) VALUES ('k', 'create_week', 'success')")
    with pytest.raises(TableHoldsRows, match="declare `habit-tracker-db:dual_write: removed`"):
        provider.delete("id", outs)
    assert conn.execute("SELECT count(*) FROM public.idempotency_log").fetchone()[0] == 1
    conn.execute("DELETE FROM public.idempotency_log")
    provider.delete("id", outs)  # empty: nothing is lost
    assert conn.execute("SELECT to_regclass('public.idempotency_log')").fetchone()[0] is None


def test_new_sync_logic_runs_the_backfill_again_in_place(provider, conn):
    from dualwrite import migration

    migration.apply(conn, 0)
    conn.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                 "SELECT gen_random_uuid(), 'phase 0 ' || g, '2025-10-13', '[]' FROM generate_series(1, 25) g")
    migration.set_phase(conn, 1)
    olds = {"kind": "backfill", "sync_checksum": "old body", "batch_size": 10, "rows": 0, "fingerprint": None}
    news = {**olds, "sync_checksum": "new body"}
    assert provider.diff("backfill", olds, news).replaces == []  # an update, never a replace
    first = provider.update("backfill", olds, news)
    assert first.outs["rows"] == 25
    assert conn.execute("SELECT drift_pct FROM public.dual_write_drift()").fetchone()[0] == 0
    unchanged = provider.update("backfill", first.outs, {**news, "batch_size": 50})
    assert unchanged.outs["rows"] == 25  # a new batch size alone projects nothing again


def test_the_backfill_reads_rows_out_of_sync_and_its_update_catches_up(provider, conn):
    """Issue 17.1 without the engine: read counts what a backfill would fix (recorded malformed rows aside)."""
    from dualwrite import migration

    migration.apply(conn, 1)
    news = {"kind": "backfill", "sync_checksum": "body", "batch_size": 10, "rows": None, "unsynced": 0,
            "fingerprint": None}
    outs = provider.create(news).outs
    conn.execute("ALTER TABLE public.habit_tracker DISABLE TRIGGER trigger_habit_tracker_dual_write")
    conn.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                 "SELECT gen_random_uuid(), 'meanwhile ' || g, '2025-10-13', '[]' FROM generate_series(1, 20) g")
    conn.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                 "VALUES (gen_random_uuid(), 'malformed', '2025-10-14', '[]')")  # not a Monday, not recorded yet
    conn.execute("ALTER TABLE public.habit_tracker ENABLE TRIGGER trigger_habit_tracker_dual_write")
    read = provider.read("backfill", outs)
    assert read.inputs["unsynced"] == 21
    assert provider.diff("backfill", read.outs, news).changes
    caught_up = provider.update("backfill", read.outs, news)
    assert (caught_up.outs["rows"], caught_up.outs["unsynced"]) == (21, 0)
    assert conn.execute("SELECT count(*) FROM public.dual_write_errors").fetchone() == (1,)  # recorded now
    again = provider.read("backfill", caught_up.outs)  # the recorded malformed row is no work: no change
    assert again.inputs["unsynced"] == 0 and not provider.diff("backfill", again.outs, news).changes
    # The read is a whole-table scan with a bound of its own, not the stack's statement_timeout.
    strict = SqlObjectProvider()
    strict._session = Session(provider._session.conninfo, statement_timeout="1ms")
    assert strict.read("backfill", again.outs).inputs["unsynced"] == 0
    # Rollback option 3 out of band: the counting functions are gone, the backfill reads as gone.
    migration.drop(conn)
    assert provider.read("backfill", again.outs).id == ""
