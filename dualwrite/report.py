"""Readable terminal output for tasks: tables of checks and key/value status."""

from __future__ import annotations

from typing import Iterable, Sequence

from rich.console import Console
from rich.table import Table

from dualwrite.smoke import Check

console = Console()


def checks_table(title: str, checks: Sequence[Check]) -> bool:
    """Print the checks; True when every one passed."""
    table = Table(title=title, title_justify="left")
    table.add_column("step")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in checks:
        table.add_row(check.step, check.name, "[green]PASS[/]" if check.ok else "[red]FAIL[/]", check.detail)
    console.print(table)
    passed = sum(c.ok for c in checks)
    colour = "green" if passed == len(checks) else "red"
    console.print(f"[{colour}]{title}: {passed} of {len(checks)} checks passed[/]")
    return passed == len(checks)


def key_values(title: str, rows: Iterable[tuple[str, str]]) -> None:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def error_rows(title: str, rows: Sequence, stack: str) -> None:
    """dual_write_errors records (dualwrite/dual_write_errors.py), each with its status and next step."""
    table = Table(title=title, title_justify="left")
    for column in ("id", "habit_tracker id", "operation", "recorded", "error", "status", "next step"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(str(row.id), str(row.tracker_id), row.operation, f"{row.occurred_at:%Y-%m-%d %H:%M:%S}",
                      row.error, row.status, row.next_step(stack))
    console.print(table)
