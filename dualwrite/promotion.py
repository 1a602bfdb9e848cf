"""The promotion gate: a stack enters a phase only after the stack before it proved that phase.

Each phase's gate is its entry in dualwrite/phases.py (`Gate`: the phase the evidence is read
in, and its rows); Phase 1's is the guide's checklist, below. Later phases (`step_gate`) read
the same way: the stack before must declare the phase and pass its smoke test, and the rows
are read there (soak, drift, errors); the first shared stack reads itself, in the phase it
runs now. The Phase 3 gate's evidence of old clients is read on the stack itself. Going down
one step needs no gate.

Stacks are ordered by `promotes_from` in their stack files (local -> dev -> staging ->
prod). The gate is the deployment guide's whole Phase 1 Activation Checklist
(dualwrite/gate.py, one row per item, each saying what it read), after two rows of its own:
the stack before declares Phase 1 and passes its smoke test.

The first shared stack (dev: no `promotes_from`) has no stack before it, and the embedded
`local` lives on a laptop whose database and history CI cannot read, so it is never a
predecessor (dualwrite/ci_plan.py refuses it). Its gate reads what CI can reach about the
stack itself: its own Phase 0 has run, trigger enabled, for `soak_hours` (its stack
history), its smoke test passes, its writes' mean cost (the Phase 0 baseline the guide's
"Performance baseline" row asks for) and its dual_write_errors; plus the Edge Function and
approval rows. The embedded `local` itself is first with nothing to wait for.

Which values the gate uses (the base branch's, not the pull request's) is
dualwrite/gate_inputs.py; `phase_gate` takes them already read.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import psycopg

from dualwrite import connection, gate, phases, readonly, stack_file, config as stack_config
from dualwrite.ci_plan import EMBEDDED
from dualwrite.smoke import READ_ONLY_SKIP, Check, run_smoke_test


def _reach(stack: str, work: Callable[[Any], list[Check]], fail: Callable[[str], list[Check]],
           previous_of: str | None = None) -> list[Check]:
    """Run `work(conn)` on a stack's database; a stack that cannot be reached fails its rows.
    `previous_of`: the stack is the one before that stack (a read-only job reads it as its preview role)."""
    try:
        _, conn = connection.connect(stack, previous_of, autocommit=True)
    except Exception as error:  # noqa: BLE001 - unreachable, bad secret, missing engine: say which
        return fail(f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}")
    with conn:
        return work(conn)


def _history_soak(stack: str, history: Callable[[str], list[dict[str, Any]]], config: stack_config.StackConfig,
                  now: datetime, phase: str, hours: float | None = None, name: str | None = None) -> Check:
    try:
        return gate.soak(stack, history(stack), config, now, phase=phase, hours_wanted=hours, name=name)
    except Exception as error:  # noqa: BLE001 - no backend, no stack: the row says which
        return gate.soak(stack, None, config, now, type(error).__name__ + ": "
                         + (str(error).strip().splitlines() or [""])[-1][:300], phase=phase, hours_wanted=hours,
                         name=name)


def first_stack_gate(config: stack_config.StackConfig, now: datetime,
                     history: Callable[[str], list[dict[str, Any]]]) -> list[Check]:
    """The first shared stack: evidence about itself that CI can read (module docstring)."""
    stack = config.stack
    checks = [Check("gate", f"'{stack}' is first in the promotion order", True,
                    "no stack before it: the gate reads its own Phase 0 (history, smoke test, cost, errors)")]
    soak = _history_soak(stack, history, config, now, "0")

    def on_itself(conn: Any) -> list[Check]:
        # What must be healthy is the Phase 0 it runs now, not the Phase 1 the change declares.
        smoke = run_smoke_test(conn, replace(config, phase=0, dual_write="enabled"), writes=not readonly.active())
        failed = [c for c in smoke if not c.ok]
        return [
            Check("gate", f"'{stack}' smoke test passes in phase 0", not failed,
                  f"{len(smoke) - len(failed)}/{len(smoke)} checks" + _smoke_note(smoke, failed)),
            soak,
            gate.edge_function(conn, config),
            gate.performance(conn, config, config),
            gate.errors(conn, config, config),
        ]

    checks += _reach(stack, on_itself, lambda why: [
        Check("gate", f"'{stack}' smoke test passes", False, f"could not reach '{stack}': {why}"), soak,
        gate.edge_function(None, config, why)])
    checks.append(gate.approval(config))
    return checks


def _smoke_note(smoke: list[Check], failed: list[Check]) -> str:
    note = f"; first failure: {failed[0].name} ({failed[0].detail})" if failed else ""
    unread = [c.name for c in smoke if c.detail == READ_ONLY_SKIP or c.detail.startswith("not readable by ")]
    if unread:
        note += (f"; read-only, not checked here ({', '.join(unread)}): a test row needs a write and cron.job "
                 "shows a role only its own jobs; the deploy's gate re-check runs the whole smoke test")
    return note


def _read(name: str, row: Callable[[], Check]) -> Check:
    """A row read from the previous stack's database; one it cannot read (013 not deployed there) fails."""
    try:
        return row()
    except psycopg.Error as error:
        return Check(gate.STEP, name, False, f"could not read it: {type(error).__name__}: "
                                             f"{(str(error).strip().splitlines() or [''])[0]}")


