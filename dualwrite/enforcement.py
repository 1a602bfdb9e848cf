"""The promotion gate as CI enforces it: `invoke promotion-check` on the PR, `invoke gate-recheck`
in the deploy job right before `up`.

Both read the change BASE..HEAD (dualwrite/gate_inputs.py) and decide by what it does:
- it starts Phase 1 (`enter`): the gate runs with the base branch's thresholds
  (dualwrite/promotion.py); it fails unless every row passes, or the change adds a
  `gate_override` line (`invoke phase 1 --force --reason`), which passes it loudly;
- it stops Phase 1 (`rollback`: phase 1 -> 0, or dual_write away from enabled): one passing
  row says why. A rollback is needed most when an upstream stack is unhealthy, which is
  exactly when the gate fails, so it is never sent through the gate;
- anything else: one passing row, nothing to gate.
The call-outs (thresholds the change edits, an override) head the output either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from dualwrite import gate, gate_inputs, promotion
from dualwrite.config import PROJECT, ROOT, ConfigError, StackConfig, parse
from dualwrite.smoke import Check


@dataclass
class Verdict:
    stack: str
    kind: str  # the transition: enter | rollback | none
    rows: list[Check]
    callouts: list[str] = field(default_factory=list)
    overridden: bool = False

    @property
    def passed(self) -> bool:
        return self.overridden or all(row.ok for row in self.rows)

    def title(self, what: str) -> str:
        base = "the gate's inputs from the base branch" if self.kind == "enter" else "nothing to gate"
        return f"{what} for '{self.stack}' ({base})"


def running_from_history(stack: str, history: Callable[[str], list[dict[str, Any]]] = gate.read_history
                         ) -> StackConfig | None:
    """What the stack last deployed (phase, dual_write of its last successful update), for a deploy with no
    recorded commit; None when it has none or its history cannot be read (then the gate runs)."""
    try:
        entries = history(stack)
    except Exception:  # noqa: BLE001 - no history: treat as never deployed, so the gate runs
        return None
    deploys = [h for h in entries if h.get("kind") == "update" and h.get("result") == "succeeded"]
    if not deploys:
        return None
    last = max(deploys, key=lambda h: h.get("version", 0))
    try:
        return parse(stack, {"phase": gate._setting(last, "phase", "0"), "db_host": "127.0.0.1",
                             "dual_write": gate._setting(last, "dual_write", "enabled")}, has_password=True)
    except ConfigError:  # a value this release does not know: treat as not running Phase 1
        return None


def check(stack: str, base: str | None, head: str | None = None, *, repo: Path = ROOT,
          now: datetime | None = None, history: Callable[[str], list[dict[str, Any]]] = gate.read_history,
          running_before: StackConfig | None = None) -> Verdict:
    inputs = gate_inputs.read(stack, base, head, repo, running_before=running_before)
    kind = inputs.transition.kind
    if kind == "rollback":
        rows = [Check("gate", "a rollback is never blocked by the promotion gate", True,
                      f"{inputs.transition.detail}: stepping back needs no evidence from the stack before")]
        return Verdict(stack, kind, rows, inputs.callouts)
    if kind == "none":
        return Verdict(stack, kind, [Check("gate", "no Phase 1 flip to gate", True, inputs.transition.detail)],
                       inputs.callouts)
    rows = promotion.phase_gate(stack, now=now, history=history, config=inputs.target, before=inputs.previous)
    if inputs.transition.skipped:  # a hand edit past `invoke phase`: one step at a time, each with its gate
        rows.insert(0, Check("gate", "the change moves one phase", False, inputs.transition.skipped))
    overridden = inputs.override is not None and not all(row.ok for row in rows)
    if overridden:
        rows.append(Check("gate", "OVERRIDDEN (invoke phase 1 --force)", True,
                          f"{inputs.target.stack_file} `{PROJECT}:{gate_inputs.OVERRIDE_KEY}`: {inputs.override}"))
    return Verdict(stack, kind, rows, inputs.callouts, overridden)
