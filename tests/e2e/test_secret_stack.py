"""A stack with a database password: it stays a Pulumi secret, out of state, output and logs.

The stack is one of the test's own (tests/e2e/conftest.py). Its cluster trusts loopback
connections, so this proves the plumbing (secret config -> provider `configure` -> psycopg)
and that nothing prints or stores the password, not PostgreSQL's password check.
"""

from __future__ import annotations

import pytest

PASSWORD = "s3cret-Passw0rd-never-printed"
pytestmark = [pytest.mark.engine, pytest.mark.db]


def test_password_is_a_secret_everywhere(e2e_stack):
    stack = e2e_stack()
    stack.pulumi("config", "set", "--secret", "habit-tracker-db:db_password", PASSWORD)
    assert PASSWORD not in stack.stack_file.read_text()
    assert "secure:" in stack.stack_file.read_text()

    up = stack.pulumi("up", "--yes", "--skip-preview")
    preview = stack.pulumi("preview", "--expect-no-changes", "--diff")
    exported = stack.pulumi("stack", "export")
    for text in (up.stdout, up.stderr, preview.stdout, exported.stdout):
        assert PASSWORD not in text

    # The tasks decrypt it in memory to connect, and print nothing of it either.
    smoke = stack.invoke("smoke-test")
    assert PASSWORD not in smoke.stdout + smoke.stderr
    url = stack.invoke("db-url")
    assert url.stdout.startswith(f"postgresql://postgres@127.0.0.1:{stack.cluster.port}/habit_tracker")
    assert PASSWORD not in url.stdout
