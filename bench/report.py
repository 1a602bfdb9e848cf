"""bench/results/: results.md (the table), results.png (the plot), results.json (every number)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:
    from bench.run import Row


def _ratio(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}x"


def markdown(rows: list["Row"], machine: dict) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in sorted(machine["settings"].items()))
    lines = [
        "# Migration 013 benchmarks",
        "",
        f"Measured on {machine['cores']} cores ({machine['cpu']}), {machine['memory_gb']} GB RAM, "
        f"{machine['postgres']}; server settings: {settings}. Mode `{machine['mode']}`, "
        f"whole run {machine['seconds']:.0f} s; load average at start "
        f"{' / '.join(f'{x:.1f}' for x in machine['load_average_at_start'])} (other jobs share the machine). "
        "Every ratio is against a floor measured in the same run. "
        f"Source: commit {machine['source']['commit']}"
        + (f", with uncommitted SQL: {', '.join(l[3:] for l in machine['source']['uncommitted_sql'])}"
           if machine["source"]["uncommitted_sql"] else ", SQL as committed") + ".",
        "",
        "| # | Measurement | Result | Floor | Ratio | Target | Status |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        status = {"PASS": "PASS", "MISS": "**MISS**"}.get(row.status, row.status)
        lines.append(f"| {row.figure} | {row.case} | {row.result} | {row.floor} | {_ratio(row.ratio)} | "
                     f"{row.target} | {status} |")
    notes = [f"- **{row.case}**: {row.note}" for row in rows if row.note]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines) + "\n"


def plot(rows: list["Row"], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(16, 7), gridspec_kw={"width_ratios": [3, 2]})
    measured = [r for r in rows if not math.isnan(r.ratio)]
    colors = {"PASS": "tab:green", "MISS": "tab:red"}
    names = [r.case for r in measured][::-1]
    ratios = [r.ratio for r in measured][::-1]
    left.barh(names, ratios, color=[colors.get(r.status, "tab:gray") for r in measured][::-1])
    left.axvline(1.0, color="black", linewidth=0.8)
    left.set_xscale("log")
    left.set_xlabel("ratio to the row's floor (log scale; 1 = the floor)")
    left.set_title("Each measurement / its floor\n(green PASS, red MISS, grey: no target)", fontsize=10)
    for y, value in enumerate(ratios):
        left.text(value, y, f" {value:.2f}x", va="center", fontsize=8)

    writes = [r for r in rows if r.figure == "1. write" and r.values]
    labels = [r.values["label"] for r in writes]
    right.bar(labels, [r.values["tps"] for r in writes], color="tab:blue")
    right.set_ylabel("TPS (pgbench mixed writes)")
    twin = right.twinx()
    twin.plot(labels, [r.values["p99_ms"] for r in writes], "o-", color="tab:orange", label="p99 ms")
    twin.plot(labels, [r.values["p50_ms"] for r in writes], "s--", color="tab:purple", label="p50 ms")
    twin.axhline(5.0, color="tab:red", linestyle=":", label="Phase 1 p99 target (5 ms)")
    twin.set_ylabel("latency, ms")
    twin.legend(loc="upper left", fontsize=8)
    right.tick_params(axis="x", labelrotation=20)
    right.set_title("Write cost per phase\n(bars: TPS; lines: latency)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(out: Path, rows: list["Row"], machine: dict) -> None:
    (out / "results.md").write_text(markdown(rows, machine), encoding="utf-8")
    plot(rows, out / "results.png")
    payload = {"machine": machine, "rows": [asdict(r) for r in rows]}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
