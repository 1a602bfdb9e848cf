"""The rollback levels run exactly the deployment guide's statements."""

from __future__ import annotations

import pytest

from dualwrite import rollback


def rendered(level: str) -> list[str]:
    return [s.as_string(None) for s in rollback.statements(level)]


# In catalog order: the order the step to Phase 1 creates them (dualwrite/catalog.py says why).
STATEMENT_TRIGGERS = ["trigger_habit_tracker_dual_write_delete", "trigger_habit_tracker_dual_write_update",
                      "trigger_habit_tracker_dual_write_insert"]


def test_disable_is_guide_option_1_then_the_statement_triggers_of_phase_1():
    assert rendered("disable") == [
        f'ALTER TABLE "public"."habit_tracker" DISABLE TRIGGER "{name}"'
        for name in ["trigger_habit_tracker_dual_write", *STATEMENT_TRIGGERS]]
    assert rollback.follow_up_line("disable") == "habit-tracker-db:dual_write: disabled"


def test_disable_leaves_out_the_statement_triggers_a_database_does_not_have():
    """Phase 0 has none (DISABLE TRIGGER would fail on one that is not there); the guide's is always first."""
    assert [s.as_string(None) for s in rollback.statements("disable", present=set())] == [
        'ALTER TABLE "public"."habit_tracker" DISABLE TRIGGER "trigger_habit_tracker_dual_write"']
    assert len(rollback.statements("disable", present={"trigger_habit_tracker_dual_write", *STATEMENT_TRIGGERS})) == 4


def test_drop_trigger_is_guide_option_2_then_the_statement_triggers_of_phase_1():
    assert rendered("drop-trigger") == [
        f'DROP TRIGGER IF EXISTS "{name}" ON "public"."habit_tracker"'
        for name in ["trigger_habit_tracker_dual_write", *STATEMENT_TRIGGERS]]
    assert rollback.follow_up_line("drop-trigger") == "habit-tracker-db:dual_write: absent"


def test_all_drops_trigger_before_functions_before_table():
    statements = rendered("all")
    assert "cron.unschedule" in statements[0]
    order = [next(i for i, s in enumerate(statements) if needle in s) for needle in (
        "DROP TRIGGER", 'DROP FUNCTION IF EXISTS "public"."sync_old_to_new"()',
        'DROP FUNCTION IF EXISTS "public"."cleanup_idempotency_log"()', 'DROP TABLE IF EXISTS "public"."idempotency_log"')]
    assert order == sorted(order)
    assert rollback.follow_up_line("all") == "habit-tracker-db:dual_write: removed"


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="disable, drop-trigger, all"):
        rollback.level("everything")
