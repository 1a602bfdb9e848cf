"""What `invoke --list`, `invoke --help TASK` and a user's mistakes show (issue 17, item 12;
issue 18: one error boundary). Each task runs as a user runs it: `invoke` in a subprocess, on a
stack name that has no file, so nothing is reached; none of these touches stack local."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Collection

import tasks
from dualwrite import config as stack_config

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = Collection.from_module(tasks)
NO_SUCH_STACK = "no-such-stack-of-the-tests"


def invoke(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "invoke"), *args], cwd=ROOT, text=True, input=stdin,
                          capture_output=True, timeout=120)


def one_paragraph(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    message = result.stdout + result.stderr
    assert result.returncode != 0, message
    assert "Traceback" not in message, message
    for text in expected:
        assert text in message, message
    return message


@pytest.mark.parametrize("name", sorted(COLLECTION.task_names))
def test_list_shows_a_whole_first_line(name):
    """`invoke --list` shows a docstring's first line only: it must be the whole first paragraph."""
    doc = inspect.getdoc(COLLECTION[name].body) or ""
    first_paragraph = doc.split("\n\n")[0]
    assert first_paragraph and "\n" not in first_paragraph, (name, first_paragraph)


@pytest.mark.parametrize("name", sorted(COLLECTION.task_names))
def test_help_documents_every_option(name):
    task = COLLECTION[name]
    options = [p for p in inspect.signature(task.body).parameters if p != "c"]
    assert not [o for o in options if not task.help.get(o)], (name, task.help)


def test_help_phase_documents_n():
    shown = invoke("--help", "phase").stdout
    assert "-n STRING" in shown and "0 (log only), 1 (sync old to new), 2 (both directions), 3 (contract) or retired" in " ".join(shown.split())


@pytest.mark.parametrize("size", ["-5", "0", "abc", "1000001"])
def test_backfill_refuses_a_batch_size_out_of_range(size):
    one_paragraph(invoke("backfill", "--batch-size", size, "--stack", NO_SUCH_STACK),
                  f"backfill --batch-size {size} is not allowed", "from 1 to 1000000", "nothing was changed")


def test_post_comment_without_its_file():
    one_paragraph(invoke("post-comment", "--stack", "dev", "--file", "/nonexistent/comment.md"),
                  "post-comment --file /nonexistent/comment.md: no such file", "invoke pr-comment --stack dev",
                  "nothing was posted")


@pytest.mark.parametrize("args", [
    ("up",), ("preview",), ("smoke-test",), ("monitor",), ("drift",), ("cleanup",), ("db-url",),
    ("rollback", "--level", "all", "--yes"), ("pr-comment",), ("promotion-check",), ("phase", "1"),
    ("refresh",), ("destroy",), ("stack-init",), ("policy",),
])
def test_every_task_reports_a_missing_stack_file_as_one_paragraph(args):
    """The error boundary: any task, one paragraph naming the stack and its file."""
    one_paragraph(invoke(*args, "--stack", NO_SUCH_STACK), f"Pulumi.{NO_SUCH_STACK}.yaml does not exist")


def test_stack_init_refuses_local():
    one_paragraph(invoke("stack-init", "--stack", "local"), "Stack 'local' is the embedded database",
                  "nothing was changed")


def test_no_password_hint_is_plain_text():
    """Every hint for the password names `invoke stack-init`, which never echoes or takes it as an argument."""
    missing = pytest.raises(stack_config.ConfigError, stack_config.parse, "dev",
                            {"phase": "0", "db_host": "db.x.supabase.co"}, has_password=False)
    hints = [str(missing.value)]
    for stack in ("dev", "staging", "prod"):
        header = (ROOT / f"Pulumi.{stack}.yaml").read_text().split("config:")[0]
        hints.append(header)
        assert f"invoke stack-init --stack {stack}" in header
    assert "invoke stack-init --stack dev" in hints[0]
    for hint in hints:
        assert "config set" not in hint, hint


def test_phase_moves_one_step_at_a_time_and_changes_nothing_otherwise():
    before = (ROOT / "Pulumi.local.yaml").read_text()
    one_paragraph(invoke("phase", "2", "--stack", "local"),
                  "Stack 'local': phase 0 -> 2 skips a step", "0 -> 1 -> 2 -> 3 -> retired", "next up: 1",
                  "Nothing changed.")
    one_paragraph(invoke("phase", "4", "--stack", "local"), "allowed: 0 (log only) | 1 (sync old to new)",
                  "| retired")
    assert (ROOT / "Pulumi.local.yaml").read_text() == before
