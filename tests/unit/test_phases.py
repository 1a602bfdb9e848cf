"""dualwrite/phases.py, the one list of phases: every entry whole, steps one apart, each object's phases."""

from __future__ import annotations

import dataclasses

import pytest

from dualwrite import phases, smoke
from dualwrite.catalog import GUIDE_TRIGGER, MIGRATION_013, by_name, objects_in
from dualwrite.config import ConfigError, parse

KNOWN_GATE_ROWS = {"checklist", "soak", "drift_forward", "drift_zero", "drift_reverse", "errors", "quiet_period",
                   "approval"}


def test_the_path_is_0_1_2_3_retired_one_step_apart():
    assert phases.KEYS == ("0", "1", "2", "3", "retired")
    for place, phase in enumerate(phases.PATH):
        assert phase.order == place
        assert phase.before == (None if place == 0 else phases.PATH[place - 1].key)
        assert phases.up(phase) == (phases.PATH[place + 1] if place + 1 < len(phases.PATH) else None)


@pytest.mark.parametrize("phase", phases.PATH, ids=phases.KEYS)
def test_every_phase_has_every_field(phase: phases.Phase):
    for field in dataclasses.fields(phase):
        value = getattr(phase, field.name)
        if field.name in ("before", "gate", "step_back", "bodies"):
            continue  # the first phase has none of these; checked below
        assert value not in ("", None, (), frozenset()), f"phase {phase.key}: {field.name} is empty"
    first = phase.order == 0
    assert (phase.gate is None) is first and (phase.step_back == "") is first
    assert phase.syncs in (phases.NONE, phases.FORWARD, phases.BOTH, phases.REVERSE)
    assert phase.drift == {phases.NONE: "none", phases.FORWARD: "forward", phases.BOTH: "both ways",
                           phases.REVERSE: "reverse"}[phase.syncs]
    assert set(phase.smoke_checks) <= set(smoke.CHECKS), "every check id names a check of dualwrite/smoke.py"
    # Each direction that syncs has its catch-up at `up` (the forward one until forward sync stops).
    assert phase.backfill is phase.forward_sync and phase.reverse_backfill is phase.reverse_sync
    if phase.gate is not None:
        assert set(phase.gate.rows) <= KNOWN_GATE_ROWS and phase.gate.summary
        # The gate reads a phase no later than the one it enters (the stack before runs it already).
        assert phases.BY_KEY[phase.gate.reads_phase].order in (phase.order - 1, phase.order)
    # Each body a phase picks is a file that exists.
    for name in phase.bodies:
        assert by_name(name).path(phase.order).is_file()


def test_every_object_a_phase_names_is_in_the_catalog():
    catalog = {obj.name for obj in MIGRATION_013}
    for phase in phases.PATH:
        assert phase.objects <= catalog, f"phase {phase.key}: {sorted(phase.objects - catalog)} not in the catalog"
    # and each catalog object exists in some phase
    assert all(obj.phases for obj in MIGRATION_013)


def test_each_object_says_its_phases():
    assert by_name("idempotency_log").phases == phases.KEYS  # serves the Edge Function in every phase
    assert by_name("cleanup_idempotency_log").phases == phases.KEYS
    assert by_name(GUIDE_TRIGGER).phases == ("0", "1", "2")  # forward sync off from Phase 3
    assert by_name("sync_old_to_new").phases == ("0", "1", "2")
    assert by_name("trigger_weeks_reverse_sync").phases == ("2", "3")
    assert by_name("old_client_writes").phases == ("2", "3", "retired")  # a table with rows stays
    assert by_name("trigger_habit_tracker_read_only").phases == ("3",)
    assert by_name("dual_write_errors").phases == phases.KEYS


STATEMENT_TRIGGERS = ("trigger_habit_tracker_dual_write_insert", "trigger_habit_tracker_dual_write_update",
                      "trigger_habit_tracker_dual_write_delete")


