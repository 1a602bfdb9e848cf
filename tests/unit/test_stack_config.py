"""Config rules: every bad value fails with one paragraph naming stack file, key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualwrite.config import ConfigError, load, parse

GOOD = {"phase": 0, "db_host": "127.0.0.1"}


def test_defaults():
    config = parse("local", GOOD, has_password=False)
    assert (config.phase, config.dual_write, config.lock_timeout, config.drift_threshold) == (0, "enabled", "3s", 0.1)
    assert config.trigger_enabled and config.migration_present


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("phase", 4, "0 (log only) | 1 (sync old to new) | 2 (both directions) | 3 (contract) | retired"),
        ("phase", "one", "0 (log only) | 1 (sync old to new) | 2 (both directions) | 3 (contract) | retired"),
        ("phase", "Retired", "0 (log only) | 1 (sync old to new) | 2 (both directions) | 3 (contract) | retired"),
        ("phase", None, "0 (log only) | 1 (sync old to new) | 2 (both directions) | 3 (contract) | retired"),
        ("dual_write", "off", "enabled | disabled | absent | removed"),
        ("db_name", "Robert'); DROP TABLE x;--", "SQL identifier"),
        ("db_user", "Service-Role", "SQL identifier"),
        ("db_port", "70000", "TCP port"),
        ("lock_timeout", "3 seconds", "PostgreSQL duration"),
        ("drift_threshold", "lots", "percentage"),
        ("cleanup_schedule", "daily", "cron expression"),
        ("backfill_batch_size", "0", "whole number"),
        ("phase0_log", "stderr", "notice | server"),
        ("phsae", "1", "did you mean 'habit-tracker-db:phase'?"),
    ],
)
def test_bad_values_name_stack_key_and_allowed(key, value, allowed):
    raw = {**GOOD, key: value}
    if value is None:
        raw.pop(key)
    with pytest.raises(ConfigError) as error:
        parse("staging", raw, has_password=False)
    message = str(error.value)
    assert "Pulumi.staging.yaml" in message
    assert f"habit-tracker-db:{key}" in message
    assert allowed in message
    assert "\n" not in message


def test_remote_host_needs_a_secret_password():
    with pytest.raises(ConfigError, match="habit-tracker-db:db_password"):
        parse("dev", {**GOOD, "db_host": "db.example.supabase.co"}, has_password=False)
    assert parse("dev", {**GOOD, "db_host": "db.example.supabase.co"}, has_password=True).has_password


def test_plain_text_password_is_refused(tmp_path: Path):
    (tmp_path / "Pulumi.x.yaml").write_text(
        "config:\n  habit-tracker-db:phase: 0\n  habit-tracker-db:db_host: h\n  habit-tracker-db:db_password: hunter2\n"
    )
    with pytest.raises(ConfigError) as error:
        load("x", tmp_path)
    assert "plain text" in str(error.value) and "hunter2" not in str(error.value)


def test_missing_stack_file_lists_existing(tmp_path: Path):
    (tmp_path / "Pulumi.local.yaml").write_text("config: {}\n")
    with pytest.raises(ConfigError, match="Pulumi.nope.yaml does not exist.*local"):
        load("nope", tmp_path)


def test_committed_stack_files_parse():
    assert load("local").phase in (0, 1)
    for stack in ("dev", "staging", "prod"):
        with pytest.raises(ConfigError, match="db_password"):
            load(stack)  # the examples ship without a password: the error says how to set one
