"""The gate as CI enforces it, on real git repositories in temp dirs (no database, no engine):
thresholds from the base branch, call-outs, rollbacks never blocked, the --force trace, the
first shared stack's own evidence, the chain that never starts at `local`, and the deploy plan
from each stack's recorded commit."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from devenv.stack_engine import ENGINE
from dualwrite import ci_plan, enforcement, gate, gate_inputs, pr_comment, promotion
from dualwrite.config import ConfigError, parse
from tests.unit.test_ci_plan import commit, git

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
# Stack names no checkout has a file for, on a port nothing listens on: every database row fails
# as "could not reach", so what passes or fails below is the gate's logic alone.
FIRST, NEXT = "ut-first", "ut-next"


def text(phase: int, promotes_from: str | None = None, **extra: str) -> str:
    lines = ["config:", f'  habit-tracker-db:phase: "{phase}"', "  habit-tracker-db:db_host: 127.0.0.1",
             '  habit-tracker-db:db_port: "1"', "  habit-tracker-db:db_sslmode: disable"]
    if promotes_from:
        lines.append(f"  habit-tracker-db:promotes_from: {promotes_from}")
    lines += [f"  habit-tracker-db:{k}: {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def write(repo: Path, stack: str, body: str) -> None:
    (repo / f"Pulumi.{stack}.yaml").write_text(body)


def phase1_history(stack: str) -> list[dict]:
    end = (NOW - timedelta(hours=30)).isoformat()
    return [{"version": 1, "kind": "update", "result": "succeeded", "endTime": end,
             "config": {"habit-tracker-db:phase": {"value": "1"}}}]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "Pulumi.yaml").write_text("name: habit-tracker-db\n")
    write(tmp_path, FIRST, text(1, drift_threshold="0.1"))
    write(tmp_path, NEXT, text(0, FIRST, soak_hours="24"))
    commit(tmp_path, "base: first runs phase 1, next waits")
    return tmp_path


def test_thresholds_come_from_the_base_branch_and_changes_are_called_out(repo: Path):
    # The PR flips next to Phase 1 and, in the same diff, loosens every gate input it can reach.
    write(repo, NEXT, text(1, FIRST, soak_hours="0.001", max_dual_write_errors="50", perf_max_mean_ms="900",
                           edge_function_waiver="no Edge Function, trust me"))
    write(repo, FIRST, text(1, drift_threshold="99"))
    commit(repo, "next: phase 1, gate loosened")
    inputs = gate_inputs.read(NEXT, "HEAD~1", "HEAD", repo)
    assert inputs.transition.kind == "enter"
    target, previous = inputs.target, inputs.previous
    assert (target.soak_hours, target.max_dual_write_errors, target.perf_max_mean_ms) == (24, 0, 5)
    assert target.edge_function_waiver is None and target.phase == 1
    assert previous is not None and previous.drift_threshold == 0.1
    called = "\n".join(inputs.callouts)
    assert "`habit-tracker-db:soak_hours`: 24 -> 0.001 (the gate uses 24, from HEAD~1)" in called
    for key in ("max_dual_write_errors", "perf_max_mean_ms", "edge_function_waiver"):
        assert f"`habit-tracker-db:{key}`" in called
    # The previous stack's drift_threshold is read at the base too, and its change called out here.
    assert "Pulumi.ut-first.yaml changes gate input `habit-tracker-db:drift_threshold`: 0.1 -> 99" in called
    assert any("drift_threshold`: 0.1 -> 99" in line for line in gate_inputs.read(FIRST, "HEAD~1", "HEAD", repo).callouts)

    # The gate itself runs with 24 h: 30 h of history passes, 3 h would not.
    verdict = enforcement.check(NEXT, "HEAD~1", "HEAD", engine=ENGINE, repo=repo, now=NOW, history=phase1_history)
    soak = next(row for row in verdict.rows if "stability" in row.name)
    assert soak.name.startswith("24-hour") and soak.ok
    assert not verdict.passed  # the unreachable databases fail their rows


def test_promotes_from_cannot_be_rewritten_by_the_pr(repo: Path):
    write(repo, NEXT, text(1))  # drops its predecessor: would make it "first"
    commit(repo, "next: phase 1, no predecessor")
    inputs = gate_inputs.read(NEXT, "HEAD~1", "HEAD", repo)
    assert inputs.target.promotes_from == FIRST
    assert any("promotes_from`: ut-first -> (none)" in line for line in inputs.callouts)


@pytest.mark.parametrize("after", [text(0, FIRST), text(1, FIRST, dual_write="disabled"),
                                   text(1, FIRST, dual_write="removed")])
def test_a_rollback_is_never_blocked(repo: Path, after: str):
    write(repo, NEXT, text(1, FIRST))
    commit(repo, "next runs phase 1")
    write(repo, NEXT, after)
    commit(repo, "roll back")

    def unreachable(stack: str) -> list[dict]:
        raise AssertionError("a rollback must not read the gate's evidence")

    verdict = enforcement.check(NEXT, "HEAD~1", "HEAD", engine=ENGINE, repo=repo, now=NOW, history=unreachable)
    assert verdict.kind == "rollback" and verdict.passed
    # With no base (a laptop's `invoke promotion-check`), a stack that does not run Phase 1 is not gated either.
    assert enforcement.check(NEXT, None, "HEAD", engine=ENGINE, repo=repo, history=unreachable).passed
    assert [row.name for row in verdict.rows] == ["a rollback is never blocked by the promotion gate"]
    assert "phase 1, dual_write enabled ->" in verdict.rows[0].detail


def test_a_flip_fails_without_an_override_and_passes_with_the_new_one(repo: Path):
    write(repo, NEXT, text(1, FIRST, soak_hours="24"))
    commit(repo, "next: phase 1")
    assert not enforcement.check(NEXT, "HEAD~1", "HEAD", engine=ENGINE, repo=repo, now=NOW,
                                 history=phase1_history).passed
    write(repo, NEXT, text(1, FIRST, soak_hours="24", gate_override="incident 42: staging must match prod today"))
    commit(repo, "next: phase 1 with override")
    verdict = enforcement.check(NEXT, "HEAD~2", "HEAD", engine=ENGINE, repo=repo, now=NOW, history=phase1_history)
    assert verdict.passed and verdict.overridden
    assert verdict.callouts[0].startswith("GATE OVERRIDDEN by Pulumi.ut-next.yaml")
    assert verdict.rows[-1].name.startswith("OVERRIDDEN") and "incident 42" in verdict.rows[-1].detail
    assert any(not row.ok for row in verdict.rows)  # the failed rows stay visible


def test_a_stale_override_is_not_honored_again(repo: Path):
    stale = "incident 42: staging must match prod today"
    write(repo, NEXT, text(0, FIRST, gate_override=stale))  # rolled back by hand, the line left behind
    commit(repo, "next back to 0, override left")
    write(repo, NEXT, text(1, FIRST, gate_override=stale))
    commit(repo, "next: phase 1 again")
    verdict = enforcement.check(NEXT, "HEAD~1", "HEAD", engine=ENGINE, repo=repo, now=NOW, history=phase1_history)
    assert not verdict.passed and not verdict.overridden
    assert any("is not honored again" in line for line in verdict.callouts)


def test_phase_force_writes_the_override_and_the_next_phase_change_drops_it(tmp_path: Path):
    write(tmp_path, NEXT, "# comment kept\n" + text(0, FIRST))
    reason = 'incident #42: "prod" needs it: now'
    edit = promotion.declare_phase(NEXT, 1, reason, root=tmp_path)
    assert f"+  habit-tracker-db:gate_override: {json.dumps(reason)}" in edit.diff()
    assert '+  habit-tracker-db:phase: "1"' in edit.diff()
    from dualwrite.config import read_stack_file

    assert read_stack_file(NEXT, tmp_path)["gate_override"] == reason  # valid YAML, the exact reason
    dropped = promotion.declare_phase(NEXT, 0, root=tmp_path)
    assert "-  habit-tracker-db:gate_override:" in dropped.diff()
    assert "gate_override" not in (tmp_path / f"Pulumi.{NEXT}.yaml").read_text()
    assert (tmp_path / f"Pulumi.{NEXT}.yaml").read_text().startswith("# comment kept\n")
    with pytest.raises(ConfigError, match="at least 10 characters"):
        promotion.declare_phase(NEXT, 1, "because", root=tmp_path)
    assert '"0"' in (tmp_path / f"Pulumi.{NEXT}.yaml").read_text()  # nothing written


def test_the_first_shared_stack_reads_its_own_phase_0():
    config = parse(FIRST, {"phase": "0", "db_host": "127.0.0.1", "db_port": "1", "soak_hours": "24"},
                   has_password=False)
    end = (NOW - timedelta(hours=30)).isoformat()
    history = [{"version": 2, "kind": "update", "result": "succeeded", "endTime": end,
                "config": {"habit-tracker-db:phase": {"value": "0"}}}]
    rows = promotion.phase_gate(FIRST, engine=ENGINE, now=NOW, history=lambda stack: history, config=config)
    names = [row.name for row in rows]
    assert names[0] == f"'{FIRST}' is first in the promotion order" and "own Phase 0" in rows[0].detail
    soak = next(row for row in rows if "stability" in row.name)
    assert soak.ok and "Phase 0 since update 2" in soak.detail and f"of '{FIRST}'" in soak.detail
    assert any(name.startswith(f"'{FIRST}' smoke test") and not row.ok for name, row in zip(names, rows))
    assert gate.phase_since(history, "1") == (None, None)
    # The embedded stack alone keeps "nothing to wait for".
    local = parse("local", {"phase": "0", "db_host": "127.0.0.1"}, has_password=False)
    assert [row.ok for row in promotion.phase_gate("local", engine=ENGINE, config=local)] == [True]


def test_a_shared_stack_never_promotes_from_local(repo: Path):
    write(repo, "local", text(0))
    write(repo, "dev", text(0, "local"))
    head = commit(repo, "dev after local")
    with pytest.raises(ConfigError) as error:
        ci_plan.plan("HEAD~1", head, repo)
    message = str(error.value)
    assert "Stack 'dev' (Pulumi.dev.yaml)" in message and "'local'" in message and "CI cannot read" in message
    config = parse("dev", {"phase": "0", "db_host": "127.0.0.1", "promotes_from": "local"}, has_password=False)
    rows = promotion.phase_gate("dev", engine=ENGINE, config=config)
    assert len(rows) == 1 and not rows[0].ok and "embedded stack on a laptop" in rows[0].detail


def test_deploy_plan_starts_at_each_stacks_recorded_commit(repo: Path):
    first_deployed = git(repo, "rev-parse", "HEAD")
    (repo / "sql").mkdir()
    (repo / "sql" / "x.sql").write_text("SELECT 1;\n")
    commit(repo, "sql")  # the push whose deploy was superseded
    write(repo, NEXT, text(1, FIRST))
    head = commit(repo, "next: phase 1")
    deployed = {FIRST: first_deployed, NEXT: head, "ut-new": None, "ut-gone": "0" * 40}
    write(repo, "ut-new", text(0, NEXT))
    write(repo, "ut-gone", text(0, "ut-new"))
    head = commit(repo, "two more stacks")
    deployed[NEXT] = git(repo, "rev-parse", "HEAD~1")
    result = ci_plan.plan_since_deployed(deployed, head, repo)
    by_name = {s.stack: s for s in result.stacks}
    # FIRST skipped the sql commit's deploy: it is still in its diff.
    assert by_name[FIRST].since == first_deployed and "sql/x.sql" in by_name[FIRST].reasons
    assert not by_name[FIRST].phase_change
    assert NEXT not in by_name  # nothing changed for it since its record
    assert "no deployed commit recorded" in by_name["ut-new"].note
    assert "not in this clone" in by_name["ut-gone"].note
    assert result.deploy == [FIRST, "ut-new", "ut-gone"]
    outputs = dict(line.split("=", 1) for line in ci_plan.github_outputs(result).splitlines())
    assert json.loads(outputs["bases"]) == {FIRST: first_deployed, "ut-new": "", "ut-gone": ""}
    assert "touched since" in result.text() and "no deployed commit recorded" in result.text()
    assert by_name["ut-new"].status == "phase 0, nothing recorded"


def test_a_flip_missed_by_a_superseded_deploy_is_still_a_phase_change(repo: Path):
    base = git(repo, "rev-parse", "HEAD")
    write(repo, NEXT, text(1, FIRST))
    commit(repo, "next: phase 1")  # its deploy never ran
    (repo / "README.md").write_text("docs\n")
    head = commit(repo, "docs")  # github.event.before would be the flip: nothing to deploy
    assert ci_plan.plan("HEAD~1", head, repo).deploy == []
    result = ci_plan.plan_since_deployed({FIRST: head, NEXT: base}, head, repo)
    assert result.deploy == [NEXT] and result.phase_changes == [NEXT]


def test_pr_comment_puts_the_call_outs_first():
    config = parse(NEXT, {"phase": "1", "db_host": "127.0.0.1"}, has_password=False)
    rendered = pr_comment.render(config, {"steps": []}, None, callouts=["GATE OVERRIDDEN by Pulumi.ut-next.yaml: x"])
    lines = rendered.splitlines()
    assert lines[0].startswith("<!-- habit-tracker-db:pr-comment")
    assert lines[1] == "> **Promotion gate call-out:** GATE OVERRIDDEN by Pulumi.ut-next.yaml: x"
    assert pr_comment.render(config, {"steps": []}, None).splitlines()[1].startswith("## Stack")


def test_a_deploy_with_no_record_reads_what_the_stack_runs_from_its_history():
    def history(phase: str, dual_write: str = "enabled") -> list[dict]:
        return [{"version": 3, "kind": "update", "result": "succeeded", "endTime": NOW.isoformat(),
                 "config": {"habit-tracker-db:phase": {"value": phase},
                            "habit-tracker-db:dual_write": {"value": dual_write}}},
                {"version": 4, "kind": "update", "result": "failed", "endTime": NOW.isoformat(), "config": {}}]

    running = enforcement.running_from_history(NEXT, lambda stack: history("1"))
    assert running is not None and gate_inputs.runs_phase1(running)
    assert not gate_inputs.runs_phase1(enforcement.running_from_history(NEXT, lambda stack: history("1", "disabled")))
    assert enforcement.running_from_history(NEXT, lambda stack: []) is None