def phase_gate(stack: str, *, now: datetime | None = None,
               history: Callable[[str], list[dict[str, Any]]] = gate.read_history,
               config: stack_config.StackConfig | None = None,
               before: stack_config.StackConfig | None = None,
               target: phases.Phase | None = None) -> list[Check]:
    """Every row of the gate for `stack` entering `target` (default: the phase `config` declares, Phase 1
    when that is Phase 0), ConfigError on a bad stack file.

    `config` (the target, with the gate's keys from the base branch) and `before` (the stack
    before it as declared, with the base branch's drift_threshold) come from
    dualwrite/gate_inputs.py; without them, both are read from the working tree."""
    now = now or datetime.now(timezone.utc)
    if config is None:
        # The target's own password need not be at hand to plan its gate (the Edge Function row
        # connects with it, and says so when it cannot).
        raw = stack_config.read_stack_file(stack)
        raw.pop("db_password", None)
        config = stack_config.parse(stack, raw, has_password=True)
    # Phase 0 is entered by no gate: a config still in it asks about Phase 1 (as it always has).
    target = target or (config.stage if config.stage.gate is not None else phases.BY_KEY["1"])
    if target.gate is None:
        return [Check("gate", f"{target.label} needs no gate", True, "it is the first phase")]
    if target.gate.rows != ("checklist",):
        return step_gate(stack, target, config, before, now, history)
    previous = config.promotes_from
    if previous is None:
        if stack in EMBEDDED:
            return [Check("gate", f"'{stack}' is first in the promotion order", True,
                          "the embedded stack: nothing to wait for (the checklist reads the stack before)")]
        return first_stack_gate(config, now, history)
    if previous in EMBEDDED:
        return [Check("gate", f"'{stack}' promotes from a stack CI can read", False,
                      f"{config.stack_file} says promotes_from: {previous}, the embedded stack on a laptop; remove "
                      f"that line ('{stack}' is then first and its gate reads its own Phase 0)")]
    if before is None:
        try:
            before = stack_config.load(previous)
        except stack_config.ConfigError as error:
            return [Check("gate", f"previous stack '{previous}' has valid config", False, str(error))]
    checks = [Check("gate", f"'{previous}' declares phase 1", before.phase == 1 and before.trigger_enabled,
                    f"{before.stack_file}: phase={before.phase}, dual_write={before.dual_write}")]

    checks += _reach(stack, lambda conn: [gate.edge_function(conn, config)],
                     lambda why: [gate.edge_function(None, config, why)])
    # Every row, even when the first fails: a reviewer sees all that is missing at once.
    soak = _history_soak(previous, history, config, now, "1")

    def on_previous(conn: Any) -> list[Check]:
        smoke = run_smoke_test(conn, before, writes=not readonly.previous_as_preview())
        failed = [c for c in smoke if not c.ok]
        return [
            Check("gate", f"'{previous}' smoke test passes", not failed,
                  f"{len(smoke) - len(failed)}/{len(smoke)} checks" + _smoke_note(smoke, failed)),
            soak,
            _read(drift_row, lambda: gate.drift(conn, before)),
            _read(gate.PERFORMANCE_ROW, lambda: gate.performance(conn, before, config)),
            _read(gate.ERRORS_ROW, lambda: gate.errors(conn, before, config)),
        ]

    drift_row = gate.DRIFT_ROW.format(threshold=before.drift_threshold)
    checks += _reach(previous, on_previous, previous_of=stack, fail=lambda why: [
        Check("gate", f"'{previous}' smoke test passes", False, f"could not reach '{previous}': {why}"), soak,
        *(Check(gate.STEP, name, False, f"could not reach '{previous}': {why}")
          for name in (drift_row, gate.PERFORMANCE_ROW, gate.ERRORS_ROW))])
    checks.append(gate.approval(config))
    return checks


