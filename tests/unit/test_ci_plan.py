"""ci-plan on real git repositories made in a temp dir: touched stacks, order, phase changes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dualwrite import ci_plan
from dualwrite.config import ConfigError

# dev is first: `local` is a laptop's and never a shared stack's predecessor.
STACKS = {"local": None, "dev": None, "staging": "dev", "prod": "staging"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout.strip()


def stack_text(phase: int, promotes_from: str | None, **extra: str) -> str:
    lines = ["config:", f'  habit-tracker-db:phase: "{phase}"', "  habit-tracker-db:db_host: 127.0.0.1"]
    if promotes_from:
        lines.append(f"  habit-tracker-db:promotes_from: {promotes_from}")
    lines += [f"  habit-tracker-db:{k}: {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "Pulumi.yaml").write_text("name: habit-tracker-db\n")
    (tmp_path / "README.md").write_text("readme\n")
    (tmp_path / "sql" / "013").mkdir(parents=True)
    (tmp_path / "sql" / "013" / "idempotency_log.sql").write_text("CREATE TABLE t ();\n")
    for stack, before in STACKS.items():
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(stack_text(0, before))
    commit(tmp_path, "base")
    return tmp_path


def test_phase_line_touches_one_stack_and_is_a_phase_change(repo: Path):
    (repo / "Pulumi.dev.yaml").write_text(stack_text(1, None))
    head = commit(repo, "dev to phase 1")
    result = ci_plan.plan("HEAD~1", head, repo)
    assert result.order == ["local", "dev", "staging", "prod"]
    assert [(s.stack, s.phase_before, s.phase_after, s.phase_change) for s in result.stacks] == [("dev", 0, 1, True)]
    assert result.deploy == ["dev"] and result.phase_changes == ["dev"]
    assert "dev: phase 0 -> 1 PHASE CHANGE" in result.text()


def test_sql_change_touches_every_stack_in_promotion_order(repo: Path):
    (repo / "sql" / "013" / "idempotency_log.sql").write_text("CREATE TABLE t (id int);\n")
    (repo / "README.md").write_text("changed\n")
    head = commit(repo, "sql")
    result = ci_plan.plan("HEAD~1", head, repo)
    assert [s.stack for s in result.stacks] == ["local", "dev", "staging", "prod"]
    assert not result.phase_changes
    assert all(s.reasons == ["sql/013/idempotency_log.sql"] for s in result.stacks)
    # The embedded stack is planned but never deployed by CI.
    assert result.deploy == ["dev", "staging", "prod"]


@pytest.mark.parametrize("path", ["infra/__main__.py", "dualwrite/objects/table.py", "Pulumi.yaml", "requirements.txt"])
def test_program_library_and_pins_touch_every_stack(repo: Path, path: str):
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text("changed\n")
    result = ci_plan.plan("HEAD~1", commit(repo, path), repo)
    assert [s.stack for s in result.stacks] == ["local", "dev", "staging", "prod"]


def test_docs_only_touch_nothing(repo: Path):
    (repo / "README.md").write_text("changed\n")
    (repo / "tasks.py").write_text("# tasks\n")
    result = ci_plan.plan("HEAD~1", commit(repo, "docs"), repo)
    assert result.stacks == [] and result.deploy == []
    assert "no stack is touched" in result.text()


def test_other_keys_touch_the_stack_without_a_phase_change(repo: Path):
    (repo / "Pulumi.staging.yaml").write_text(stack_text(0, "dev", lock_timeout="5s"))
    (repo / "Pulumi.prod.yaml").write_text(stack_text(1, "staging"))
    result = ci_plan.plan("HEAD~1", commit(repo, "two stacks"), repo)
    assert [(s.stack, s.phase_change) for s in result.stacks] == [("staging", False), ("prod", True)]
    data = json.loads(ci_plan.render(result, as_json=True))
    assert data["deploy"] == ["staging", "prod"] and data["phase_changes"] == ["prod"]
    assert data["stacks"][1]["status"] == "phase 0 -> 1"


def test_diff_is_from_the_merge_base_like_a_pull_request(repo: Path):
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "Pulumi.dev.yaml").write_text(stack_text(1, None))
    head = commit(repo, "dev to 1")
    git(repo, "checkout", "-q", "main")
    (repo / "Pulumi.prod.yaml").write_text(stack_text(0, "staging", lock_timeout="4s"))
    commit(repo, "main moved on")
    result = ci_plan.plan("main", head, repo)
    assert [s.stack for s in result.stacks] == ["dev"]


def test_new_and_removed_stacks(repo: Path):
    (repo / "Pulumi.qa.yaml").write_text(stack_text(0, "dev"))
    (repo / "Pulumi.local.yaml").unlink()
    (repo / "Pulumi.dev.yaml").write_text(stack_text(0, None))
    result = ci_plan.plan("HEAD~1", commit(repo, "qa"), repo)
    by_name = {s.stack: s for s in result.stacks}
    assert by_name["qa"].status == "new" and by_name["local"].status == "removed"
    assert result.order.index("dev") < result.order.index("qa")
    assert "local" not in result.deploy


def test_bad_value_at_head_names_the_stack_and_the_key(repo: Path):
    (repo / "Pulumi.dev.yaml").write_text(stack_text(7, None))  # phases: 0 .. 3, retired
    with pytest.raises(ConfigError) as error:
        ci_plan.plan("HEAD~1", commit(repo, "bad"), repo)
    assert "Stack 'dev' (Pulumi.dev.yaml)" in str(error.value) and "habit-tracker-db:phase" in str(error.value)


def test_cycle_and_unknown_ref_are_one_paragraph(repo: Path):
    (repo / "Pulumi.dev.yaml").write_text(stack_text(0, "prod"))
    head = commit(repo, "cycle")
    with pytest.raises(ci_plan.PlanError, match="form a cycle"):
        ci_plan.plan("HEAD~1", head, repo)
    with pytest.raises(ci_plan.PlanError, match="'no-such-ref' is not a commit"):
        ci_plan.plan("no-such-ref", head, repo)
