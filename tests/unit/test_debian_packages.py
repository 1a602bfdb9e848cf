"""scripts/debian-packages: PGDG is added only where the distribution has no postgresql-15 (GitHub's
ubuntu-24.04), never where it has one (Debian 12, this project's machines). apt and dpkg are stubs
on PATH that log their calls; nothing is installed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STUB = """#!/usr/bin/env bash
echo "{name} $*" >> "$STUB_LOG"
{body}
"""
APT_CACHE_POLICY = {
    "debian": "postgresql-15:\n  Installed: (none)\n  Candidate: 15.20-0+deb12u1\n",
    "ubuntu-24.04": "postgresql-15:\n  Installed: (none)\n  Candidate: (none)\n",
}


def run_script(tmp_path: Path, distro: str, installed: bool = False) -> list[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "log"
    log.touch()
    stubs = {
        "dpkg-query": 'echo -n "install ok installed"' if installed else "exit 1",
        "apt-get": "exit 0",
        "apt-cache": f"printf '%s' '{APT_CACHE_POLICY[distro]}'",
        "sudo": '"$@"',
        "pgdg": "exit 0",
    }
    for name, body in stubs.items():
        (bin_dir / name).write_text(STUB.format(name=name, body=body))
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_LOG": str(log),
           "PGDG_SCRIPT": str(bin_dir / "pgdg")}
    subprocess.run(["bash", str(ROOT / "scripts" / "debian-packages")], env=env, check=True, capture_output=True)
    return [line for line in log.read_text().splitlines() if not line.startswith("dpkg-query")]


def test_debian_installs_from_its_own_archive_without_pgdg(tmp_path):
    calls = run_script(tmp_path, "debian")
    assert not any(call.startswith("pgdg") for call in calls)
    assert calls[-1].startswith("apt-get install -y -qq postgresql-15 postgresql-15-cron postgresql-15-plpgsql-check")


def test_ubuntu_2404_adds_pgdg_before_installing(tmp_path):
    calls = [call.removeprefix("sudo ") for call in run_script(tmp_path, "ubuntu-24.04")]
    pgdg = next(i for i, call in enumerate(calls) if call.startswith("pgdg"))
    assert calls[pgdg] == "pgdg -y"
    assert "apt-get install -y -qq postgresql-common" in calls[:pgdg]
    assert calls[-1].startswith("apt-get install -y -qq postgresql-15 ")


@pytest.mark.parametrize("distro", sorted(APT_CACHE_POLICY))
def test_nothing_happens_when_everything_is_installed(tmp_path, distro):
    assert run_script(tmp_path, distro, installed=True) == []
