"""dualwrite/deploy.py checks before the engine or a database is reached: a pull request's read-only
job runs nothing but a preview, and a real stack without its passphrase stops before its database is
contacted. The stack's file is the test's own, in a temp dir; nothing is reached or written."""

from __future__ import annotations

import pytest

from devenv.stack_engine import ENGINE
from dualwrite import config as stack_config
from dualwrite import deploy, readonly
from dualwrite.config import ConfigError

STACK = "deploy-checks"


@pytest.fixture(autouse=True)
def own_stack_file(tmp_path, monkeypatch):
    """Stack files are read from a temp dir holding this test's one stack (port 1: nothing answers there)."""
    (tmp_path / f"Pulumi.{STACK}.yaml").write_text(
        'config:\n  habit-tracker-db:phase: "0"\n  habit-tracker-db:db_host: 127.0.0.1\n'
        '  habit-tracker-db:db_port: "1"\n  habit-tracker-db:db_sslmode: disable\n')
    load = stack_config.load
    monkeypatch.setattr(stack_config, "load", lambda stack, root=tmp_path: load(stack, tmp_path))


@pytest.mark.parametrize("args", [["up", "--yes"], ["refresh", "--yes"], ["destroy", "--yes"]])
def test_a_read_only_job_runs_nothing_but_a_preview(monkeypatch, args):
    monkeypatch.setenv(readonly.DB_PASSWORD, "a-preview-role-password")
    with pytest.raises(ConfigError) as refused:
        deploy.run(STACK, args, ENGINE)
    assert str(refused.value) == readonly.refusal(STACK, f"pulumi {args[0]}")


def test_a_real_stack_without_its_passphrase_stops_before_its_database(monkeypatch):
    for name in (readonly.DB_PASSWORD, "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as refused:
        deploy.run(STACK, ["preview"], ENGINE)
    assert str(refused.value).startswith(f"Stack '{STACK}': no passphrase for its secrets."), refused.value
