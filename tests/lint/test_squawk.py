"""squawk, the migration linter, on every SQL file of sql/ (migration 013 and the app's tables).

Configured by .squawk.toml at the repository root: each excluded rule there has a comment
saying why. A finding in a single statement that is right as it is gets a
`-- squawk-ignore <rule>` line above it, with its reason, in the SQL file itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dualwrite.catalog import ROOT, SQL_DIR

pytestmark = pytest.mark.lint

CONFIG = ROOT / ".squawk.toml"


def squawk_binary() -> str:
    # The venv's own (pinned in requirements.txt), whether or not .venv/bin is on PATH.
    beside_python = Path(sys.executable).parent / "squawk"
    found = str(beside_python) if beside_python.exists() else shutil.which("squawk")
    if not found:
        pytest.fail("squawk not found: it is pinned in requirements.txt (squawk-cli); run `bash scripts/setup`")
    return found


def sql_files() -> list[Path]:
    return sorted(SQL_DIR.rglob("*.sql"))


def test_every_sql_file_is_linted() -> None:
    dirs = {path.parent.name for path in sql_files()}
    assert {"013", "app"} <= dirs, f"sql/ files found only in {sorted(dirs)}"


def test_squawk_passes_on_sql() -> None:
    files = [str(path.relative_to(ROOT)) for path in sql_files()]
    result = subprocess.run(
        # gcc: one plain line per finding (file:line:col: rule message), no terminal colours.
        [squawk_binary(), "--config", str(CONFIG), "--reporter", "gcc", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"squawk found problems (exit {result.returncode}) in sql/; fix them, or, where a finding is "
        f"wrong for this project, document an exclusion (see .squawk.toml):\n{result.stdout}{result.stderr}"
    )


def test_each_excluded_rule_says_why() -> None:
    """Every rule in excluded_rules has a comment line right above it (or above its group)."""
    text = CONFIG.read_text(encoding="utf-8")
    excluded = tomllib.loads(text)["excluded_rules"]
    lines = text.splitlines()
    undocumented = []
    for rule in excluded:
        (index,) = [i for i, line in enumerate(lines) if re.fullmatch(rf'\s*"{re.escape(rule)}",?\s*', line)]
        above = index - 1
        while above >= 0 and re.fullmatch(r'\s*"[a-z-]+",?\s*', lines[above]):
            above -= 1  # rules grouped under one comment
        if above < 0 or not lines[above].strip().startswith("#"):
            undocumented.append(rule)
    assert not undocumented, f".squawk.toml excludes rules without a comment saying why: {undocumented}"
