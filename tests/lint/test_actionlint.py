"""actionlint (pinned, installed by scripts/setup from the Go module proxy) on every workflow."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ACTIONLINT = ROOT / ".tools" / "go" / "bin" / "actionlint"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
pytestmark = pytest.mark.lint


def test_there_are_workflows():
    assert {p.name for p in WORKFLOWS} >= {"pull-request.yml", "deploy.yml", "deploy-stack.yml", "scheduled.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint(workflow: Path):
    assert ACTIONLINT.exists(), "run `bash scripts/setup`: it installs actionlint into .tools/go/bin"
    result = subprocess.run([str(ACTIONLINT), "-color=false", str(workflow)], cwd=ROOT, text=True, capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_run_step_is_an_invoke_task_or_setup(workflow: Path):
    import yaml

    document = yaml.safe_load(workflow.read_text())
    for job in document["jobs"].values():
        for step in job.get("steps", []):
            if "run" in step:
                command = step["run"].strip()
                assert command.startswith(("invoke ", ".venv/bin/invoke ", "bash scripts/setup", "python -m pip install",
                                           ".venv/bin/pytest")), command
            else:
                # Actions are pinned to a release, never a branch.
                assert step["uses"].rsplit("@", 1)[1][:2] == "v" + step["uses"].rsplit("@", 1)[1][1] and "." in step["uses"].rsplit("@", 1)[1], step["uses"]


def test_actionlint_catches_a_broken_workflow(tmp_path: Path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope }}\n")
    result = subprocess.run([str(ACTIONLINT), "-color=false", str(bad)], text=True, capture_output=True)
    assert result.returncode != 0 and "nope" in result.stdout


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_job_has_a_timeout(workflow: Path):
    """GitHub's default is 6 hours; a hung deploy must not hold the stack's lock that long."""
    import yaml

    for name, job in yaml.safe_load(workflow.read_text())["jobs"].items():
        if "uses" not in job:  # a call of a reusable workflow: its own jobs carry the timeout
            assert isinstance(job.get("timeout-minutes"), int), f"{workflow.name}: job {name} has no timeout-minutes"


@pytest.mark.parametrize("workflow", [p for p in WORKFLOWS if p.name != "deploy-stack.yml"], ids=lambda p: p.name)
def test_one_summary_job_needs_every_other_job(workflow: Path):
    """The job named like the workflow is the one required status check: it runs always and needs every job."""
    import yaml

    document = yaml.safe_load(workflow.read_text())
    jobs = document["jobs"]
    summary = jobs.get(document["name"])
    assert summary is not None, f"{workflow.name}: no job named {document['name']!r} (the status check)"
    assert summary["if"] == "always()"
    assert set(summary["needs"]) == set(jobs) - {document["name"]}


def _workflow(name: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def test_deploys_are_never_cancelled_and_plan_from_what_each_stack_deployed():
    """A newer pending run replaces an older pending one (GitHub keeps one per group); that loses nothing
    only because the plan starts from each stack's last deployed commit, not from the push's `before`."""
    deploy = _workflow("deploy.yml")
    assert deploy["concurrency"]["cancel-in-progress"] is False
    plan = " ".join(step.get("run", "") for step in deploy["jobs"]["plan"]["steps"])
    assert "ci-plan --since-deployed" in plan and "github.event.before" not in plan
    stack = " ".join(step.get("run", "") for step in _workflow("deploy-stack.yml")["jobs"]["deploy"]["steps"])
    assert stack.index("gate-recheck") < stack.index("invoke up") < stack.index("record-deployed")


def test_no_pull_request_job_is_handed_a_deploy_secret():
    """The PR's own code runs in these jobs: no stack passphrase, no read-write backend URL (tests/e2e/test_workflows.py
    checks the environment each step ran with)."""
    text = (ROOT / ".github" / "workflows" / "pull-request.yml").read_text()
    for secret in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_BACKEND_URL", "inherit"):
        assert secret not in text, secret