def step_gate(stack: str, target: phases.Phase, config: stack_config.StackConfig,
              before: stack_config.StackConfig | None, now: datetime,
              history: Callable[[str], list[dict[str, Any]]]) -> list[Check]:
    """The gate of a phase after Phase 1 (its `Gate` in dualwrite/phases.py), read like Phase 1's."""
    assert target.gate is not None
    spec = target.gate
    reads = phases.BY_KEY[spec.reads_phase]
    previous = config.promotes_from
    checks: list[Check] = []
    if previous is None and stack in EMBEDDED:
        return [Check("gate", f"'{stack}' is first in the promotion order", True,
                      f"the embedded stack: nothing to wait for ({target.label}'s gate reads the stack before)")]
    if previous in EMBEDDED:
        return [Check("gate", f"'{stack}' promotes from a stack CI can read", False,
                      f"{config.stack_file} says promotes_from: {previous}, the embedded stack on a laptop; remove "
                      f"that line ('{stack}' is then first and its gate reads itself)")]
    if previous is None:  # the first shared stack: evidence about itself, in the phase it runs now
        source, source_config, soak_phase = stack, replace(config, phase=reads.order, dual_write="enabled"), reads.key
        checks.append(Check("gate", f"'{stack}' is first in the promotion order", True,
                            f"no stack before it: the gate reads its own phase {reads.key}"))
    else:
        if before is None:
            try:
                before = stack_config.load(previous)
            except stack_config.ConfigError as error:
                return [Check("gate", f"previous stack '{previous}' has valid config", False, str(error))]
        source, source_config, soak_phase = previous, before, target.key
        checks.append(Check("gate", f"'{previous}' declares phase {target.key}",
                            before.phase == target.order and before.trigger_enabled,
                            f"{before.stack_file}: phase={before.stage.key}, dual_write={before.dual_write}"))
    soak = _history_soak(source, history, config, now, soak_phase)
    own_history = None
    if "quiet_period" in spec.rows:  # the quiet period counts only while the stack itself ran phase 2
        own_history = _history_soak(stack, history, config, now, reads.key, hours=config.quiet_period_hours,
                                    name=f"'{stack}' in phase {reads.key} for the quiet period")
    # The rows read from the source's database, by their id in the phase's Gate, with the names they show.
    names = {"drift_forward": gate.DRIFT_ROW.format(threshold=source_config.drift_threshold),
             "drift_zero": gate.DRIFT_ZERO_ROW, "drift_reverse": gate.REVERSE_DRIFT_ZERO_ROW, "errors": gate.ERRORS_ROW}
    readers: dict[str, Callable[[Any], Check]] = {
        "drift_forward": lambda conn: gate.drift(conn, source_config),
        "drift_zero": lambda conn: gate.drift_zero(conn, source),
        "drift_reverse": lambda conn: gate.reverse_drift_zero(conn, source),
        "errors": lambda conn: gate.errors(conn, source_config, config),
    }
    on_database = [row for row in spec.rows if row in readers]
    with_soak = "soak" in spec.rows

    def on_source(conn: Any) -> list[Check]:
        smoke = run_smoke_test(conn, source_config, writes=not readonly.previous_as_preview())
        failed = [c for c in smoke if not c.ok]
        return [Check("gate", f"'{source}' smoke test passes in phase {source_config.stage.key}", not failed,
                      f"{len(smoke) - len(failed)}/{len(smoke)} checks" + _smoke_note(smoke, failed)),
                *([soak] if with_soak else []),
                *(_read(names[row], partial(readers[row], conn)) for row in on_database)]

    checks += _reach(source, on_source, previous_of=stack if previous else None, fail=lambda why: [
        Check("gate", f"'{source}' smoke test passes", False, f"could not reach '{source}': {why}"),
        *([soak] if with_soak else []),
        *(Check(gate.STEP, names[row], False, f"could not reach '{source}': {why}") for row in on_database)])
    if "quiet_period" in spec.rows:
        assert own_history is not None
        checks.append(own_history)
        checks += _reach(stack, lambda conn: [_read(gate.QUIET_ROW, lambda: gate.old_client_writes(conn, config, now))],
                         lambda why: [Check(gate.STEP, gate.QUIET_ROW, False, f"could not reach '{stack}': {why}")])
    if "approval" in spec.rows:
        checks.append(gate.approval(config))
    return checks


def declare_phase(stack: str, phase: int | str, override: str | None = None,
                  root: Path = stack_config.ROOT) -> stack_file.StackFileEdit:
    """The GitOps edit of `invoke phase N`: the phase line; a phase change drops the override of an earlier
    flip, and `override` (the reason of `--force`) writes the new one, so the commit, the PR comment and
    the deploy's re-check all see it (dualwrite/gate_inputs.py)."""
    if override is not None:  # the parser's own rule and paragraph, before the file changes
        stack_config.parse(stack, {"phase": str(phase), "db_host": "127.0.0.1", "gate_override": override},
                           has_password=True)
    path = root / stack_config.stack_file_name(stack)
    before = path.read_text(encoding="utf-8") if path.is_file() else ""
    edit = stack_file.set_phase(stack, phase, root)
    if edit.changed or override is not None:
        stack_file.remove_value(stack, "gate_override", root)
    if override is not None:
        stack_file.set_value(stack, "gate_override", json.dumps(override.strip(), ensure_ascii=False), root)
    return stack_file.StackFileEdit(path, before, path.read_text(encoding="utf-8"))
