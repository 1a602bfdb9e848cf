"""A stack with a database password: it stays a Pulumi secret, out of state, output and logs.

The stack is a throwaway `e2e-secret` (its file is git-ignored) on its own database of the
embedded cluster. The cluster trusts loopback connections, so this proves the plumbing
(secret config -> provider `configure` -> psycopg) and that nothing prints or stores the
password, not PostgreSQL's password check.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from devenv import engine, localdb

ROOT = Path(__file__).resolve().parents[2]
STACK = "e2e-secret"
DATABASE = "e2e_secret"
PASSWORD = "s3cret-Passw0rd-never-printed"
PASSPHRASE = "e2e-passphrase"
pytestmark = [pytest.mark.engine, pytest.mark.db]


def pulumi(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return engine.run(STACK, list(args), capture=True, check=check)


@pytest.fixture
def secret_stack(monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
    cluster = localdb.ensure_running()
    cluster.drop_database(DATABASE)
    cluster.create_database(DATABASE)
    cluster.ensure_app_schema(DATABASE)
    stack_file = ROOT / f"Pulumi.{STACK}.yaml"
    stack_file.write_text(
        "config:\n"
        '  habit-tracker-db:phase: "0"\n'
        "  habit-tracker-db:db_host: 127.0.0.1\n"
        f'  habit-tracker-db:db_port: "{localdb.DEFAULT_PORT}"\n'
        f"  habit-tracker-db:db_name: {DATABASE}\n"
        "  habit-tracker-db:db_sslmode: disable\n"
    )
    engine.ensure_stack(STACK)
    try:
        yield stack_file
    finally:
        pulumi("destroy", "--yes", "--skip-preview", check=False)
        pulumi("stack", "rm", "--yes", "--force", check=False)
        stack_file.unlink(missing_ok=True)
        cluster.drop_database(DATABASE)


def test_password_is_a_secret_everywhere(secret_stack: Path):
    pulumi("config", "set", "--secret", "habit-tracker-db:db_password", PASSWORD)
    assert PASSWORD not in secret_stack.read_text()
    assert "secure:" in secret_stack.read_text()

    up = pulumi("up", "--yes", "--skip-preview")
    preview = pulumi("preview", "--expect-no-changes", "--diff")
    exported = pulumi("stack", "export")
    for text in (up.stdout, up.stderr, preview.stdout, exported.stdout):
        assert PASSWORD not in text

    # The tasks decrypt it in memory to connect, and print nothing of it either.
    env = {**os.environ, "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE}
    smoke = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "invoke"), "smoke-test", "--stack", STACK],
        cwd=ROOT, env=env, text=True, capture_output=True, timeout=300,
    )
    assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]
    assert PASSWORD not in smoke.stdout + smoke.stderr
    url = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "invoke"), "db-url", "--stack", STACK],
        cwd=ROOT, env=env, text=True, capture_output=True, timeout=60, check=True,
    )
    assert url.stdout.startswith(f"postgresql://postgres@127.0.0.1:{localdb.DEFAULT_PORT}/{DATABASE}")
    assert PASSWORD not in url.stdout
