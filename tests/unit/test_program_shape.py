"""The program's shape per phase and rollback state, with Pulumi's own mocks (no engine, no database)."""

from __future__ import annotations

import runpy

import pulumi
import pytest

from dualwrite import phases
from dualwrite.catalog import MIGRATION_013, objects_in
from dualwrite.objects import Function, Procedure, Table

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


TYPED = "pulumi-python:dynamic/migration013:"


def by_type(mocks: RecordingMocks, type_name: str) -> dict[str, dict]:
    return {r.name: r.inputs for r in mocks.resources if r.typ == TYPED + type_name}


def sql_objects(mocks: RecordingMocks) -> dict[str, dict]:
    """Every database object the program declares, by resource name."""
    return {r.name: r.inputs for r in mocks.resources if r.typ.startswith(TYPED)}


def test_every_resource_is_typed_and_sits_in_a_component_of_the_guide():
    mocks = run_program(phase="1")
    types = {r.name: r.typ for r in mocks.resources}
    assert not any(t == "pulumi-python:dynamic:Resource" for t in types.values())
    assert types["idempotency_log"] == TYPED + "Table"
    assert types["idx_idempotency_key"] == TYPED + "Index"
    assert types["cleanup_idempotency_log_batch"] == TYPED + "Function"
    assert "cleanup_idempotency_log_in_batches" not in types  # retired: a procedure cannot pin search_path
    assert types["trigger_habit_tracker_dual_write"] == TYPED + "Trigger"
    assert (types["cleanup-job"], types["pg-cron"], types["backfill"]) == (
        TYPED + "CronJob", TYPED + "Extension", TYPED + "Backfill")
    components = {name: typ for name, typ in types.items() if typ.startswith("habit-tracker-db:")}
    assert components == {"database-owner": "habit-tracker-db:migration013:Owner",
                          "migration-013": "habit-tracker-db:migration013:Migration",
                          "security": "habit-tracker-db:migration013:Security",
                          "phase-jobs": "habit-tracker-db:migration013:PhaseJobs"}
    # Each kind's inputs name the kind class the provider hands it to.
    assert {props["kind"] for props in sql_objects(mocks).values()} == {
        "table", "index", "function", "trigger", "grants", "extension", "cron_job", "backfill", "ownership"}


def test_phase0_declares_every_catalog_object_with_phase0_body():
    mocks = run_program(phase="0")
    objects = sql_objects(mocks)
    assert [n for n in objects if n not in ("privileges", "migration-013-owner")] == [o.name for o in objects_in(0)]
    assert objects["privileges"]["kind"] == "grants"
    assert objects["sync_old_to_new"]["checksum"] == next(
        o for o in MIGRATION_013 if o.name == "sync_old_to_new"
    ).checksum(0)
    assert objects["trigger_habit_tracker_dual_write"]["enabled"] is True
    assert "pg-cron" not in objects and "cleanup-job" not in objects and "backfill" not in objects


def test_phase1_selects_other_sync_body_and_adds_cron_and_backfill():
    zero = sql_objects(run_program(phase="0"))
    mocks = run_program(phase="1")
    one = sql_objects(mocks)
    assert one["sync_old_to_new"]["checksum"] != zero["sync_old_to_new"]["checksum"]
    assert one["cleanup_idempotency_log"]["checksum"] == zero["cleanup_idempotency_log"]["checksum"]
    assert one["pg-cron"]["kind"] == "extension"
    job = by_type(mocks, "CronJob")["cleanup-job"]
    assert (job["kind"], job["name"], job["schedule"]) == ("cron_job", "cleanup_idempotency_log", "17 3 * * *")
    assert "backfill" in by_type(mocks, "Backfill")


def test_privileges_follow_the_objects():
    declared = sql_objects(run_program(phase="0"))
    privileges = declared["privileges"]
    assert privileges["kind"] == "grants"
    assert set(privileges["objects"]) == {o.name for o in objects_in(0) if o.kind in (Table, Function, Procedure)}
    declared = {d["name"]: d["privileges"] for d in privileges["declared"]}
    assert declared["idempotency_log"] == {"service_role": ["SELECT", "INSERT", "UPDATE", "DELETE"]}
    assert declared["sync_old_to_new"] == {}  # nobody but the owner
    # Each object carries the same declaration, applied with its CREATE.
    assert sql_objects(run_program(phase="0"))["idempotency_log"]["privileges"] == declared["idempotency_log"]
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
    # Option 3, declared: one Removal resource drops everything (tables are retained otherwise).
    assert ("drop-everything" in by_type(run_program(phase="0", dual_write=state), "Removal")) is (not objects)


def test_phase0_log_server_selects_the_raise_log_body():
    notice = sql_objects(run_program(phase="0"))["sync_old_to_new"]
    server = sql_objects(run_program(phase="0", phase0_log="server"))["sync_old_to_new"]
    assert "RAISE NOTICE 'Dual-write trigger fired" in notice["sql"]
    assert "RAISE LOG 'Dual-write trigger fired" in server["sql"] and server["checksum"] != notice["checksum"]
    # Phase 1's body is the same whatever Phase 0 logs to.
    assert (sql_objects(run_program(phase="1", phase0_log="server"))["sync_old_to_new"]["checksum"]
            == sql_objects(run_program(phase="1"))["sync_old_to_new"]["checksum"])


