"""A lock the app holds longer than the stack's lock_timeout ends a task with one paragraph
(issue 18: one error boundary), and nothing changes."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.db]


def test_cleanup_behind_a_held_lock_is_one_paragraph(e2e_stack):
    stack = e2e_stack(lock_timeout="50ms")
    stack.invoke("up")
    stack.query("INSERT INTO public.idempotency_log (key, operation, status, expires_at) "
                "VALUES ('k1', 'create_week', 'success', now() - interval '1 day')")
    with stack.connect() as app:
        app.autocommit = False
        app.execute("LOCK TABLE public.idempotency_log IN ACCESS EXCLUSIVE MODE")  # the app, mid-transaction
        result = stack.invoke("cleanup", check=False)
        app.rollback()
    message = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in message, message
    # The lock wait's own paragraph (dualwrite/lock_waits.py), which names the sessions it waited for.
    assert f"cleanup of stack '{stack.name}': gave up waiting for a lock" in message, message
    assert "rolled back" in message, message
    assert stack.query("SELECT count(*) FROM public.idempotency_log") == [(1,)]


def test_a_statement_past_statement_timeout_is_one_paragraph(e2e_stack):
    stack = e2e_stack()
    stack.invoke("up")
    stack.set("lock_timeout", "10s")
    stack.set("statement_timeout", "100ms")  # so waiting for the app's lock hits statement_timeout first
    with stack.connect() as app:
        app.autocommit = False
        app.execute("LOCK TABLE public.idempotency_log IN ACCESS EXCLUSIVE MODE")
        result = stack.invoke("cleanup", check=False)
        app.rollback()
    message = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in message, message
    assert f"Stack '{stack.name}': a statement ran longer than the stack's statement_timeout" in message
