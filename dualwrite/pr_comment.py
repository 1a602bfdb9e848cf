"""`invoke pr-comment --stack S > comment.md`: what a reviewer approves, as markdown.

From the real engine's `pulumi preview --json` (its `steps`): every resource to create,
update, replace, delete or adopt (import), the SQL each change runs (the resource's `sql`
input, or the statement its kind runs: a trigger's ENABLE/DISABLE, the pg_cron schedule,
the backfill's batches), the table locks that SQL takes with their bound (the stack's
lock_timeout and dualwrite.db.LOCK_RETRIES), and the promotion gate's table when the stack
declares Phase 1. One marker line lets the workflow update its own comment in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from psycopg import sql as pgsql

from dualwrite import locks as lk
from dualwrite.config import StackConfig
from dualwrite.db import LOCK_RETRIES
from dualwrite.objects import kind_of
from dualwrite.smoke import Check

MARKER = "<!-- habit-tracker-db:pr-comment stack={stack} -->"
OPS = {"create": "create", "update": "update", "replace": "replace", "create-replacement": "replace",
       "delete-replaced": None, "delete": "delete", "import": "adopt", "import-replacement": "adopt",
       "read": "adopt", "same": None, "refresh": None}


@dataclass
class Change:
    op: str
    type: str
    name: str
    sql: str
    diff: list[str] = field(default_factory=list)
    locks: list[lk.Lock] = field(default_factory=list)


def _text(composed: pgsql.Composable) -> str:
    return composed.as_string(None)


def _statement(op: str, inputs: dict[str, Any], olds: dict[str, Any], diff: Sequence[str]) -> str:
    """The SQL this change runs, as its kind runs it (dualwrite/objects: `planned_sql`)."""
    obj = kind_of(inputs or olds)
    statements = obj.planned_sql(op, olds, list(diff))
    lines = [_text(statement).strip() for statement in statements]
    text = "\n".join(line if line.endswith(";") or line.startswith("--") else line + ";" for line in lines)
    if op == "adopt" and inputs.get("adopt"):
        text = f"-- {inputs['adopt']}\n{text}"
    return text.strip() or f"-- {obj.kind}: no SQL runs"


def changes(preview: dict[str, Any]) -> tuple[list[Change], int]:
    """(the steps that change something, how many resources stay the same)."""
    found: list[Change] = []
    same = 0
    for step in preview.get("steps", []):
        op = OPS.get(step.get("op", ""), step.get("op"))
        if op is None:
            same += step.get("op") == "same"
            continue
        new, old = step.get("newState") or {}, step.get("oldState") or {}
        rtype = (new or old).get("type", "")
        if not rtype.startswith("pulumi-python:dynamic"):
            continue  # the stack, components and providers run no SQL
        inputs, olds = new.get("inputs") or {}, old.get("inputs") or {}
        if op == "create" and inputs.get("adopt"):
            op = "adopt"  # the provider's check found the object there already (dualwrite/objects: adoption)
        diff = list(step.get("diffReasons") or [])
        if not diff and inputs and olds:  # what the provider's diff compares (dualwrite/objects)
            diff = type(kind_of(inputs)).diff(olds, inputs)[0]
        text = _statement(op, inputs, olds, diff)
        found.append(Change(op, rtype.split(":")[-1], step.get("urn", "").split("::")[-1], text, list(diff),
                            lk.locks(text)))
    return found, same


# The engine's summary, in the order `pulumi preview` prints it.
SUMMARY_OPS = ("create", "update", "replace", "delete", "import")


def plan_counts(preview: dict[str, Any]) -> tuple[str, int]:
    """(what changes, how many stay the same) as `invoke preview` counts them: the engine's own
    changeSummary, the stack and its components included; the JSON's `steps` leave most sames out."""
    summary = preview.get("changeSummary") or {}
    text = ", ".join(f"{summary[op]} to {op}" for op in SUMMARY_OPS if summary.get(op))
    return text or "no changes", int(summary.get("same", 0))


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    def cell(value: str) -> str:
        return value.replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def render(config: StackConfig, preview: dict[str, Any], gate: Sequence[Check] | None,
           plan_line: str | None = None) -> str:
    found, _ = changes(preview)
    summary, same = plan_counts(preview)
    adopted = sum(change.op == "adopt" for change in found)
    summary += f"; {adopted} of the creates adopt an existing object" if adopted else ""
    lines = [MARKER.format(stack=config.stack), f"## Stack `{config.stack}` ({config.stack_file})", "",
             f"Phase **{config.phase}**, dual_write `{config.dual_write}`"
             + (f", {plan_line}" if plan_line else "") + f". Plan: **{summary}** ({same} unchanged).", ""]
    bound = f"lock_timeout {config.lock_timeout}, {LOCK_RETRIES} retries"
    if found:
        lines += ["### What changes", ""]
        lines += _table([(c.op, f"`{c.type}`", f"`{c.name}`", ", ".join(c.diff) or "-",
                          "; ".join(f"{lock.table} {lock.mode}" + (" (new table)" if lock.new_table else "")
                                    for lock in c.locks) or "no table lock") for c in found],
                        ("op", "type", "resource", "changed inputs", "locks"))
        taken = [(c, lock) for c in found for lock in c.locks if not lock.new_table]
        lines += ["", f"### Locks on existing tables (each change: one transaction, statement_timeout "
                      f"{config.statement_timeout})", ""]
        lines += [f"- `{lock.bounded(config.lock_timeout, LOCK_RETRIES)}` ({c.op} `{c.name}`: {lock.statement} ...)"
                  for c, lock in taken] or [f"- none that the app's writers wait on (bound if any: {bound})"]
        lines += ["", "### SQL each change runs", ""]
        for c in found:
            lines += [f"<details><summary>{c.op} <code>{c.name}</code> ({c.type})</summary>", "", "```sql",
                      c.sql, "```", "", "</details>"]
    if gate is not None:
        passed = sum(check.ok for check in gate)
        lines += ["", f"### Phase 1 gate: {passed} of {len(gate)} rows pass"
                      + ("" if passed == len(gate) else " — **not ready**"), ""]
        lines += _table([(check.name, "PASS" if check.ok else "**FAIL**", check.detail) for check in gate],
                        ("checklist row", "result", "evidence read"))
    return "\n".join(lines) + "\n"
