"""The benchmark in quick mode runs and fills every row of its table (CI keeps it from rotting).

Never asserts a timing: CI machines differ. Only that each figure ran and produced numbers.
"""

from __future__ import annotations

import json
import math
import os

import pytest

from bench import run
from devenv.localdb import LocalCluster
from tests.conftest import free_port

pytestmark = [pytest.mark.bench, pytest.mark.db]

FIGURES = ("1. write", "2. backfill", "3. drift", "4. cleanup", "5. deploy")


@pytest.fixture
def bench_cluster():
    """A cluster of the test's own: `invoke bench`'s own instance may be running a benchmark."""
    cluster = LocalCluster(name=f"pytest-{os.getpid()}-bench", port=free_port(), dbname="postgres")
    try:
        yield cluster
    finally:
        cluster.destroy()


def test_quick_mode_produces_a_number_for_every_row(tmp_path, bench_cluster):
    rows = run.main(quick=True, results_dir=tmp_path, cluster=bench_cluster)

    assert {row.figure for row in rows} == set(FIGURES)
    for row in rows:  # every row has numbers: no stubs
        assert row.floor and row.target, row
        assert row.status in ("PASS", "MISS", "info"), row
        assert math.isfinite(row.ratio) and row.ratio > 0, row
        assert any(ch.isdigit() for ch in row.result), row
        if row.rounds > 1:  # a ratio from rounds carries its spread
            assert row.ratio_min <= row.ratio <= row.ratio_max, row
    # Quick mode: fewer rounds, still interleaved; only the deploy rows are measured once.
    in_rounds = [row for row in rows if row.figure != "5. deploy"]
    assert all(row.rounds >= 2 for row in in_rounds), [row.case for row in in_rounds if row.rounds < 2]

    # Phase 1's bulk sync, and the app-side floor it is compared with, each leave the copies equal.
    bulk = {row.case: row.values for row in rows if row.case.startswith("Bulk") and " vs " not in row.case}
    synced = [values["drift_pct_after"] for case, values in bulk.items()
              if case.endswith(("Phase 1", "both copies in one statement"))]
    assert len(synced) == 2 and all(drift == [0.0] * len(drift) and drift for drift in synced), bulk

    # Phase 0's CPU rows read the writing backend's own CPU: the floors' messages show in it.
    cpu = {row.case: row for row in rows if row.case.startswith("Backend CPU")}
    assert len(cpu) == 4 and all(len(row.values["cpu_us_rounds"]) == row.rounds for row in cpu.values()), cpu
    for floor in ("empty trigger + the two NOTICEs", "empty trigger + the two LOG lines"):
        assert cpu[f"Backend CPU: {floor} vs no trigger"].ratio < 1, cpu  # each row costs two messages more

    table = (tmp_path / "results.md").read_text()
    assert all(row.case in table for row in rows)
    assert "cores" in table and "PostgreSQL 15" in table
    assert "Quick mode: 2 rounds" in table
    assert (tmp_path / "results.png").stat().st_size > 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert len(data["rows"]) == len(rows)
