"""bench/results/: results.md (the table), results.png (the plot), results.json (every number)."""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

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
        f"{' / '.join(f'{x:.1f}' for x in machine['load_average_at_start'])}"
        + (f", at end {' / '.join(f'{x:.1f}' for x in machine['load_average_at_end'])}"
           if machine.get("load_average_at_end") else "")
        + " (other jobs share the machine). "
        + (f"Figures run: {', '.join(machine['figures'])}. " if machine.get("figures") else "") +
        "Every ratio is against a floor measured in the same run: rows with rounds ran the floor and the "
        "variant in turn, round after round (order reversed every other round); the ratio is the median of "
        "the per-round ratios, PASS/MISS is judged on it, and the spread is their min-max. "
        + (f"**Quick mode: {machine['sizes']['write_rounds']} rounds per write row, fewer than the 5 of the "
           "default mode; read its spreads accordingly.** " if machine["mode"] == "quick" else "") +
        f"Source: commit {machine['source']['commit']}"
        + (f", with uncommitted SQL: {', '.join(line[3:] for line in machine['source']['uncommitted_sql'])}"
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
    measured = [r for r in rows if not math.isnan(r.ratio)][::-1]
    # One bar per write variant (a variant judged against two floors has two rows).
    writes = list({r.values["label"]: r for r in rows
                   if r.figure == "1. write" and r.values and "tps_rounds" in r.values}.values())[::-1]
    names = [textwrap.fill(r.case, 65) for r in measured]
    labels = [textwrap.fill(r.values["label"], 40) for r in writes]

    # Height from the rows and their tallest wrapped label, so the labels never crowd each other
    # (the right panel needs an extra line per bar for its latency text).
    def height(texts: list[str], extra: int = 0) -> float:
        return len(texts) * (max((t.count("\n") + 1 for t in texts), default=1) + extra)

    lines = max(height(names), height(labels, extra=1))
    fig, (left, right) = plt.subplots(1, 2, figsize=(20, max(6.0, 2.5 + 0.17 * lines)), layout="constrained",
                                      gridspec_kw={"width_ratios": [6, 5]})

    colors = {"PASS": "tab:green", "MISS": "tab:red"}
    ratios = [r.ratio for r in measured]
    low = [r.ratio - (r.ratio_min if r.ratio_min is not None else r.ratio) for r in measured]
    high = [(r.ratio_max if r.ratio_max is not None else r.ratio) - r.ratio for r in measured]
    ys = range(len(measured))
    left.barh(ys, ratios, color=[colors.get(r.status, "tab:gray") for r in measured],
              xerr=[low, high], error_kw={"ecolor": "black", "capsize": 3, "linewidth": 0.8})
    left.set_yticks(ys, names, fontsize=8)
    left.set_ylim(-0.6, len(measured) - 0.4)
    left.axvline(1.0, color="black", linewidth=0.8)
    left.set_xscale("log")
    tops = [r.ratio_max if r.ratio_max is not None else r.ratio for r in measured]
    if measured:  # room on the right for the value text of the longest bar
        left.set_xlim(min(min(ratios), min(r.ratio_min or r.ratio for r in measured)) / 1.5, max(tops) * 3)
    left.set_xlabel("ratio to the row's floor (log scale; 1 = the floor)")
    left.set_title("Each measurement / its floor: median of the rounds, error bar min-max\n"
                   "(green PASS, red MISS, grey: no target)", fontsize=10)
    for y, (row, top) in enumerate(zip(measured, tops)):
        left.annotate(f"{row.ratio:.2f}x", (top, y), xytext=(3, 0), textcoords="offset points", va="center",
                      fontsize=8, zorder=5,
                      bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none"})
    left.legend(handles=[Patch(color="tab:green", label="PASS"), Patch(color="tab:red", label="MISS"),
                         Patch(color="tab:gray", label="no target")],
                loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=3, fontsize=8, frameon=False)

    tps = [r.values["tps"] for r in writes]
    ys = range(len(writes))
    right.barh(ys, tps, color="tab:blue", alpha=0.8, height=0.55,
               xerr=[[t - min(r.values["tps_rounds"]) for t, r in zip(tps, writes)],
                     [max(r.values["tps_rounds"]) - t for t, r in zip(tps, writes)]],
               error_kw={"ecolor": "black", "capsize": 3, "linewidth": 0.8}, label="TPS (median, min-max)")
    right.set_yticks(ys, labels, fontsize=8)
    right.set_ylim(-0.6, len(writes) - 0.4)
    right.set_xlabel("TPS (pgbench mixed writes), blue bars")
    right.set_xlim(0, max((max(r.values["tps_rounds"]) for r in writes), default=1) * 1.08)
    twin = right.twiny()
    p99 = [r.values["p99_ms"] for r in writes]
    p50 = [r.values["p50_ms"] for r in writes]
    twin.plot(p99, ys, "o", color="tab:orange", markeredgecolor="black", markersize=7, label="p99 ms")
    twin.plot(p50, ys, "s", color="tab:purple", markeredgecolor="black", markersize=6, label="p50 ms")
    twin.axvline(5.0, color="tab:red", linestyle=":", linewidth=1.5, label="Phase 1 p99 target (5 ms)")
    for y, a, b in zip(ys, p50, p99):
        twin.annotate(f"p50 {a:.2f} ms, p99 {b:.2f} ms", (0, y - 0.3), xytext=(3, -1),
                      textcoords="offset points", va="top", fontsize=7, color="dimgray")
    twin.set_xlim(0, max([5.0, *p99]) * 1.15)
    twin.set_xlabel("latency, ms (markers, top axis)")
    handles = [*right.get_legend_handles_labels()[0], *twin.get_legend_handles_labels()[0]]
    right.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=4, fontsize=8,
                 frameon=False)
    right.set_title("Write cost per variant\n(bars: median TPS of the rounds, error bar min-max; "
                    "markers: latency)", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(out: Path, rows: list["Row"], machine: dict) -> None:
    (out / "results.md").write_text(markdown(rows, machine), encoding="utf-8")
    plot(rows, out / "results.png")
    payload = {"machine": machine, "rows": [asdict(r) for r in rows]}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
