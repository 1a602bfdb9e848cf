"""The gate's rows that need no database: the soak read from stack history, team approval, config."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from devenv.stack_engine import ENGINE
from dualwrite import gate
from dualwrite.config import ConfigError, parse

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def config(**raw: str):
    return parse("staging", {"phase": "0", "db_host": "127.0.0.1", "promotes_from": "dev", **raw}, has_password=False)


def update(version: int, hours_ago: float, phase: str, kind: str = "update", result: str = "succeeded",
           dual_write: str | None = None) -> dict:
    cfg = {"habit-tracker-db:phase": {"value": phase, "secret": False}}
    if dual_write:
        cfg["habit-tracker-db:dual_write"] = {"value": dual_write, "secret": False}
    end = (NOW - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")
    return {"version": version, "kind": kind, "result": result, "endTime": end, "startTime": end, "config": cfg}


def test_soak_counts_from_the_first_update_of_the_current_phase_1_run():
    history = [update(5, 1, "1"), update(4, 2, "1", kind="refresh"), update(3, 30, "1"), update(2, 40, "0"),
               update(1, 50, "1")]
    since, version = gate.phase1_since(history)
    assert version == 3 and since == NOW - timedelta(hours=30)
    row = gate.soak("dev", history, config(), NOW)
    assert row.ok and "Phase 1 since update 3" in row.detail and "30.00 h of the 24 h" in row.detail


def test_soak_not_met_and_broken_runs():
    assert not gate.soak("dev", [update(2, 3, "1"), update(1, 9, "0")], config(), NOW).ok
    assert gate.soak("dev", [update(2, 3, "1"), update(1, 9, "0")], config(soak_hours="2.5"), NOW).ok
    # A failed update does not count; going back to 0, a rollback or a destroy ends the run.
    assert gate.phase1_since([update(2, 1, "1", result="failed"), update(1, 30, "0")]) == (None, None)
    assert gate.phase1_since([update(2, 1, "1", dual_write="disabled"), update(1, 30, "1")]) == (None, None)
    assert gate.phase1_since([update(2, 1, "0", kind="destroy"), update(1, 30, "1")]) == (None, None)
    row = gate.soak("dev", [], config(), NOW)
    assert not row.ok and "no successful Phase 1 update" in row.detail
    assert "could not read" in gate.soak("dev", None, config(), NOW, "EngineError: no stack").detail


def test_approval_reads_codeowners(tmp_path: Path):
    assert not gate.approval(config(), tmp_path).ok
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "CODEOWNERS").write_text("* @org/everyone\n# stack files\n/Pulumi.*.yaml @org/db-owners\n")
    row = gate.approval(config(), tmp_path)
    assert row.ok and "line 3" in row.detail and "@org/db-owners" in row.detail
    (tmp_path / ".github" / "CODEOWNERS").write_text("/sql/ @org/db-owners\n")
    assert not gate.approval(config(), tmp_path).ok


def test_edge_function_waiver_is_printed():
    row = gate.edge_function(None, config(edge_function_waiver="no Edge Function in staging: writes come from the app"))
    assert row.ok and row.detail.startswith("WAIVED by Pulumi.staging.yaml") and "writes come from the app" in row.detail
    assert not gate.edge_function(None, config(), "OperationalError: refused").ok


@pytest.mark.parametrize("key,value,allowed", [
    ("soak_hours", "-1", "hours from 0 to 720"), ("soak_hours", "a day", "hours from 0 to 720"),
    ("max_dual_write_errors", "1.5", "a whole number"), ("perf_max_mean_ms", "0", "milliseconds above 0"),
    ("edge_function_waiver", "no", "a reason of at least 10 characters"),
])
def test_gate_keys_are_checked_like_every_key(key, value, allowed):
    with pytest.raises(ConfigError) as error:
        config(**{key: value})
    message = str(error.value)
    assert f"'habit-tracker-db:{key}'" in message and "Pulumi.staging.yaml" in message and allowed in message


def test_gate_key_defaults():
    parsed = config()
    assert (parsed.soak_hours, parsed.max_dual_write_errors, parsed.perf_max_mean_ms, parsed.edge_function_waiver) == (
        24.0, 0, 5.0, None)


def test_approval_row_says_what_it_checks(tmp_path: Path):
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "CODEOWNERS").write_text("/Pulumi.*.yaml @org/db-owners\n")
    row = gate.approval(config(), tmp_path)
    assert row.name == "Team approval required: CODEOWNERS names the stack file's reviewers"
    assert "it does not see the review" in row.detail


def test_every_row_is_evaluated_when_the_first_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The stack before is still in Phase 0 and its database cannot be reached: every row is still
    there, each failing with what it read, instead of the gate stopping after its first row."""
    from dualwrite import config as stack_config, promotion

    with socket.socket() as probe:  # a port nothing listens on: both databases are unreachable
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    for stack, extra in (("gate-prev", ""), ("gate-next", "  habit-tracker-db:promotes_from: gate-prev\n")):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(
            f"config:\n  habit-tracker-db:phase: \"{'0' if stack == 'gate-prev' else '1'}\"\n{extra}"
            f"  habit-tracker-db:db_host: 127.0.0.1\n  habit-tracker-db:db_port: \"{port}\"\n"
            "  habit-tracker-db:db_sslmode: disable\n")
    read, load = stack_config.read_stack_file, stack_config.load
    monkeypatch.setattr(stack_config, "read_stack_file", lambda stack, root=tmp_path: read(stack, tmp_path))
    monkeypatch.setattr(stack_config, "load", lambda stack, root=tmp_path: load(stack, tmp_path))

    rows = promotion.phase_gate("gate-next", engine=ENGINE, now=NOW, history=lambda stack: [update(1, 30, "0")])
    names = [row.name for row in rows]
    assert names == ["'gate-prev' declares phase 1", "Edge Function deployed and tested", "'gate-prev' smoke test passes",
                     "24-hour stability test passed", "Drift detection shows at most 0.1% drift",
                     "Performance baseline acceptable", "Logs monitored: no dual-write errors",
                     "Team approval required: CODEOWNERS names the stack file's reviewers"]
    assert not any(row.ok for row in rows[:7])
    assert "phase=0" in rows[0].detail and "no successful Phase 1 update" in rows[3].detail
    assert all("could not reach 'gate-prev'" in row.detail for row in rows[4:7])
