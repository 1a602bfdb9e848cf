"""`invoke up` drops only the engine's lines that report nothing (lines from real runs)."""

from __future__ import annotations

import pytest

from devenv.display import quiet

SILENT = [
    " ~  pulumi-python:dynamic/migration013:Index idx_idempotency_expires refreshing (0s) \n",
    " ~  pulumi-python:dynamic/migration013:Table idempotency_log refresh (0.25s) \n",
    " ~  habit-tracker-db:migration013:Migration migration-013 refresh (0.00s) \n",
    "    pulumi:pulumi:Stack habit-tracker-db-e2e-21322-1 running \n",
    "    pulumi-python:dynamic/migration013:Function cleanup_idempotency_log  \n",
]
KEPT = [
    " ~  pulumi-python:dynamic/migration013:Function cleanup_idempotency_log refresh (0.25s) [diff: ~checksum]\n",
    " ~  pulumi-python:dynamic/migration013:Function cleanup_idempotency_log updated (0.02s) [diff: ~checksum]\n",
    " +  pulumi-python:dynamic/migration013:Table idempotency_log created (0.04s) \n",
    " -  pulumi-python:dynamic/migration013:Table idempotency_log deleting (0s) \n",
    "    pulumi:pulumi:Stack (habit-tracker-db-e2e-1):\n",
    "    error: Stack 'x' (Pulumi.x.yaml): config key 'habit-tracker-db:phsae' is not one this project reads\n",
    "@ updating....\n", "Resources:\n", "    22 unchanged\n", "Updating (dev):\n", "\n",
]


@pytest.mark.parametrize("line", SILENT)
def test_lines_that_report_nothing_are_dropped(line):
    assert quiet(line) == ""


@pytest.mark.parametrize("line", KEPT)
def test_every_other_line_stays(line):
    assert quiet(line) == line
