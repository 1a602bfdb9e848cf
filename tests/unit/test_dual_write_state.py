"""Which rollback is in effect, whether the stack declares it, and where drift applies (issue 16)."""

from __future__ import annotations

import pytest

from dualwrite.dual_write_state import DualWriteState


def state(declared_phase=1, declared="enabled", deployed="1", in_database="enabled") -> DualWriteState:
    return DualWriteState("dev", "Pulumi.dev.yaml", declared_phase, declared, deployed, in_database)


def test_phase_1_enabled_and_syncing_is_where_drift_applies():
    current = state()
    assert current.matches and current.rollback is None and current.drift_not_applicable() is None
    assert current.describe() == ("dual write runs as declared (Pulumi.dev.yaml declares "
                                  "habit-tracker-db:dual_write: enabled, phase 1).")


def test_phase_0_drift_does_not_apply_and_says_why():
    reason = state(declared_phase=0, deployed="0").drift_not_applicable()
    assert reason is not None and "declares phase 0" in reason and "only logs" in reason


@pytest.mark.parametrize("declared,in_database,level,option", [
    ("disabled", "disabled", "disable", "Option 1"),
    ("absent", "absent", "drop-trigger", "Option 2"),
])
def test_a_declared_rollback_is_named_and_drift_does_not_apply(declared, in_database, level, option):
    current = state(declared=declared, in_database=in_database)
    assert current.matches and current.rollback == level
    text = current.describe()
    assert option in text and f"--level {level}" in text and "as declared" in text
    assert "habit-tracker-db:dual_write: enabled" in text and "invoke up --stack dev" in text  # the way back
    assert "while the trigger does not sync" in current.drift_not_applicable()


@pytest.mark.parametrize("in_database,level,keep", [
    ("disabled", "disable", "habit-tracker-db:dual_write: disabled"),
    ("absent", "drop-trigger", "habit-tracker-db:dual_write: absent"),
    ("removed", "all", "habit-tracker-db:dual_write: removed"),
])
def test_an_emergency_rollback_the_stack_file_does_not_declare(in_database, level, keep):
    current = state(in_database=in_database)
    assert not current.matches and current.rollback == level
    text = current.describe()
    assert "a rollback is in effect that the stack does not declare" in text and f"--level {level}" in text
    assert "To get back: `invoke up --stack dev`" in text and "backfills" in text and keep in text
    assert current.drift_not_applicable() is not None


def test_phase_1_declared_but_not_deployed_yet():
    reason = state(deployed="0").drift_not_applicable()
    assert reason is not None and "runs the phase 0 trigger function" in reason and "invoke up --stack dev" in reason
