"""The program's shape per phase and rollback state, with Pulumi's own mocks (no engine, no database)."""

from __future__ import annotations

import runpy

import pulumi
import pytest

from infra.sql_catalog import MIGRATION_013

MAIN = "infra/__main__.py"
BASE_CONFIG = {
    "db_host": "127.0.0.1",
    "db_port": "54329",
    "db_name": "habit_tracker",
    "db_user": "postgres",
    "db_sslmode": "disable",
}


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}, None


def run_program(stack: str = "local", **config: str) -> RecordingMocks:
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="habit-tracker-db", stack=stack, preview=False)
    pulumi.runtime.set_all_config({f"habit-tracker-db:{k}": v for k, v in {**BASE_CONFIG, **config}.items()})

    @pulumi.runtime.test
    def program():
        runpy.run_path(MAIN, run_name="__main__")
        return pulumi.Output.from_input(None)

    program()
    return mocks


def by_type(mocks: RecordingMocks, suffix: str) -> dict[str, dict]:
    return {r.name: r.inputs for r in mocks.resources if r.typ.endswith(suffix)}


def sql_objects(mocks: RecordingMocks) -> dict[str, dict]:
    return {name: props for name, props in by_type(mocks, "Resource").items() if "kind" in props}


def test_phase0_declares_every_catalog_object_with_phase0_body():
    mocks = run_program(phase="0")
    objects = sql_objects(mocks)
    assert [n for n in objects if n != "privileges"] == [o.name for o in MIGRATION_013]
    assert objects["sync_old_to_new"]["checksum"] == next(
        o for o in MIGRATION_013 if o.name == "sync_old_to_new"
    ).checksum(0)
    assert objects["trigger_habit_tracker_dual_write"]["enabled"] is True
    assert "pg-cron" not in objects and "cleanup-job" not in objects and "backfill" not in by_type(mocks, "Resource")


def test_phase1_selects_other_sync_body_and_adds_cron_and_backfill():
    zero = sql_objects(run_program(phase="0"))
    mocks = run_program(phase="1")
    one = sql_objects(mocks)
    assert one["sync_old_to_new"]["checksum"] != zero["sync_old_to_new"]["checksum"]
    assert one["cleanup_idempotency_log"]["checksum"] == zero["cleanup_idempotency_log"]["checksum"]
    assert one["pg-cron"]["kind"] == "extension"
    job = by_type(mocks, "Resource")["cleanup-job"]
    assert (job["kind"], job["name"], job["schedule"]) == ("cron_job", "cleanup_idempotency_log", "17 3 * * *")
    assert "backfill" in by_type(mocks, "Resource")


def test_privileges_follow_the_objects():
    declared = sql_objects(run_program(phase="0"))
    privileges = declared["privileges"]
    assert privileges["kind"] == "grants"
    assert "REVOKE ALL ON public.idempotency_log FROM PUBLIC, anon, authenticated" in privileges["sql"]
    assert set(privileges["objects"]) == {o.name for o in MIGRATION_013 if o.kind in ("table", "function")}
    assert "privileges" not in sql_objects(run_program(phase="0", dual_write="removed"))


@pytest.mark.parametrize(
    ("state", "trigger", "enabled", "objects"),
    [("disabled", True, False, True), ("absent", False, None, True), ("removed", False, None, False)],
)
def test_rollback_states_are_declared(state, trigger, enabled, objects):
    declared = sql_objects(run_program(phase="0", dual_write=state))
    assert ("trigger_habit_tracker_dual_write" in declared) is trigger
    if enabled is not None:
        assert declared["trigger_habit_tracker_dual_write"]["enabled"] is enabled
    assert ("idempotency_log" in declared) is objects
