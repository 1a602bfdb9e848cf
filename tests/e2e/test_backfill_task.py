"""`invoke backfill --batch-size N` takes its size as typed and runs on the stack's database."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.db]


def test_backfill_with_a_batch_size(e2e_stack):
    stack = e2e_stack(phase="1")
    stack.invoke("up")
    stack.query("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                "SELECT gen_random_uuid(), 'Child ' || n, DATE '2025-10-13', '[]' FROM generate_series(1, 3) n")
    done = stack.invoke("backfill", "--batch-size", "2")
    # The trigger synced the rows as they were written: nothing is left for the backfill.
    assert f"backfill of stack '{stack.name}': projected 0 rows" in done.stdout, done.stdout
    assert done.stdout.rstrip().endswith("left 0"), done.stdout
