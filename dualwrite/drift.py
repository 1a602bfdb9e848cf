"""How far the new schema is from habit_tracker: `dual_write_drift()` as a typed report.

    report = drift_report(conn)
    report.drift_pct            # Decimal, (missing + mismatched + orphaned) / source_rows * 100
    report.within(Decimal("0.1"))
    check(report, threshold)    # raises DriftAboveThreshold
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import psycopg

# The guide: "drift detection shows < 0.1% drift". A stack's `drift_threshold` is the most
# drift it allows: `within` passes at or below it, so 0 means "none at all" (and can pass).
DEFAULT_THRESHOLD_PCT = Decimal("0.1")


@dataclass(frozen=True)
class DriftReport:
    source_rows: int
    synced: int
    missing: int
    mismatched: int
    orphaned: int
    errors: int
    drift_pct: Decimal

    @property
    def drifted(self) -> int:
        """Rows and weeks that disagree (the numerator of drift_pct)."""
        return self.missing + self.mismatched + self.orphaned

    def within(self, threshold_pct: Decimal | float | str = DEFAULT_THRESHOLD_PCT) -> bool:
        """True when drift is at or below the threshold (percent), computed from the exact counts."""
        threshold = Decimal(str(threshold_pct))
        return Decimal(self.drifted) * 100 <= threshold * max(self.source_rows, 1)


class DriftAboveThreshold(RuntimeError):
    def __init__(self, report: DriftReport, threshold_pct: Decimal) -> None:
        super().__init__(
            f"drift {report.drift_pct}% is above {threshold_pct}%: {report.missing} missing, "
            f"{report.mismatched} mismatched, {report.orphaned} orphaned of {report.source_rows} rows "
            f"({report.errors} with a logged error in dual_write_errors)"
        )
        self.report = report


def drift_report(conn: psycopg.Connection) -> DriftReport:
    row = conn.execute(
        "SELECT source_rows, synced, missing, mismatched, orphaned, errors, drift_pct FROM public.dual_write_drift()"
    ).fetchone()
    assert row is not None  # the function always returns exactly one row
    source_rows, synced, missing, mismatched, orphaned, errors, drift_pct = row
    return DriftReport(int(source_rows), int(synced), int(missing), int(mismatched), int(orphaned), int(errors),
                       drift_pct=Decimal(drift_pct))


def check(report: DriftReport, threshold_pct: Decimal | float | str = DEFAULT_THRESHOLD_PCT) -> DriftReport:
    """Return the report if drift is within the threshold; raise DriftAboveThreshold otherwise."""
    if not report.within(threshold_pct):
        raise DriftAboveThreshold(report, Decimal(str(threshold_pct)))
    return report
