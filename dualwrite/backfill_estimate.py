"""How long a stack's backfill will take: its habit_tracker's size over the benchmark's measured rate.

The size is the target's own: pg_class.reltuples (the planner's estimate, kept by ANALYZE and
autovacuum), or count(*) while the table was never analysed. The rate is the benchmark's
"Backfill (N rows, dualwrite.backfill defaults)" row: N over the median seconds of its rounds,
from the run whose N is nearest the target's size (bench/results/results.json, 100,000 rows;
bench/results/full/results.json, 1,000,000 rows), since the batches shrink as the schema grows.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from dualwrite.catalog import ROOT, SCHEMA
from dualwrite.stack_engine import StackEngine

RESULTS = (ROOT / "bench" / "results" / "results.json", ROOT / "bench" / "results" / "full" / "results.json")


@dataclass(frozen=True)
class Rate:
    rows_per_second: float
    source: str  # which figure: file, row and how it is computed


@dataclass(frozen=True)
class Estimate:
    rows: int
    how_counted: str
    rate: Rate | None

    @property
    def seconds(self) -> float | None:
        return None if self.rate is None else self.rows / self.rate.rows_per_second

    def line(self) -> str:
        size = f"{self.rows:,} rows in habit_tracker ({self.how_counted})"
        if self.rate is None:
            return f"{size}; no benchmark figure to estimate the time from (bench/results/results.json)"
        return (f"{size}, about {duration(self.seconds or 0)} at {self.rate.rows_per_second:,.0f} rows/s "
                f"({self.rate.source})")


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def target_rows(conn: psycopg.Connection) -> tuple[int, str]:
    """(rows in the target's habit_tracker, how they were counted)."""
    table = sql.Identifier(SCHEMA, "habit_tracker")
    reltuples = conn.execute(sql.SQL("SELECT reltuples FROM pg_class WHERE oid = {}::regclass").format(
        sql.Literal(f"{SCHEMA}.habit_tracker"))).fetchone()[0]
    if reltuples >= 0:
        return int(reltuples), "pg_class.reltuples, the planner's estimate"
    return int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()[0]), "count(*)"


def measured_rates(files: tuple[Path, ...] = RESULTS) -> list[tuple[int, Rate]]:
    """(rows the run backfilled, its rate) for each benchmark run that has a backfill row."""
    found = []
    for file in files:
        if not file.is_file():
            continue
        for row in json.loads(file.read_text(encoding="utf-8")).get("rows", []):
            values = row.get("values") or {}
            rounds = values.get("seconds_rounds") or []
            if row.get("figure") == "2. backfill" and values.get("rows") and rounds:
                median = statistics.median(rounds)
                rate = values["rows"] / median
                shown = file.relative_to(ROOT) if file.is_relative_to(ROOT) else file
                found.append((int(values["rows"]), Rate(rate, f"{shown}: \"{row['case']}\", "
                                                              f"{values['rows']:,} rows / median of "
                                                              f"{len(rounds)} rounds {median:.2f} s")))
    return found


def rate_for(rows: int, files: tuple[Path, ...] = RESULTS) -> Rate | None:
    """The measured rate of the run whose size is nearest `rows` (on a log scale)."""
    rates = measured_rates(files)
    if not rates:
        return None
    return min(rates, key=lambda found: abs(math.log(max(rows, 1)) - math.log(found[0])))[1]


def estimate(conn: psycopg.Connection, files: tuple[Path, ...] = RESULTS) -> Estimate:
    rows, how = target_rows(conn)
    return Estimate(rows, how, rate_for(rows, files))


def for_stack(stack: str, engine: StackEngine) -> Estimate | str:
    """The estimate for a stack's database, or one sentence saying why it could not be read."""
    from dualwrite import connection
    from dualwrite.config import ConfigError

    try:
        _, conn = connection.connect(stack, engine=engine, autocommit=True)
    except ConfigError as error:
        return f"size not read: {str(error).splitlines()[0]}"
    with conn:
        try:
            return estimate(conn)
        except psycopg.Error as error:
            return f"size not read from '{stack}': {type(error).__name__}: {str(error).strip().splitlines()[0]}"
