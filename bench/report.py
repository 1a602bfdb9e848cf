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


def _spread(row: "Row") -> str:
    if row.ratio_min is None or row.ratio_max is None:
        return "(measured once)"
    return f"{row.ratio_min:.2f}-{row.ratio_max:.2f}x"


def markdown(rows: list["Row"], machine: dict) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in sorted(machine["settings"].items()))
    lines = [
        "# Migration 013 benchmarks",
        "",
        f"Measured on {machine['cores']} cores ({machine['cpu']}), {machine['memory_gb']} GB RAM, "
        f"{machine['postgres']}; server settings: {settings}. Mode `{machine['mode']}`, "
        f"whole run {machine['seconds']:.0f} s; load average at start "
        f"{' / '.join(f'{x:.1f}' for x in machine['load_average_at_start'])} (other jobs share the machine). "
        "Every ratio is against a floor measured in the same run: rows with rounds ran the floor and the "
        "variant in turn, round after round (order reversed every other round); the ratio is the median of "
        "the per-round ratios, PASS/MISS is judged on it, and the spread is their min-max. "
        + (f"**Quick mode: {machine['sizes']['write_rounds']} rounds per write row, fewer than the 5 of the "
           "default mode; read its spreads accordingly.** " if machine["mode"] == "quick" else "") +
        f"Source: commit {machine['source']['commit']}"
        + (f", with uncommitted SQL: {', '.join(l[3:] for l in machine['source']['uncommitted_sql'])}"
           if machine["source"]["uncommitted_sql"] else ", SQL as committed") + ".",
        "",
        "| # | Measurement | Result | Floor | Ratio (median) | Spread (min-max) | Rounds | Target | Status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        status = {"PASS": "PASS", "MISS": "**MISS**"}.get(row.status, row.status)
        lines.append(f"| {row.figure} | {row.case} | {row.result} | {row.floor} | {_ratio(row.ratio)} | "
                     f"{_spread(row)} | {row.rounds} | {row.target} | {status} |")
    notes = [f"- **{row.case}**: {row.note}" for row in rows if row.note]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines) + "\n"


def plot(rows: list["Row"], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(18, 10), gridspec_kw={"width_ratios": [3, 2]})
    measured = [r for r in rows if not math.isnan(r.ratio)][::-1]
    colors = {"PASS": "tab:green", "MISS": "tab:red"}
    names = [r.case for r in measured]
    ratios = [r.ratio for r in measured]
    low = [r.ratio - (r.ratio_min if r.ratio_min is not None else r.ratio) for r in measured]
    high = [(r.ratio_max if r.ratio_max is not None else r.ratio) - r.ratio for r in measured]
    left.barh(names, ratios, color=[colors.get(r.status, "tab:gray") for r in measured],
              xerr=[low, high], error_kw={"ecolor": "black", "capsize": 3, "linewidth": 0.8})
    left.tick_params(axis="y", labelsize=7)
    left.axvline(1.0, color="black", linewidth=0.8)
    left.set_xscale("log")
    left.set_xlabel("ratio to the row's floor (log scale; 1 = the floor)")
    left.set_title("Each measurement / its floor: median of the rounds, error bar min-max\n"
                   "(green PASS, red MISS, grey: no target)", fontsize=10)
    for y, row in enumerate(measured):
        left.text(row.ratio_max if row.ratio_max is not None else row.ratio, y, f" {row.ratio:.2f}x",
                  va="center", fontsize=7)

    # One bar per write variant (a variant judged against two floors has two rows).
    writes = list({r.values["label"]: r for r in rows
                   if r.figure == "1. write" and r.values and "tps_rounds" in r.values}.values())
    labels = [r.values["label"] for r in writes]
    tps = [r.values["tps"] for r in writes]
    right.bar(labels, tps, color="tab:blue",
              yerr=[[t - min(r.values["tps_rounds"]) for t, r in zip(tps, writes)],
                    [max(r.values["tps_rounds"]) - t for t, r in zip(tps, writes)]],
              error_kw={"ecolor": "black", "capsize": 3, "linewidth": 0.8})
    right.set_ylabel("TPS (pgbench mixed writes)")
    twin = right.twinx()
    twin.plot(labels, [r.values["p99_ms"] for r in writes], "o-", color="tab:orange", label="p99 ms")
    twin.plot(labels, [r.values["p50_ms"] for r in writes], "s--", color="tab:purple", label="p50 ms")
    twin.axhline(5.0, color="tab:red", linestyle=":", label="Phase 1 p99 target (5 ms)")
    twin.set_ylabel("latency, ms")
    twin.legend(loc="upper left", fontsize=8)
    right.tick_params(axis="x", labelrotation=60, labelsize=7)
    right.set_title("Write cost per variant\n(bars: median TPS of the rounds, error bar min-max; lines: latency)",
                    fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(out: Path, rows: list["Row"], machine: dict) -> None:
    (out / "results.md").write_text(markdown(rows, machine), encoding="utf-8")
    plot(rows, out / "results.png")
    payload = {"machine": machine, "rows": [asdict(r) for r in rows]}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
