"""How far the new schema is from habit_tracker: `dual_write_drift()` as a typed report.

    report = drift_report(conn)
    report.drift_pct            # Decimal, (missing + mismatched + orphaned) / source_rows * 100
    report.within(Decimal("0.1"))
    check(report, threshold)    # raises DriftAboveThreshold
    split = drift_split(conn)   # the same drift, by what fixes it: unsynced rows, malformed rows
    split.advice("dev")         # the command that fixes each part
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import psycopg
from psycopg.rows import dict_row

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
    """dual_write_drift(); for a role that RLS would blind (a read-only preview role), the same
    counts through dual_write_gate_evidence() (dualwrite/gate_evidence.py)."""
    from dualwrite import gate_evidence

    if not gate_evidence.sees_every_row(conn):
        row = gate_evidence.read(conn).drift
    else:
        row = conn.execute(
            "SELECT source_rows, synced, missing, mismatched, orphaned, errors, drift_pct FROM public.dual_write_drift()"
        ).fetchone()
    assert row is not None  # the function always returns exactly one row
    source_rows, synced, missing, mismatched, orphaned, errors, drift_pct = row
    return DriftReport(int(source_rows), int(synced), int(missing), int(mismatched), int(orphaned), int(errors),
                       drift_pct=Decimal(drift_pct))


def reverse_drift_report(conn: psycopg.Connection) -> DriftReport:
    """dual_write_reverse_drift() (Phase 2 on): how far habit_tracker is from the new schema, in the
    same counts as the forward report (its source rows are the weeks); read by column name, so the
    columns it does not have (e.g. errors) count 0."""
    with conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute("SELECT * FROM public.dual_write_reverse_drift()").fetchone()
    assert row is not None  # one row, like dual_write_drift()

    def count(name: str) -> int:
        return int(row.get(name) or 0)

    return DriftReport(count("source_rows"), count("synced"), count("missing"), count("mismatched"),
                       count("orphaned"), count("errors"), drift_pct=Decimal(row.get("drift_pct") or 0))


def check(report: DriftReport, threshold_pct: Decimal | float | str = DEFAULT_THRESHOLD_PCT) -> DriftReport:
    """Return the report if drift is within the threshold; raise DriftAboveThreshold otherwise."""
    if not report.within(threshold_pct):
        raise DriftAboveThreshold(report, Decimal(str(threshold_pct)))
    return report


# The drift of dual_write_diff(), by what fixes it. A malformed row cannot be projected until
# its data is fixed (habit_tracker_row_error() says why, the same test the trigger and the
# backfill use); every other difference (missing, mismatched, orphaned) a backfill repairs.
# `listed`: malformed rows whose current problem is in dual_write_errors (the backfill moves
# past those; a malformed row not listed yet is one the backfill still has to record).
SPLIT = """
SELECT count(*) FILTER (WHERE NOT m.malformed) AS unsynced,
       count(*) FILTER (WHERE m.malformed) AS malformed,
       count(*) FILTER (WHERE m.malformed AND m.listed) AS listed,
       min(d.legacy_id) FILTER (WHERE NOT (m.malformed AND m.listed)) AS first_to_backfill,
       count(*) FILTER (WHERE m.malformed AND d.legacy_id > %(after)s AND d.legacy_id <= %(last)s) AS malformed_in
FROM public.dual_write_diff() AS d
LEFT JOIN public.habit_tracker AS h ON h.id = d.legacy_id AND d.state <> 'orphaned'
CROSS JOIN LATERAL (
    SELECT CASE WHEN h.id IS NOT NULL THEN public.habit_tracker_row_error(h.habits, h.week_start_date) END AS problem
) AS p
CROSS JOIN LATERAL (
    SELECT p.problem IS NOT NULL AS malformed,
           EXISTS (SELECT FROM public.dual_write_errors AS e
                   WHERE e.tracker_id = d.legacy_id AND e.error = p.problem) AS listed
) AS m
"""


@dataclass(frozen=True)
class DriftSplit:
    unsynced: int  # rows and weeks a backfill brings in sync
    malformed: int  # rows that cannot be projected until their data is fixed
    listed: int  # of the malformed, those whose problem is in dual_write_errors
    first_to_backfill: int | None  # the smallest id the backfill still has work for
    malformed_in: int = 0  # malformed rows with after < id <= last (the ids a backfill run covered)

    @property
    def drifted(self) -> int:
        return self.unsynced + self.malformed

    @property
    def backfill_work(self) -> int:
        """Rows a backfill would change: the unsynced ones, and malformed ones it has yet to record."""
        return self.unsynced + self.malformed - self.listed

    def advice(self, stack: str) -> str:
        """What the drift is made of and the command that fixes each part; '' when there is none."""
        parts = []
        if self.unsynced:
            parts.append(f"{self.unsynced} unsynced rows (written while the trigger did not sync, or changed in "
                         f"the new schema): `invoke backfill --stack {stack}` brings them in sync")
        if self.malformed:
            unlisted = self.malformed - self.listed
            listed = f"{self.listed} listed in dual_write_errors" + (
                f", {unlisted} not yet (`invoke backfill --stack {stack}` records them)" if unlisted else "")
            parts.append(f"{self.malformed} malformed rows ({listed}): `invoke errors --stack {stack}` lists them; "
                         f"fix each row's data, then `invoke errors --stack {stack} --resolve ID`")
        return "; ".join(parts)


def can_split(conn: psycopg.Connection) -> bool:
    """Whether the functions the split reads are in the database (rollback option 3 drops them)."""
    return bool(conn.execute(
        "SELECT to_regprocedure('public.dual_write_diff()') IS NOT NULL AND "
        "to_regprocedure('public.habit_tracker_row_error(jsonb, date)') IS NOT NULL AND "
        "to_regclass('public.dual_write_errors') IS NOT NULL").fetchone()[0])


def drift_split(conn: psycopg.Connection, covered: tuple[int, int] | None = None) -> DriftSplit:
    """The split; `covered` (after, last) also counts the malformed rows among those ids."""
    after, last = covered if covered is not None else (None, None)
    row = conn.execute(SPLIT, {"after": after, "last": last}).fetchone()
    assert row is not None  # an aggregate without GROUP BY returns exactly one row
    return DriftSplit(int(row[0]), int(row[1]), int(row[2]), None if row[3] is None else int(row[3]), int(row[4]))
