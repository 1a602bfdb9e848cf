"""Every failure a user can cause reads as one paragraph, never a traceback, and changes nothing."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import free_port

pytestmark = [pytest.mark.engine, pytest.mark.db]


def assert_one_paragraph(result, *expected: str) -> None:
    message = result.stdout + result.stderr
    assert result.returncode != 0, message[-2000:]
    assert "Traceback" not in message, message[-3000:]
    for text in expected:
        assert text in message, message[-3000:]


def nothing_of_013(stack) -> bool:
    return stack.query("SELECT to_regclass('public.idempotency_log') IS NULL "
                       "AND to_regprocedure('public.sync_old_to_new()') IS NULL") == [(True,)]


def test_broken_yaml(e2e_stack):
    stack = e2e_stack()
    stack.stack_file.write_text(stack.stack_file.read_text().replace('  habit-tracker-db:phase: "0"',
                                                                     '  habit-tracker-db:phase: "0\n   bad: [', 1))
    for task in ("up", "smoke-test", "drift"):
        assert_one_paragraph(stack.invoke(task, check=False), stack.stack_file.name, "is not valid YAML", "line")
    assert nothing_of_013(stack)


def test_a_database_that_cannot_be_reached(e2e_stack):
    stack = e2e_stack()
    stack.set("db_port", str(free_port()))  # nothing listens there
    for task in ("up", "preview", "smoke-test", "monitor", "backfill"):
        assert_one_paragraph(stack.invoke(task, check=False), f"Stack '{stack.name}'",
                             "cannot reach its database", "habit-tracker-db:db_host, db_port")
    stack.set("db_port", str(stack.cluster.port))
    assert nothing_of_013(stack)


def test_a_new_stack_without_the_passphrase(e2e_stack):
    stack = e2e_stack()
    for task in ("up", "preview"):
        assert_one_paragraph(stack.invoke(task, check=False, without=("PULUMI_CONFIG_PASSPHRASE",)),
                             f"Stack '{stack.name}': no passphrase", "PULUMI_CONFIG_PASSPHRASE")
    assert nothing_of_013(stack)


def test_a_misspelt_key_names_the_closest_known_one(e2e_stack):
    stack = e2e_stack()
    stack.set("phsae", "1")
    by_task = stack.invoke("up", check=False)
    by_engine = stack.pulumi("preview", check=False)  # the program refuses too
    for result in (by_task, by_engine):
        assert_one_paragraph(result, "'habit-tracker-db:phsae' is not one this project reads",
                             "did you mean 'habit-tracker-db:phase'?")
    assert nothing_of_013(stack)
