"""The PR comment a reviewer approves from, rendered from preview steps of the program's own
resources (Pulumi's mocks run infra/__main__.py, as tests/unit/test_program_shape.py does)."""

from __future__ import annotations

from typing import Any

import pytest

from dualwrite import pr_comment
from dualwrite.backfill_estimate import Estimate, rate_for
from dualwrite.catalog import by_name
from dualwrite.config import parse
from dualwrite.smoke import Check
from tests.bench_runs import default_and_full
from tests.unit.test_program_shape import run_program

STACK_TYPE = "pulumi:pulumi:Stack"


def config(phase: str = "1"):
    return parse("staging", {"phase": phase, "db_host": "127.0.0.1", "promotes_from": "dev"}, has_password=False)


def resources(phase: str) -> dict[str, tuple[str, dict[str, Any]]]:
    return {r.name: (r.typ, dict(r.inputs)) for r in run_program(phase=phase).resources
            if r.typ.startswith("pulumi-python:dynamic")}


def step(op: str, name: str, typ: str, new: dict | None, old: dict | None) -> dict[str, Any]:
    return {"op": op, "urn": f"urn:pulumi:staging::habit-tracker-db::{typ}::{name}",
            "newState": {"type": typ, "inputs": new} if new is not None else None,
            "oldState": {"type": typ, "inputs": old} if old is not None else None}


def fresh_preview(phase: str = "1") -> dict[str, Any]:
    steps = [{"op": "create", "urn": "urn:pulumi:staging::habit-tracker-db::pulumi:pulumi:Stack::x",
              "newState": {"type": STACK_TYPE, "outputs": {}}}]
    steps += [step("create", name, typ, inputs, None) for name, (typ, inputs) in resources(phase).items()]
    return {"steps": steps}


def upgrade_preview(before: str, after: str) -> dict[str, Any]:
    old, new = resources(before), resources(after)
    steps = [{"op": "same", "urn": "urn:pulumi:staging::habit-tracker-db::pulumi:pulumi:Stack::x",
              "oldState": {"type": STACK_TYPE, "outputs": {"phase": before}}}]
    for name in {**old, **new}:
        typ = (new.get(name) or old[name])[0]
        o, n = (old.get(name) or (None, None))[1], (new.get(name) or (None, None))[1]
        op = "create" if o is None else "delete" if n is None else "same" if o == n else "update"
        steps.append(step(op, name, typ, n, o))
    return {"steps": steps}


def test_a_fresh_environment_fits_under_githubs_limit():
    rendered = pr_comment.build(config(), fresh_preview(), None)
    assert not rendered.truncated and rendered.text == rendered.full
    assert len(rendered.text) < pr_comment.MAX_CHARS < pr_comment.GITHUB_LIMIT
    assert "**phase: none (nothing deployed yet) -> 1**" in rendered.text
    assert "<details><summary>create <code>sync_old_to_new</code>" in rendered.text
    # idempotency_log is created by this plan: its indexes' locks keep nobody waiting.
    assert "| create | `Index` | `idx_idempotency_key` | - | idempotency_log ACCESS EXCLUSIVE (new table);" in rendered.text
    assert "`LOCK idempotency_log" not in rendered.text


def test_past_the_cap_the_longest_blocks_are_cut_with_a_visible_note():
    preview = fresh_preview()
    preview["steps"] = preview["steps"] * 4  # far over GitHub's limit
    rendered = pr_comment.build(config(), preview, None)
    assert rendered.truncated and len(rendered.full) > pr_comment.GITHUB_LIMIT
    assert len(rendered.text) <= pr_comment.MAX_CHARS
    header = rendered.text.split("### What changes")[0]
    assert "**Truncated** to stay under GitHub's limit of 65,536 characters" in header
    assert "the whole comment is in the job log" in rendered.text
    # Every change still has its row and its locks; only the collapsed SQL was cut.
    assert rendered.text.count("| create | `Index` | `idx_idempotency_key`") == 4
    assert rendered.text.count("</details>") == rendered.full.count("</details>")


def test_phase_0_to_1_shows_the_phase_the_body_diff_and_no_checksum():
    text = pr_comment.render(config(), upgrade_preview("0", "1"), None)
    assert "**phase: 0 -> 1**" in text
    assert "What this step does: phase 1 (sync old to new) - writes to habit_tracker are projected" in text
    row = next(line for line in text.splitlines() if "`sync_old_to_new`" in line and line.startswith("| update"))
    assert "SQL (diff below)" in row and "checksum" not in row
    diff = text.split("### SQL changed since the deployed version")[1].split("### SQL each change runs")[0]
    assert "--- a/sync_old_to_new (deployed)" in diff and "+++ b/sync_old_to_new (this change)" in diff
    assert "\n-    RAISE NOTICE 'Dual-write trigger fired" in diff or "\n-" in diff
    # The sync once per statement is new in Phase 1: created, the definer called out, its triggers' locks shown.
    assert "`public.sync_old_to_new_statement` is created SECURITY DEFINER" in text
    assert "| create | `Trigger` | `trigger_habit_tracker_dual_write_update` | - | habit_tracker SHARE ROW EXCLUSIVE |" \
        in text


def test_a_step_back_says_what_it_does_and_an_unchanged_phase_says_nothing():
    text = pr_comment.render(config("0"), upgrade_preview("1", "0"), None)
    assert "**phase: 1 -> 0**" in text
    assert ("What this step does (one step back, from phase 1 (sync old to new)): the trigger goes back to the "
            "Phase 0 body") in text
    assert "| delete | `Trigger` | `trigger_habit_tracker_dual_write_insert` |" in text  # Phase 0 has none
    assert "What this step does" not in pr_comment.render(config("1"), upgrade_preview("1", "1"), None)


