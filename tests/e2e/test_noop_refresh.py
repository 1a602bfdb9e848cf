"""A no-op `invoke up` is short and its refresh shows no diff: read() hands back every input that
create() was given (a table's `columns`, the grants' `declared`, the backfill's `kind`, an adopted
object's `adopt`), so the engine sees nothing removed or added on an unchanged stack."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.db]


def test_refresh_of_an_unchanged_stack_shows_no_diff(e2e_stack):
    stack = e2e_stack()
    stack.invoke("up")
    stack.set("phase", "1")  # every kind: tables, grants, backfill, the pg_cron extension (adopted)
    stack.invoke("up")
    for _ in range(2):  # the second no-op up too: inputs recorded by the first must read back the same
        again = stack.invoke("up")
        assert "[diff:" not in again.stdout, again.stdout
        # Every resource unchanged, none updated or replaced, and no outputs block.
        assert re.search(r"^    \d+ unchanged$", again.stdout, re.M) and "Outputs:" not in again.stdout, again.stdout
        assert not re.search(r"^    [~+-]?\d+ to ", again.stdout, re.M), again.stdout
        assert len(again.stdout.splitlines()) <= 12, again.stdout  # a short summary (77 lines before)
        assert f"stack '{stack.name}' deployed: phase 1, dual_write enabled" in again.stdout
    plain = stack.pulumi("up", "--yes", "--refresh", "--skip-preview")  # `pulumi up` after source scripts/activate
    assert "[diff:" not in plain.stdout, plain.stdout
    refresh = stack.pulumi("refresh", "--yes", "--skip-preview", "--diff")
    assert "[diff:" not in refresh.stdout and "(update)" not in refresh.stdout, refresh.stdout
