"""`invoke phase N` edits exactly one line of a stack file and deploys nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dualwrite.config import ConfigError
from dualwrite.stack_file import set_phase, set_value

STACK = """# staging: reviewed changes only
config:
  habit-tracker-db:phase: 0  # flip with `invoke phase 1`
  habit-tracker-db:db_host: db.example.supabase.co
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.staging.yaml").write_text(STACK)
    return tmp_path


def test_phase_changes_only_the_phase_line(root: Path):
    edit = set_phase("staging", 1, root)
    after = (root / "Pulumi.staging.yaml").read_text()
    changed = [(a, b) for a, b in zip(STACK.splitlines(), after.splitlines()) if a != b]
    assert changed == [("  habit-tracker-db:phase: 0  # flip with `invoke phase 1`",
                        "  habit-tracker-db:phase: 1  # flip with `invoke phase 1`")]
    assert "-  habit-tracker-db:phase: 0" in edit.diff() and "+  habit-tracker-db:phase: 1" in edit.diff()


def test_same_phase_is_no_change(root: Path):
    assert not set_phase("staging", 0, root).changed


@pytest.mark.parametrize("bad", [4, "one", "-1", "", "retire"])
def test_refuses_other_values(root: Path, bad):
    with pytest.raises(ConfigError, match=r"allowed: 0 \(log only\) \| 1 .* \| 3 \(contract\) \| retired"):
        set_phase("staging", bad, root)
    assert (root / "Pulumi.staging.yaml").read_text() == STACK


def test_refuses_missing_stack_file(root: Path):
    with pytest.raises(ConfigError, match="Pulumi.prod.yaml does not exist.*staging"):
        set_phase("prod", 1, root)


def test_new_key_is_added_under_config(root: Path):
    set_value("staging", "dual_write", "disabled", root)
    lines = (root / "Pulumi.staging.yaml").read_text().splitlines()
    assert lines[2] == "  habit-tracker-db:dual_write: disabled"
    assert len(lines) == len(STACK.splitlines()) + 1


def test_quoted_values_stay_quoted(tmp_path: Path):
    (tmp_path / "Pulumi.local.yaml").write_text('config:\n  habit-tracker-db:phase: "0"\n  habit-tracker-db:db_host: x\n')
    set_phase("local", 1, tmp_path)
    assert (tmp_path / "Pulumi.local.yaml").read_text() == 'config:\n  habit-tracker-db:phase: "1"\n  habit-tracker-db:db_host: x\n'


@pytest.mark.parametrize("broken, expected", [
    (STACK.replace("db.example.supabase.co", "[db.example"), "Pulumi.staging.yaml is not valid YAML at line"),
    (STACK + "  habit-tracker-db:phsae: 1\n", "'habit-tracker-db:phsae' is not one this project reads; did you mean"),
    (STACK + "  habit-tracker-db:db_port: 99999\n", "'habit-tracker-db:db_port' is 99999"),
    (STACK + "  habit-tracker-db:db_password: hunter2\n", "stored in plain text"),
])
def test_refuses_a_file_that_does_not_parse_instead_of_editing_it(root: Path, broken, expected):
    (root / "Pulumi.staging.yaml").write_text(broken)
    with pytest.raises(ConfigError, match=re.escape(expected)):
        set_phase("staging", 1, root)
    assert (root / "Pulumi.staging.yaml").read_text() == broken


def test_a_stack_file_without_its_password_yet_is_edited(root: Path):
    """Phase edits come before `invoke stack-init` on a new environment's file, and after it."""
    assert "db_password" not in STACK and set_phase("staging", 1, root).changed
