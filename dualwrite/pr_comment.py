"""`invoke pr-comment --stack S > comment.md`: what a reviewer approves, as markdown.

From the real engine's `pulumi preview --json` (its `steps`): the phase move, every resource
to create, update, replace, delete or adopt (import), for a function whose SQL changed a
unified diff of its file (old from the state, new from the file) and any change of its
SECURITY or search_path, the SQL each change runs (the resource's `sql` input, or the
statement its kind runs: a trigger's ENABLE/DISABLE, the pg_cron schedule, the backfill's
batches), the table locks that SQL takes as PostgreSQL's parser reads it (dualwrite/locks.py)
with their bound (the stack's lock_timeout and dualwrite.db.LOCK_RETRIES), the backfill's
size and estimated time, and every row of the promotion gate when the stack declares Phase 1.

The comment is a list of sections, each a title and its lines, so a new call-out is one more
section. It stays under GitHub's limit (65,536 characters): SQL and diffs are collapsed in
`<details>`, and past MAX_CHARS the longest of them are cut with a visible note; the task then
writes the whole comment to the job log. One marker line lets the workflow update its own
comment in place.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from psycopg import sql as pgsql

from dualwrite import locks as lk
from dualwrite import parsed_sql
from dualwrite import phases as phases_module
from dualwrite.backfill_estimate import Estimate
from dualwrite.catalog import by_name
from dualwrite.config import StackConfig
from dualwrite.db import LOCK_RETRIES
from dualwrite.objects import kind_of
from dualwrite.smoke import Check

MARKER = "<!-- habit-tracker-db:pr-comment stack={stack} -->"
OPS = {"create": "create", "update": "update", "replace": "replace", "create-replacement": "replace",
       "delete-replaced": None, "delete": "delete", "import": "adopt", "import-replacement": "adopt",
       "read": "adopt", "same": None, "refresh": None}
GITHUB_LIMIT = 65_536
# Room under GitHub's limit for what the workflow adds and for characters GitHub counts twice.
MAX_CHARS = 63_000
TRUNCATED = "… truncated here ({cut:,} characters): the whole comment is in the job log of this check."


@dataclass
class Change:
    op: str
    type: str
    name: str
    sql: str
    diff: list[str] = field(default_factory=list)
    locks: list[lk.Lock] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)  # statements whose locks are not known
    sql_diff: str = ""  # unified diff of the resource's SQL file, old (state) -> new (file)
    security: list[str] = field(default_factory=list)  # SECURITY / search_path changes, in words


@dataclass
class Section:
    """One part of the comment: a `###` title (none for the header) and its markdown lines."""
    title: str
    lines: list[str]


@dataclass(frozen=True)
class Rendered:
    text: str  # what is posted: at most MAX_CHARS
    full: str  # the whole comment, for the job log
    truncated: bool


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


def _sql_diff(name: str, old: str, new: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"a/{name} (deployed)", f"b/{name} (this change)"))


def _functions(text: str, name: str) -> dict[str, parsed_sql.FunctionAttributes]:
    try:
        return {".".join(f.name): f for f in parsed_sql.function_attributes(text, name)}
    except parsed_sql.SqlSyntaxError:
        return {}


def _security(op: str, name: str, old: str, new: str) -> list[str]:
    """Each change of SECURITY INVOKER/DEFINER or of the pinned search_path, old -> new."""
    found = []
    before = _functions(old, name)
    for qualified, after in _functions(new, name).items():
        was = before.get(qualified)
        if was is None:
            if after.security_definer:
                found.append(f"`{qualified}` is created SECURITY DEFINER (runs with its owner's rights), "
                             f"search_path {_path(after.search_path)}")
            continue
        if was.security != after.security:
            found.append(f"`{qualified}`: SECURITY {was.security} -> {after.security}"
                         + (" (it will run with its owner's rights, not the caller's)" if after.security_definer
                            else " (it will run with the caller's rights)"))
        if was.search_path != after.search_path:
            found.append(f"`{qualified}`: search_path {_path(was.search_path)} -> {_path(after.search_path)}")
    return found


def _path(value: str | None) -> str:
    return "not pinned" if value is None else f"pinned to '{value}'"


def _changed_inputs(diff: Sequence[str], sql_diff: str) -> str:
    shown = [d for d in diff if d not in ("checksum", "sql")]
    if sql_diff:
        shown.insert(0, "SQL (diff below)")
    elif "checksum" in diff or "sql" in diff:
        shown.insert(0, "SQL")
    return ", ".join(shown) or "-"


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
        name = step.get("urn", "").split("::")[-1]
        text = _statement(op, inputs, olds, diff)
        old_sql, new_sql = str(olds.get("sql") or ""), str(inputs.get("sql") or "")
        sql_diff = _sql_diff(name, old_sql, new_sql) if old_sql and new_sql and old_sql != new_sql else ""
        security = _security(op, name, old_sql, new_sql) if new_sql and op != "delete" else []
        try:
            analysis = lk.analyse(text, f"the SQL of {name}")
        except parsed_sql.SqlSyntaxError as error:  # shown, not hidden: the reviewer reads why
            analysis = lk.Analysis(unread=[str(error)])
        # A table an earlier change of this plan creates is new to it too: nobody waits on its locks.
        created = {lock.table for change in found for lock in change.locks if lock.new_table}
        taken = [replace(lock, new_table=True) if lock.table in created else lock for lock in analysis.locks]
        found.append(Change(op, rtype.split(":")[-1], name, text, list(diff), taken, analysis.unread,
                            sql_diff, security))
    return found, same


def has_backfill(preview: dict[str, Any]) -> bool:
    """Whether this change runs the backfill (then the comment shows its size and time)."""
    return any(c.type == "Backfill" and not c.sql.startswith("-- backfill: no SQL") for c in changes(preview)[0])


def phases(preview: dict[str, Any], config: StackConfig) -> str:
    """`phase: 0 -> 1`: the deployed phase (the stack's `phase` output in the state) and the declared one."""
    old = deployed_phase(preview)
    before = "none (nothing deployed yet)" if old is None else str(old)
    return f"phase: {before} -> {config.stage.key}" + ("" if str(old) != config.stage.key else " (unchanged)")


def deployed_phase(preview: dict[str, Any]) -> Any:
    """The phase the stack's state records (its `phase` output, or for older states the sync body); None: nothing."""
    old: Any = None
    for step in preview.get("steps", []):
        state = step.get("oldState") or {}
        if state.get("type") == "pulumi:pulumi:Stack":
            old = (state.get("outputs") or {}).get("phase")
        elif state.get("type", "").endswith("migration013:Function") and (state.get("inputs") or {}).get(
                "name") == "sync_old_to_new" and old is None:
            checksum = state["inputs"].get("checksum")  # states written before the output existed
            old = next((p for p, log in ((0, "notice"), (0, "server"), (1, "notice"))
                        if by_name("sync_old_to_new").checksum(p, log) == checksum), None)
    return old


def step_line(preview: dict[str, Any], config: StackConfig) -> str | None:
    """What this step does, in one line (dualwrite/phases.py): a step up says what the phase it enters does, a
    step back what stepping back does; None when the phase does not change."""
    old = phases_module.parse(deployed_phase(preview))
    new = config.stage
    if old is None or old is new:
        return None
    if new.order > old.order:
        return f"What this step does: {new.label} - {new.meaning}."
    return f"What this step does (one step back, from {old.label}): {old.step_back}."


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


def callout_lines(callouts: Sequence[str]) -> list[str]:
    """The gate's call-outs (an override, thresholds the PR edits: dualwrite/gate_inputs.py), as the
    comment's first lines, so a reviewer cannot miss them."""
    return [f"> **Promotion gate call-out:** {line}" for line in callouts] + ([""] if callouts else [])


def _details(summary: str, fence: str, body: str) -> list[str]:
    return [f"<details><summary>{summary}</summary>", "", f"```{fence}", body.rstrip("\n"), "```", "", "</details>"]


def sections(config: StackConfig, preview: dict[str, Any], gate: Sequence[Check] | None,
             plan_line: str | None = None, backfill: Estimate | str | None = None,
             callouts: Sequence[str] = ()) -> list[Section]:
    """The comment's parts, top to bottom. `backfill`: the estimate, or why there is none."""
    found, _ = changes(preview)
    summary, same = plan_counts(preview)  # as `invoke preview` counts them
    adopted = sum(change.op == "adopt" for change in found)
    summary += f"; {adopted} of the creates adopt an existing object" if adopted else ""
    out = [Section("", [MARKER.format(stack=config.stack), *callout_lines(callouts), f"## Stack `{config.stack}` ({config.stack_file})", "",
                        f"**{phases(preview, config)}**, dual_write `{config.dual_write}`"
                        + (f", {plan_line}" if plan_line else "") + f". Plan: **{summary}** ({same} unchanged).",
                        "", *([step, ""] if (step := step_line(preview, config)) else [])])]
    security = [line for change in found for line in change.security]
    if security:
        out.append(Section("Security changes", [f"- **{line}**" for line in security] + [""]))
    if not found:
        return out + _gate(gate)
    out.append(Section("What changes", _table(
        [(c.op, f"`{c.type}`", f"`{c.name}`", _changed_inputs(c.diff, c.sql_diff),
          "; ".join(lock.describe() for lock in c.locks) or "no table lock") for c in found],
        ("op", "type", "resource", "changed", "locks")) + [""]))
    out.append(_locks(config, found))
    backfills = [c for c in found if c.type == "Backfill" and not c.sql.startswith("-- backfill: no SQL")]
    if backfills:
        line = backfill.line() if isinstance(backfill, Estimate) else (backfill or "size not read")
        out.append(Section("Backfill", [f"- {backfills[0].op} `{backfills[0].name}`: {line}", ""]))
    out += _gate(gate)
    diffs = [c for c in found if c.sql_diff]
    if diffs:
        out.append(Section("SQL changed since the deployed version", [
            line for c in diffs for line in _details(f"diff <code>{c.name}</code> ({c.type})", "diff", c.sql_diff)]
            + [""]))
    out.append(Section("SQL each change runs", [
        line for c in found for line in _details(f"{c.op} <code>{c.name}</code> ({c.type})", "sql", c.sql)]))
    return out


def _locks(config: StackConfig, found: Sequence[Change]) -> Section:
    bound = f"lock_timeout {config.lock_timeout}, {LOCK_RETRIES} retries"
    taken = [(c, lock) for c in found for lock in c.locks if not lock.new_table]
    types = {c.type for c in found}
    lines = [f"Each change runs its statements in one transaction (statement_timeout {config.statement_timeout})"
             + (", except these:" if types & {"Index", "Backfill"} else ".")]
    if "Index" in types:
        lines.append("- an index: a leftover `<name>_new` is dropped in one transaction, then built CONCURRENTLY "
                     "outside any transaction (PostgreSQL allows it nowhere else; same timeouts, marked below), "
                     "then swapped in by a third transaction;")
    if "Backfill" in types:
        lines.append("- the backfill: one transaction per batch, each committed before the next.")
    lines.append("")
    lines += [f"- `{lock.bounded(config.lock_timeout, LOCK_RETRIES)}` ({c.op} `{c.name}`: {lock.statement} ..."
              + (f"; on {lock.on}" if lock.on else "") + ")" for c, lock in taken] or [
        f"- none that the app's writers wait on (bound if any: {bound})"]
    unread = [(c, statement) for c in found for statement in c.unread]
    if unread:
        lines += ["", "Statements whose locks are not read here (a called function's locks are in its body):"]
        lines += [f"- {c.op} `{c.name}`: `{statement}`" for c, statement in unread]
    return Section("Locks on existing tables", lines + [""])


def _gate(gate: Sequence[Check] | None) -> list[Section]:
    if gate is None:
        return []
    passed = sum(check.ok for check in gate)
    verdict = "" if passed == len(gate) else " — **not ready**"
    return [Section(f"Phase 1 gate: {passed} of {len(gate)} rows pass{verdict}", _table(
        [(check.name, "PASS" if check.ok else "**FAIL**", check.detail) for check in gate],
        ("checklist row", "result", "evidence read")) + [""])]


def _join(parts: Sequence[Section]) -> str:
    lines: list[str] = []
    for part in parts:
        lines += ([f"### {part.title}", ""] if part.title else []) + part.lines
    return "\n".join(lines).rstrip("\n") + "\n"


def _cap(parts: list[Section], limit: int) -> str:
    """The comment within `limit`: the longest collapsed blocks cut first, each with the note."""
    text = _join(parts)
    while len(text) > limit:
        blocks = [(len(line), i, j) for i, part in enumerate(parts) for j, line in enumerate(part.lines)
                  if j > 0 and part.lines[j - 1].startswith("```") and len(line) > 200]
        if not blocks:
            break
        size, i, j = max(blocks)
        keep = max(0, size - (len(text) - limit) - len(TRUNCATED) - 20)
        keep = min(keep, size // 2)
        cut = parts[i].lines[j]
        parts[i].lines[j] = cut[:keep] + "\n" + TRUNCATED.format(cut=size - keep)
        text = _join(parts)
    if len(text) > limit:  # no collapsed block left to cut: a hard cut, still with the note
        note = "\n\n" + TRUNCATED.format(cut=len(text) - limit) + "\n"
        text = text[:limit - len(note)] + note
    return text


def build(config: StackConfig, preview: dict[str, Any], gate: Sequence[Check] | None,
          plan_line: str | None = None, backfill: Estimate | str | None = None,
          limit: int = MAX_CHARS, callouts: Sequence[str] = ()) -> Rendered:
    parts = sections(config, preview, gate, plan_line, backfill, callouts)
    full = _join(parts)
    if len(full) <= limit:
        return Rendered(full, full, False)
    parts.insert(1, Section("", [f"> **Truncated** to stay under GitHub's limit of {GITHUB_LIMIT:,} characters: "
                                 f"the whole comment ({len(full):,} characters) is in the job log of this check.",
                                 ""]))
    return Rendered(_cap(parts, limit), full, True)


def render(config: StackConfig, preview: dict[str, Any], gate: Sequence[Check] | None,
           plan_line: str | None = None, backfill: Estimate | str | None = None,
           callouts: Sequence[str] = ()) -> str:
    return build(config, preview, gate, plan_line, backfill, callouts=callouts).text
