"""devenv/workflow_runner.py on small workflows of the tests' own: expressions, outputs, needs,
conditions, environment secrets, and a broken `run:` line failing its job."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from devenv.workflow_runner import WorkflowError, WorkflowRunner, condition, evaluate, render

CONTEXT = {
    "needs": {"plan": {"result": "success", "outputs": {"deploy": '["dev", "staging"]', "any": "true"}}},
    "matrix": {"stack": "dev"},
    "github": {"base_ref": "main", "event": {"pull_request": {"number": 7}}},
    "inputs": {"stack": "prod"},
}
OK = {"success": True, "failure": False, "cancelled": False}
FAILED = {"success": False, "failure": True, "cancelled": False}


@pytest.mark.parametrize("expression, expected", [
    ("contains(fromJSON(needs.plan.outputs.deploy), 'staging')", True),
    ("contains(fromJSON(needs.plan.outputs.deploy), 'prod')", False),
    ("contains(fromJSON(needs.plan.outputs.deploy), matrix.stack)", True),
    ("needs.plan.outputs.any == 'true'", True),
    ("needs.plan.outputs.any != 'true'", False),
    ("!(inputs.stack == 'prod') || github.event.pull_request.number == 7", True),
    ("needs.nope.outputs.x", None),
    ("format('{0}-{1}', matrix.stack, 'x')", "dev-x"),
])
def test_expressions(expression, expected):
    assert evaluate(expression, CONTEXT) == expected


def test_render_keeps_the_type_of_a_lone_expression_and_interpolates_the_rest():
    assert render("${{ fromJSON(needs.plan.outputs.deploy) }}", CONTEXT) == ["dev", "staging"]
    assert render("preview-${{ matrix.stack }} #${{ github.event.pull_request.number }}", CONTEXT) == "preview-dev #7"


def test_conditions_imply_success_unless_they_name_a_status():
    assert condition("needs.plan.outputs.any == 'true'", CONTEXT, OK)
    assert not condition("needs.plan.outputs.any == 'true'", CONTEXT, FAILED)
    assert condition("always()", CONTEXT, FAILED)
    assert not condition("${{ !failure() && !cancelled() }}", CONTEXT, FAILED)
    assert condition(None, CONTEXT, OK) and not condition(None, CONTEXT, FAILED)


def test_an_unknown_function_or_context_is_an_error_not_a_guess():
    with pytest.raises(WorkflowError, match="nope"):
        evaluate("nope()", CONTEXT)
    with pytest.raises(WorkflowError, match="vars2"):
        evaluate("vars2.x", CONTEXT)


WORKFLOW = """
name: w
on: push
env:
  TOP: top
jobs:
  first:
    runs-on: ubuntu-24.04
    environment: dev
    outputs:
      said: ${{ steps.say.outputs.word }}
    steps:
      - uses: actions/checkout@v4.2.2
      - id: say
        run: echo "word=$TOP-${{ secrets.ONLY_DEV }}-$(cat marker)" >> "$GITHUB_OUTPUT"
  second:
    needs: first
    runs-on: ubuntu-24.04
    steps:
      - run: test "${{ needs.first.outputs.said }}" = "top-secret-here" && test -z "${{ secrets.ONLY_DEV }}"
      - run: BROKEN_LINE
      - name: after a failure
        run: echo never
      - name: always
        if: always()
        run: echo "ran anyway"
  third:
    needs: second
    runs-on: ubuntu-24.04
    steps:
      - run: echo "not reached"
"""


def test_a_workflow_runs_in_a_fresh_clone_and_a_broken_run_line_fails_its_job(tmp_path: Path):
    origin = tmp_path / "origin"
    (origin / ".github" / "workflows").mkdir(parents=True)
    (origin / ".github" / "workflows" / "w.yml").write_text(WORKFLOW)
    (origin / "marker").write_text("here")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=origin, check=True)
    subprocess.run([*git, "add", "-A"], cwd=origin, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "w"], cwd=origin, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=origin, check=True, capture_output=True,
                         text=True).stdout.strip()
    (tmp_path / "work").mkdir()
    runner = WorkflowRunner(origin=origin, work=tmp_path / "work", event_name="push", event={"after": sha},
                            github={"sha": sha}, secrets={"dev": {"ONLY_DEV": "secret"}}, action_path=[],
                            base_env=dict(os.environ))
    run = runner.run(origin / ".github" / "workflows" / "w.yml")
    assert run.result("first") == "success", run.jobs["first"][0].steps
    assert run.jobs["first"][0].outputs == {"said": "top-secret-here"}
    second = run.jobs["second"][0]
    assert [step.outcome for step in second.steps] == ["success", "failure", "skipped", "success"]
    assert "BROKEN_LINE" in second.steps[1].output and run.result("second") == "failure"
    assert run.result("third") == "skipped"
    # Each job cloned afresh: nothing of one job's workspace is in another's.
    assert len(list((tmp_path / "work").glob("*-first"))) == 1


def test_a_skipped_jobs_empty_output_is_never_parsed():
    """GitHub short-circuits && and ||: a job whose `needs` failed is skipped without reading
    `fromJSON` of that job's empty output (which would be an error)."""
    context = {"needs": {"plan": {"outputs": {"deploy": ""}}}}
    failed = {"success": False, "failure": True, "cancelled": False}
    assert condition("contains(fromJSON(needs.plan.outputs.deploy), 'dev')", context, failed) is False
    assert evaluate("true || fromJSON(needs.plan.outputs.deploy)", context) is True
    with pytest.raises(ValueError):  # evaluated when not short-circuited
        evaluate("false || fromJSON(needs.plan.outputs.deploy)", context)
