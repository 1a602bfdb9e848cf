"""What `invoke drift` says about a stack: drift where its phase syncs, and why not elsewhere.

    result = stack_drift(conn, config)
    result.not_applicable   # one paragraph (Phase 0, a rollback in effect, retired, ...) or None
    result.ok               # True where drift does not apply, or is within the stack's threshold
    result.rows()           # the report's counts, split into unsynced and malformed rows
    result.failure()        # above the threshold: how much of each, and the command that fixes it

Which drift applies is the phase's (dualwrite/phases.py): forward (old -> new) in Phase 1,
both ways in Phase 2, reverse (new -> old) in Phase 3, none in Phase 0 and retired.

The deploy and daily workflows run `invoke drift` on every stack whatever its phase; a stack
that is not meant to be in sync (Phase 0, a declared rollback) passes with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from dualwrite.config import StackConfig
from dualwrite.drift import DriftReport, DriftSplit, drift_report, drift_split, reverse_drift_report
from dualwrite.dual_write_state import read as read_state


@dataclass(frozen=True)
class StackDrift:
    stack: str
    threshold_pct: float
    not_applicable: str | None
    report: DriftReport | None = None  # forward: old -> new
    split: DriftSplit | None = None
    reverse: DriftReport | None = None  # new -> old (Phase 2 on)

    @property
    def ok(self) -> bool:
        return all(report is None or report.within(self.threshold_pct) for report in (self.report, self.reverse))

    def rows(self) -> list[tuple[str, str]]:
        rows = [(f"reverse {key.replace('_', ' ')}", str(value)) for key, value in vars(self.reverse).items()
                ] if self.reverse is not None else []
        if self.report is None:
            return rows
        rows = [(key.replace("_", " "), str(value)) for key, value in vars(self.report).items()] + rows
        if self.split is not None:
            rows += [("unsynced rows", f"{self.split.unsynced} (`invoke backfill --stack {self.stack}`)"),
                     ("malformed rows", f"{self.split.malformed} ({self.split.listed} listed in dual_write_errors; "
                                        f"`invoke errors --stack {self.stack}`)")]
        return rows

    def failure(self) -> str | None:
        if self.ok:
            return None
        parts = []
        if self.report is not None and not self.report.within(self.threshold_pct):
            made_of = f": {self.split.advice(self.stack)}" if self.split is not None else ""
            parts.append(f"drift {self.report.drift_pct}% is above the threshold {self.threshold_pct}% of stack "
                         f"'{self.stack}'{made_of}")
        if self.reverse is not None and not self.reverse.within(self.threshold_pct):
            parts.append(f"reverse drift (new -> old) {self.reverse.drift_pct}% is above the threshold "
                         f"{self.threshold_pct}% of stack '{self.stack}': {self.reverse.missing} missing, "
                         f"{self.reverse.mismatched} mismatched, {self.reverse.orphaned} orphaned habit_tracker rows "
                         "(backfill_new_to_old() rebuilds them)")
        return "; ".join(parts)


def stack_drift(conn: psycopg.Connection, config: StackConfig) -> StackDrift:
    reason = read_state(conn, config).drift_not_applicable()
    if reason is not None:
        return StackDrift(config.stack, config.drift_threshold, reason)
    stage = config.stage
    reverse = reverse_drift_report(conn) if stage.drift in ("both ways", "reverse") else None
    if stage.drift not in ("forward", "both ways"):
        return StackDrift(config.stack, config.drift_threshold, None, reverse=reverse)
    report = drift_report(conn)
    # The split reads the diff again: only when there is drift to explain.
    split = drift_split(conn) if report.drifted else None
    return StackDrift(config.stack, config.drift_threshold, None, report, split, reverse)
