"""ruff and mypy on the whole repository, configured in pyproject.toml ([tool.ruff], [tool.mypy]).

Both are pinned in requirements.txt and run from the venv beside the running Python. Their
caches go to a temporary folder, so a run leaves the checkout as it was.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dualwrite.catalog import ROOT

pytestmark = pytest.mark.lint
BIN = Path(sys.executable).parent


def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    binary = BIN / tool
    assert binary.exists(), f"{tool} is not installed in {BIN}: run `bash scripts/setup` (requirements.txt pins it)"
    return subprocess.run([str(binary), *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_finds_nothing():
    result = run("ruff", "check", "--no-cache", "--output-format", "concise", ".")
    assert result.returncode == 0, f"ruff check found problems (fix them, or `# noqa: RULE - why`):\n{result.stdout}{result.stderr}"


def test_mypy_finds_nothing(tmp_path: Path):
    result = run("mypy", "--cache-dir", str(tmp_path / "mypy-cache"))
    assert result.returncode == 0, f"mypy found problems:\n{result.stdout}{result.stderr}"
    assert "Success: no issues found" in result.stdout
