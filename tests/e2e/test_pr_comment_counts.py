"""`invoke pr-comment` and `invoke preview` count the same resources (issue 17, item 12): the
comment's plan line is the engine's own summary, on a new stack and on a phase change."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.db]


def preview_counts(stdout: str) -> tuple[dict[str, int], int]:
    block = stdout[stdout.rindex("Resources:"):]
    changes = {op: int(n) for n, op in re.findall(r"^\s*[-+~]*\s*(\d+) to (\w+)$", block, re.M)}
    same = re.search(r"(\d+) unchanged", block)
    return changes, int(same.group(1)) if same else 0


def comment_counts(stdout: str) -> tuple[dict[str, int], int]:
    plan = re.search(r"Plan: \*\*(.*?)\*\* \((\d+) unchanged\)", stdout)
    assert plan, stdout[:2000]
    changes = {op: int(n) for n, op in re.findall(r"(\d+) to (\w+)", plan.group(1).split(";")[0])}
    return changes, int(plan.group(2))


def test_comment_and_preview_agree(e2e_stack):
    stack = e2e_stack()
    for step in ("new stack", "phase 1"):
        if step == "phase 1":
            stack.invoke("up")
            stack.set("phase", "1")
        preview = preview_counts(stack.invoke("preview").stdout)
        assert preview[0], step
        assert comment_counts(stack.invoke("pr-comment").stdout) == preview, step
