"""The gates of Phases 2, 3 and retirement (dualwrite/phases.py `Gate`, dualwrite/promotion.py `step_gate`)
and which change enters a phase, on real git repositories in temp dirs (no database, no engine: every
database row fails as "could not reach", so what passes or fails is the gate's logic alone)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dualwrite import enforcement, phases, promotion
from dualwrite.config import parse
from tests.unit.test_ci_plan import commit, git
from tests.unit.test_gate_enforcement import FIRST, NEXT, NOW, text, write


def history_in(phase: str, hours: float = 30) -> list[dict]:
    end = (NOW - timedelta(hours=hours)).isoformat()
    return [{"version": 7, "kind": "update", "result": "succeeded", "endTime": end,
             "config": {"habit-tracker-db:phase": {"value": phase}}}]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "Pulumi.yaml").write_text("name: habit-tracker-db\n")
    write(tmp_path, FIRST, text(2))
    write(tmp_path, NEXT, text(1, FIRST))
    commit(tmp_path, "base: first runs phase 2, next phase 1")
    return tmp_path


def test_a_step_up_is_gated_a_step_back_is_not_and_a_skip_fails(repo: Path):
    write(repo, NEXT, text(2, FIRST))
    verdict = enforcement.check(NEXT, "HEAD", repo=repo, now=NOW, history=lambda stack: history_in("2"))
    assert verdict.kind == "enter" and not verdict.passed
    assert f"'{FIRST}' declares phase 2" in [row.name for row in verdict.rows]
    write(repo, NEXT, text(0, FIRST))
    back = enforcement.check(NEXT, "HEAD", repo=repo, now=NOW, history=lambda stack: [])
    assert back.kind == "rollback" and back.passed
    write(repo, NEXT, text(3, FIRST))
    skip = enforcement.check(NEXT, "HEAD", repo=repo, now=NOW, history=lambda stack: history_in("3"))
    assert skip.kind == "enter" and not skip.passed
    assert skip.rows[0].name == "the change moves one phase" and "phase 1 -> 3 skips a step" in skip.rows[0].detail


def test_phase_2s_gate_is_phase_1s_evidence_read_in_phase_1():
    config = parse(FIRST, {"phase": "1", "db_host": "127.0.0.1", "db_port": "1"}, has_password=False)
    rows = promotion.phase_gate(FIRST, now=NOW, history=lambda stack: history_in("1"), config=config,
                                target=phases.BY_KEY["2"])
    names = [row.name for row in rows]
    assert names[0] == f"'{FIRST}' is first in the promotion order" and "its own phase 1" in rows[0].detail
    soak = next(row for row in rows if "stability" in row.name)
    assert soak.ok and "Phase 1 since update 7" in soak.detail
    assert "Drift detection shows at most 0.1% drift" in names and "Logs monitored: no dual-write errors" in names
    assert names[-1].startswith("Team approval required") and not all(row.ok for row in rows)


def test_phase_3s_gate_asks_for_a_quiet_period_on_the_stack_itself():
    config = parse(FIRST, {"phase": "2", "db_host": "127.0.0.1", "db_port": "1", "quiet_period_hours": "48"},
                   has_password=False)
    rows = {row.name: row for row in promotion.phase_gate(
        FIRST, now=NOW, history=lambda stack: history_in("2", hours=30), config=config, target=phases.BY_KEY["3"])}
    period = rows[f"'{FIRST}' in phase 2 for the quiet period"]
    assert not period.ok and "30.00 h of the 48 h asked" in period.detail  # 30 h of Phase 2 is not 48
    assert not rows["Old clients stopped writing habit_tracker"].ok  # unreachable: not proven
    assert {"Drift old -> new is 0", "Drift new -> old is 0"} <= set(rows)


def test_retirements_gate_reads_phase_3_and_drift_both_ways():
    config = parse(FIRST, {"phase": "3", "db_host": "127.0.0.1", "db_port": "1"}, has_password=False)
    rows = promotion.phase_gate(FIRST, now=NOW, history=lambda stack: history_in("3"), config=config,
                                target=phases.BY_KEY["retired"])
    names = [row.name for row in rows]
    assert "24-hour stability test passed (phase 3)" in names
    assert "Drift old -> new is 0" in names and "Drift new -> old is 0" in names
    assert "Old clients stopped writing habit_tracker" not in names