def test_phase_0_has_no_statement_trigger_phase_1_adds_the_sync_once_per_statement():
    """Phase 0 only logs: a statement trigger there would keep a transition table of every row written
    and run once per statement for nothing (issue 19). Phase 1 adds the statement sync, whole."""
    statement_sync = {"sync_habit_tracker_rows", "sync_one_habit_tracker_row", "sync_old_to_new_statement",
                      *STATEMENT_TRIGGERS}
    zero, one = phases.at(0), phases.at(1)
    assert not zero.objects & statement_sync and "sync_old_to_new_statement" not in zero.bodies
    assert not [obj.name for obj in objects_in(0) if obj.kind.kind == "trigger" and obj.name != GUIDE_TRIGGER]
    assert one.objects - zero.objects == statement_sync and zero.objects < one.objects
    for name in STATEMENT_TRIGGERS:
        assert by_name(name).phases == ("1", "2")  # where the forward sync runs
    assert phases.at(0).body("sync_old_to_new") == "0" and phases.at(1).body("sync_old_to_new") == "1"
    # Phase 2 keeps every forward object of Phase 1, with the Phase 1 body.
    assert phases.at(1).objects < phases.at(2).objects and phases.at(2).body("sync_old_to_new") == "1"
    retired = phases.BY_KEY["retired"]
    assert not any(by_name(name).kind.kind == "trigger" for name in retired.objects)


def test_the_guides_rollback_options_only_where_its_trigger_is_the_sync():
    assert phases.at(0).dual_write == phases.at(1).dual_write == ("enabled", "disabled", "absent", "removed")
    assert all(phase.dual_write == ("enabled",) for phase in phases.PATH[2:])


def test_a_move_is_one_step():
    zero, one, two, three, retired = phases.PATH
    assert phases.one_step(one, two) is None and phases.one_step(three, two) is None
    assert phases.one_step(two, two) is None
    refusal = phases.one_step(zero, two)
    assert refusal is not None and "phase 0 -> 2 skips a step" in refusal and "next up: 1" in refusal
    assert "one step back: 3" in (phases.one_step(retired, one) or "")


def test_stack_files_spell_phases_by_key():
    assert phases.parse("retired") is phases.BY_KEY["retired"] and phases.parse(2) is phases.at(2)
    for bad in ("4", "Retired", "", None, True, "1.0"):
        assert phases.parse(bad) is None


@pytest.mark.parametrize("value", ["4", "two", "retire", None])
def test_config_lists_every_phase_for_a_bad_value(value):
    with pytest.raises(ConfigError) as error:
        parse("dev", {"phase": value, "db_host": "127.0.0.1"}, has_password=True)
    assert "'habit-tracker-db:phase'" in str(error.value)
    assert "allowed: 0 (log only) | 1 (sync old to new) | 2 (both directions) | 3 (contract) | retired" in str(
        error.value)


@pytest.mark.parametrize("phase", ["2", "3", "retired"])
@pytest.mark.parametrize("dual_write", ["disabled", "absent", "removed"])
def test_the_guides_rollbacks_are_refused_from_phase_2_on_in_one_paragraph(phase, dual_write):
    with pytest.raises(ConfigError) as error:
        parse("dev", {"phase": phase, "db_host": "127.0.0.1", "dual_write": dual_write}, has_password=True)
    message = str(error.value)
    stage = phases.BY_KEY[phase]
    assert "\n" not in message and "Stack 'dev' (Pulumi.dev.yaml)" in message
    assert f"'habit-tracker-db:dual_write' is '{dual_write}'" in message and "allowed there: enabled" in message
    assert f"`invoke phase {stage.before} --stack dev`" in message and "nothing was deployed" in message
    assert parse("dev", {"phase": phase, "db_host": "127.0.0.1"}, has_password=True).stage is stage


def test_quiet_period_hours_defaults_to_a_week_and_is_checked():
    assert parse("dev", {"phase": "2", "db_host": "127.0.0.1"}, has_password=True).quiet_period_hours == 168
    with pytest.raises(ConfigError, match="'habit-tracker-db:quiet_period_hours' is '-1'; allowed: hours from 0"):
        parse("dev", {"phase": "2", "db_host": "127.0.0.1", "quiet_period_hours": "-1"}, has_password=True)


def test_the_step_to_phase_1_creates_the_delete_trigger_first_and_the_insert_trigger_last():
    """The program creates objects one after another in catalog order. With delete and update synced
    before insert, a write between two creates can only leave a row unsynced (the backfill projects it);
    insert first could sync a row whose later DELETE nobody mirrors, and the backfill never sees it."""
    order = [obj.name for obj in objects_in(1) if obj.name in STATEMENT_TRIGGERS]
    assert order == ["trigger_habit_tracker_dual_write_delete", "trigger_habit_tracker_dual_write_update",
                     "trigger_habit_tracker_dual_write_insert"]
