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
