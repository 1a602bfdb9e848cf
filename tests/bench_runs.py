"""Benchmark results files with known backfill rounds, for tests of what reads them (dualwrite/backfill_estimate.py).

Tests read these, not bench/results/: a new benchmark run changes the committed figures."""

from __future__ import annotations

import json
from pathlib import Path


def backfill_run(directory: Path, rows: int, rounds: list[float]) -> Path:
    """A results.json in `directory` whose only row is a backfill of `rows` rows taking `rounds` seconds."""
    directory.mkdir(parents=True, exist_ok=True)
    file = directory / "results.json"
    file.write_text(json.dumps({"rows": [{
        "figure": "2. backfill", "case": f"Backfill ({rows:,} rows, dualwrite.backfill defaults)",
        "values": {"rows": rows, "seconds_rounds": rounds}}]}), encoding="utf-8")
    return file


def default_and_full(directory: Path) -> tuple[Path, Path]:
    """A default run (100,000 rows, rounds of 41, 40 and 39 s: 2,500 rows/s) and a full run
    (1,000,000 rows, median round 800 s: 1,250 rows/s)."""
    return (backfill_run(directory / "default", 100_000, [41.0, 40.0, 39.0]),
            backfill_run(directory / "full", 1_000_000, [800.0, 790.0, 810.0]))