@pytest.mark.parametrize("config", ({"phase": "0"}, {"phase": "1"}, {"phase": "1", "dual_write": "removed"}))
def test_the_owner_record_comes_first_and_every_object_names_its_owner(config):
    """Issue 17, item 4: the database's owner record is declared first (the first object of each
    component depends on it: tests/e2e/test_ownership.py shows nothing is created when it is
    refused), and every resource carries "project/stack"."""
    mocks = run_program(stack="dev", **config)
    owner = by_type(mocks, "Ownership")
    assert list(owner) == ["migration-013-owner"]
    assert (owner["migration-013-owner"]["project"], owner["migration-013-owner"]["stack"]) == ("habit-tracker-db", "dev")
    objects = sql_objects(mocks)
    assert {props["owner"] for props in objects.values()} == {"habit-tracker-db/dev"}
    assert mocks.resources.index(next(r for r in mocks.resources if r.name == "migration-013-owner")) < min(
        i for i, r in enumerate(mocks.resources) if r.typ.startswith(TYPED) and r.name != "migration-013-owner")


JOBS = ("pg-cron", "cleanup-job", "backfill", "reverse-backfill")


@pytest.mark.parametrize("key", phases.KEYS)
def test_each_phase_declares_its_objects_its_jobs_and_their_privileges(key):
    """dualwrite/phases.py decides: the phase's objects in catalog order, the cleanup job and the
    backfill where it has them, and the Security watch over exactly its tables and functions."""
    phase = phases.BY_KEY[key]
    mocks = run_program(phase=key)
    objects = sql_objects(mocks)
    declared = [name for name in objects if name not in ("privileges", "migration-013-owner", "stop-syncs", *JOBS)]
    # The phase before retirement declares the archive first, not yet archived (objects/archive.py says why).
    before_retirement = ["habit_tracker_archive"] if phases.up(phase) and phases.up(phase).archives else []
    assert declared == before_retirement + [obj.name for obj in objects_in(phase.order)]
    assert ("stop-syncs" in objects) is phase.archives
    assert ("cleanup-job" in objects) is phase.cleanup_job and ("pg-cron" in objects) is phase.cleanup_job
    assert ("backfill" in objects) is phase.backfill
    assert ("reverse-backfill" in objects) is phase.reverse_backfill
    assert set(objects["privileges"]["objects"]) == {
        obj.name for obj in objects_in(phase.order) if obj.kind in (Table, Function, Procedure)}
    components = {r.name for r in mocks.resources if r.typ == "habit-tracker-db:migration013:PhaseJobs"}
    assert components == ({"phase-jobs"} if phase.cleanup_job or phase.backfill else set())
    if phase.reverse_backfill:
        assert by_type(mocks, "ReverseBackfill")["reverse-backfill"]["unsynced"] == 0


def test_phase_2_keeps_the_forward_sync_and_adds_the_reverse_one():
    one, two = sql_objects(run_program(phase="1")), sql_objects(run_program(phase="2"))
    assert two["sync_old_to_new"]["checksum"] == one["sync_old_to_new"]["checksum"]  # the Phase 1 body
    assert two["trigger_habit_tracker_dual_write"]["enabled"] is True
    for table in ("children", "weeks", "habits", "habit_records"):
        assert two[f"trigger_{table}_reverse_lock"]["on_table"] == table
        assert two[f"trigger_{table}_reverse_sync"]["on_table"] == table
    assert two["old_client_writes"]["kind"] == "table" and "trigger_habit_tracker_read_only" not in two


def test_phase_3_turns_forward_sync_off_and_habit_tracker_read_only():
    three = sql_objects(run_program(phase="3"))
    assert "trigger_habit_tracker_dual_write" not in three and "backfill" not in three
    assert three["trigger_habit_tracker_read_only"]["on_table"] == "habit_tracker"
    assert "trigger_weeks_reverse_sync" in three and "cleanup-job" in three


@pytest.mark.parametrize("phase", ["2", "3"])
def test_the_guides_rollbacks_stop_the_program_from_phase_2_on(phase):
    with pytest.raises(Exception, match="allowed there: enabled"):
        run_program(phase=phase, dual_write="disabled")


def test_retirement_stops_the_syncs_then_archives_and_the_phase_before_declares_the_archive_not_yet():
    mocks = run_program(phase="retired")
    order = [r.name for r in mocks.resources]
    objects = sql_objects(mocks)
    assert order.index("stop-syncs") < order.index("habit_tracker_archive")
    assert objects["habit_tracker_archive"]["archived"] is True and objects["stop-syncs"]["kind"] == "retirement"
    assert not [name for name, props in objects.items() if props["kind"] in ("trigger", "function")
                and name not in ("cleanup_idempotency_log", "cleanup_idempotency_log_batch")]
    three = run_program(phase="3")
    first = [r.name for r in three.resources if r.typ.startswith(TYPED) and r.name != "migration-013-owner"][0]
    assert first == "habit_tracker_archive" and sql_objects(three)[first]["archived"] is False