def test_invoker_to_definer_is_called_out():
    old = by_name("cleanup_idempotency_log").source(0)
    new = old.replace("\nSECURITY INVOKER\n", "\nSECURITY DEFINER\n")
    assert new != old
    typ = "pulumi-python:dynamic/migration013:Function"
    props = by_name("cleanup_idempotency_log").props(0)
    preview = {"steps": [step("update", "cleanup_idempotency_log", typ, {**props, "sql": new, "checksum": "b"},
                              {**props, "checksum": "a"})]}
    text = pr_comment.render(config("0"), preview, None)
    security = text.split("### Security changes")[1].split("###")[0]
    assert "`public.cleanup_idempotency_log`: SECURITY INVOKER -> DEFINER" in security
    assert "+SECURITY DEFINER" in text and "-SECURITY INVOKER" in text


def test_an_index_change_locks_its_table_and_says_what_runs_outside_a_transaction():
    typ = "pulumi-python:dynamic/migration013:Index"
    props = by_name("idx_idempotency_status").props(0)
    old = {**props, "sql": props["sql"].replace("(status)", "(status, created_at)"), "checksum": "a"}
    text = pr_comment.render(config("0"), {"steps": [step("update", "idx_idempotency_status", typ, props, old)]},
                             None)
    assert "LOCK idx_idempotency_status" not in text
    assert ("`LOCK idempotency_log SHARE UPDATE EXCLUSIVE, lock_timeout 3s, 5 retries (outside any transaction)` "
            "(update `idx_idempotency_status`: CREATE INDEX CONCURRENTLY idx_idempotency_status_new") in text
    assert "`LOCK idempotency_log ACCESS EXCLUSIVE, lock_timeout 3s, 5 retries` (update" in text
    assert "each change: one transaction" not in text
    assert "then built CONCURRENTLY outside any transaction" in text


def test_every_gate_row_is_shown_with_its_evidence():
    rows = [Check("gate", "'dev' declares phase 1", False, "Pulumi.dev.yaml: phase=0"),
            Check("checklist", "Drift detection shows at most 0.1% drift", True, "dual_write_drift() on 'dev': 0%"),
            Check("checklist", "Team approval required: CODEOWNERS names the stack file's reviewers", True,
                  ".github/CODEOWNERS line 3")]
    text = pr_comment.render(config(), {"steps": []}, rows)
    assert "### Phase 1 gate: 2 of 3 rows pass — **not ready**" in text
    for row in rows:
        assert f"| {row.name} | {'PASS' if row.ok else '**FAIL**'} | {row.detail} |" in text


def test_the_backfill_shows_its_size_and_time_from_the_benchmark(tmp_path):
    runs = default_and_full(tmp_path)
    estimate = Estimate(250_000, "pg_class.reltuples, the planner's estimate", rate_for(250_000, runs))
    text = pr_comment.render(config(), upgrade_preview("0", "1"), None, backfill=estimate)
    backfill = text.split("### Backfill")[1].split("###")[0]
    assert "250,000 rows in habit_tracker (pg_class.reltuples" in backfill
    assert "about 2 min at 2,500 rows/s" in backfill  # 250,000 rows at the 100k run's rate: 100 s
    assert f'{runs[0]}: "Backfill (100,000 rows, dualwrite.backfill defaults)", 100,000 rows / median of 3 rounds 40.00 s' in backfill
    # Without a reachable target, the comment says so instead of guessing.
    text = pr_comment.render(config(), upgrade_preview("0", "1"), None, backfill="size not read: unreachable")
    assert "size not read: unreachable" in text


@pytest.mark.parametrize(("rows", "rate"), [(1_000, 2_500), (100_000, 2_500), (300_000, 2_500), (400_000, 1_250),
                                           (2_000_000, 1_250)])
def test_the_rate_is_the_run_nearest_the_targets_size(tmp_path, rows: int, rate: int):
    """Nearest on a log scale: 316,228 rows is as near 100k as 1M."""
    found = rate_for(rows, default_and_full(tmp_path))
    assert found is not None and round(found.rows_per_second) == rate


def test_the_committed_benchmark_runs_give_a_rate():
    """What the PR comment reads in the repository: the committed default run has a backfill row."""
    assert rate_for(100_000) is not None


def test_an_adopted_table_shows_what_runs_on_it_not_a_create_table():
    typ = "pulumi-python:dynamic/migration013:Table"
    props = {**by_name("idempotency_log").props(0), "adopt": "adopt the existing table public.idempotency_log"}
    text = pr_comment.render(config("0"), {"steps": [step("create", "idempotency_log", typ, props, None)]}, None)
    assert "| adopt | `Table` | `idempotency_log` |" in text
    assert "CREATE TABLE" not in text and "(new table)" not in text
    assert "`LOCK idempotency_log ACCESS EXCLUSIVE, lock_timeout 3s, 5 retries` (adopt `idempotency_log`: ALTER TABLE" in text


@pytest.mark.parametrize("phase", ["0", "1", "2", "3"])
def test_a_new_functions_body_is_folded_so_every_phase_fits(phase):
    # A new function's body is its file in the PR's own diff: the comment shows its header (SECURITY,
    # search_path, grants) and how long the body is; unfolded, Phase 1 alone passed GitHub's limit.
    rendered = pr_comment.build(config(), fresh_preview(phase), None)
    assert not rendered.truncated and len(rendered.text) < pr_comment.MAX_CHARS
    block = rendered.text.split("<details><summary>create <code>dual_write_diff</code>")[1].split("</details>")[0]
    assert "SECURITY" in block or "LANGUAGE" in block
    assert "-- body: " in block and "lines, as in its file under sql/ at this commit" in block
