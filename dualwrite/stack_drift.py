"""What `invoke drift` says about a stack: drift where Phase 1 syncs, and why not elsewhere.

    result = stack_drift(conn, config)
    result.not_applicable   # one paragraph (Phase 0, a rollback in effect, ...) or None
    result.ok               # True where drift does not apply, or is within the stack's threshold
    result.rows()           # the report's counts, split into unsynced and malformed rows
    result.failure()        # above the threshold: how much of each, and the command that fixes it

The deploy and daily workflows run `invoke drift` on every stack whatever its phase; a stack
that is not meant to be in sync (Phase 0, a declared rollback) passes with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from dualwrite.config import StackConfig
from dualwrite.drift import DriftReport, DriftSplit, drift_report, drift_split
from dualwrite.dual_write_state import read as read_state


@dataclass(frozen=True)
class StackDrift:
    stack: str
    threshold_pct: float
    not_applicable: str | None
    report: DriftReport | None = None
    split: DriftSplit | None = None

    @property
    def ok(self) -> bool:
        return self.report is None or self.report.within(self.threshold_pct)

    def rows(self) -> list[tuple[str, str]]:
        if self.report is None:
            return []
        rows = [(key.replace("_", " "), str(value)) for key, value in vars(self.report).items()]
        if self.split is not None:
            rows += [("unsynced rows", f"{self.split.unsynced} (`invoke backfill --stack {self.stack}`)"),
                     ("malformed rows", f"{self.split.malformed} ({self.split.listed} listed in dual_write_errors; "
                                        f"`invoke errors --stack {self.stack}`)")]
        return rows

    def failure(self) -> str | None:
        if self.ok or self.report is None:
            return None
        made_of = f": {self.split.advice(self.stack)}" if self.split is not None else ""
        return (f"drift {self.report.drift_pct}% is above the threshold {self.threshold_pct}% of stack "
                f"'{self.stack}'{made_of}")


def stack_drift(conn: psycopg.Connection, config: StackConfig) -> StackDrift:
    reason = read_state(conn, config).drift_not_applicable()
    if reason is not None:
        return StackDrift(config.stack, config.drift_threshold, reason)
    report = drift_report(conn)
    # The split reads the diff again: only when there is drift to explain.
    split = drift_split(conn) if report.drifted else None
    return StackDrift(config.stack, config.drift_threshold, None, report, split)
