"""Each kind's diff: what a change updates in place, and what forces a new object (no database, no engine)."""

from __future__ import annotations

from dualwrite import phases
from dualwrite.catalog import MIGRATION_013, by_name
from dualwrite.objects import KINDS, Backfill, CronJob, Extension, Function, Grants, Index, Table, Trigger, kind_of


def declared(name: str, phase: int = 0, **changes):
    return {**by_name(name).props(phase), **changes}


def test_every_catalog_object_has_a_kind_class_and_a_distinct_id():
    # Each in the first phase it exists in (Phase 1's statement function has no Phase 0 body).
    ops = [obj.operations(phases.BY_KEY[obj.phases[0]].order) for obj in MIGRATION_013]
    assert all(type(op) is obj.kind for op, obj in zip(ops, MIGRATION_013))
    assert len({op.object_id() for op in ops}) == len(ops)
    assert set(KINDS) >= {"table", "index", "function", "procedure", "trigger", "cron_job", "extension", "grants",
                          "backfill"}


def test_same_props_mean_no_change():
    for obj in MIGRATION_013:
        props = obj.props(1)
        assert obj.kind.diff(props, dict(props)) == ([], []), obj.name


def test_a_table_is_never_replaced_even_when_its_sql_changes():
    olds = declared("idempotency_log")
    changed, replaces = Table.diff(olds, {**olds, "checksum": "other", "name": "renamed"})
    assert set(changed) == {"checksum", "name"} and replaces == []


def test_a_new_function_body_is_an_update_a_new_signature_a_replace():
    olds = declared("sync_old_to_new", 0)
    news = declared("sync_old_to_new", 1)
    assert Function.diff(olds, news) == (["checksum"], [])
    assert Function.diff(olds, {**olds, "signature": "(integer)"}) == (["signature"], ["signature"])


def test_an_index_definition_change_is_built_beside_it_and_swapped_in_place():
    olds = declared("idx_idempotency_key")
    assert Index.diff(olds, {**olds, "checksum": "x"}) == (["checksum"], [])


def test_a_trigger_changes_in_place_its_enabled_state_and_its_definition():
    olds = declared("trigger_habit_tracker_dual_write")
    assert Trigger.diff(olds, {**olds, "enabled": False}) == (["enabled"], [])
    assert Trigger.diff(olds, {**olds, "checksum": "x"}) == (["checksum"], [])  # CREATE OR REPLACE TRIGGER


def test_cron_job_reschedules_in_place():
    olds = {"kind": "cron_job", "name": "cleanup_idempotency_log", "schema": "public", "checksum": "",
            "schedule": "17 3 * * *", "command": "CALL x()"}
    assert CronJob.diff(olds, {**olds, "schedule": "0 4 * * *"}) == (["schedule"], [])


def test_backfill_runs_again_only_when_the_sync_logic_changes_and_is_never_replaced():
    olds = {"sync_checksum": "a", "batch_size": 5000, "rows": 10}
    assert Backfill.diff(olds, {**olds, "batch_size": 100, "kind": "backfill"}) == (["batch_size"], [])
    assert Backfill.diff(olds, {**olds, "sync_checksum": "b"}) == (["sync_checksum"], [])  # run again, in place
    # State written before the backfill had a kind of its own reads as the backfill.
    assert isinstance(kind_of(olds), Backfill)


def test_backfill_runs_again_when_its_read_saw_rows_out_of_sync():
    """Issue 17.1: the read counts unsynced rows; the program declares 0, so `up` backfills them."""
    news = {"kind": "backfill", "sync_checksum": "a", "batch_size": 5000, "rows": None, "unsynced": 0}
    assert Backfill.diff({**news, "unsynced": 20}, news) == (["unsynced"], [])
    assert Backfill.diff({**news, "unsynced": 0}, news) == ([], [])
    # State from before the read existed holds no count: in sync, no change on upgrade.
    assert Backfill.diff({k: v for k, v in news.items() if k != "unsynced"}, news) == ([], [])
    planned = _planned(Backfill(news), "update", {**news, "unsynced": 20}, ["unsynced"])
    assert planned[0].startswith("-- 20 rows out of sync") and "backfill_habit_tracker" in planned[0]


def test_what_a_delete_never_drops():
    assert not Extension.drop_allowed and not Grants.drop_allowed and not Backfill.drop_allowed
    assert Table.drop_allowed  # but only while empty: see tests/db/test_provider.py


def _planned(obj, op, olds=None, changed=()):
    return [s.as_string(None) for s in obj.planned_sql(op, olds or {}, list(changed))]


def test_what_each_kind_says_a_change_runs():
    trigger = Trigger(declared("trigger_habit_tracker_dual_write", enabled=False))
    assert _planned(trigger, "update", changed=["enabled"]) == [
        'ALTER TABLE "public"."habit_tracker" DISABLE TRIGGER "trigger_habit_tracker_dual_write"']
    index = _planned(Index(declared("idx_idempotency_key")), "update", changed=["checksum"])
    assert "CREATE UNIQUE INDEX CONCURRENTLY" in index[1] and "RENAME TO" in index[-1]
    table = _planned(Table(declared("idempotency_log")), "update", changed=["checksum"])
    assert not any("DROP TABLE" in s for s in table) and any("REVOKE ALL ON TABLE" in s for s in table)
    function = _planned(Function(declared("cleanup_idempotency_log")), "create")
    assert "CREATE OR REPLACE FUNCTION" in function[0] and any('TO "service_role"' in s for s in function)
    assert _planned(Extension({"kind": "extension", "name": "pg_cron", "schema": "pg_catalog"}), "delete") == []
