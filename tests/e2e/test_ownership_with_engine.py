"""A database has one owner (issue 17, item 4), with the real engine.

A stack file copied from another and pointing at the same database is refused at preview
(one paragraph naming the owner) and creates nothing; `invoke take-ownership` moves it on
purpose, after which the new owner adopts the objects and the old stack can neither change
nor drop them. The record is out of the API roles' reach.
"""

from __future__ import annotations

import pytest

from dualwrite.catalog import objects_in

pytestmark = [pytest.mark.engine, pytest.mark.db]


def assert_refused(result, *expected: str) -> None:
    message = result.stdout + result.stderr
    assert result.returncode != 0, message[-3000:]
    for text in expected:
        assert text in message, message[-3000:]
    assert "Traceback" not in message, message[-3000:]


def test_a_copied_stack_file_is_refused_until_ownership_is_taken_on_purpose(e2e_stack):
    first = e2e_stack()
    first.invoke("up")
    first.query("INSERT INTO public.idempotency_log (key, operation, status) VALUES ('kept', 'create_week', 'success')")
    second = e2e_stack()
    second.stack_file.write_text(second.stack_file.read_text().replace(
        f'db_port: "{second.cluster.port}"', f'db_port: "{first.cluster.port}"'))  # copied, same database
    catalog_before = first.query("SELECT oid, xmin::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace "
                                 "UNION ALL SELECT oid, xmin::text FROM pg_class WHERE relnamespace = 'public'::regnamespace")

    refusal = (f"Stack '{second.name}' cannot deploy migration 013 to database 'habit_tracker'",
               f"stack '{first.name}' of project 'habit-tracker-db' owns it there",
               f"invoke take-ownership --stack {second.name} --from {first.name}")
    assert_refused(second.invoke("preview", check=False), *refusal)
    assert_refused(second.invoke("up", check=False), *refusal)
    assert first.query("SELECT oid, xmin::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace "
                       "UNION ALL SELECT oid, xmin::text FROM pg_class WHERE relnamespace = 'public'::regnamespace") \
        == catalog_before  # nothing was created, adopted or replaced
    assert first.query("SELECT project, stack FROM habit_tracker_db.owner") == [("habit-tracker-db", first.name)]
    first.invoke("preview", "--refresh", "--expect-no-changes")  # the owner is untouched

    # The record is out of the API roles' reach.
    for role in ("anon", "authenticated", "service_role"):
        assert first.query("SELECT has_schema_privilege(%s, 'habit_tracker_db', 'USAGE'), "
                           "has_table_privilege(%s, 'habit_tracker_db.owner', 'SELECT, INSERT, UPDATE, DELETE')",
                           role, role) == [(False, False)]

    # Only an explicit command moves it, and only from its actual owner.
    assert_refused(second.invoke("take-ownership", "--from", "someone-else", check=False),
                   f"is owned by stack '{first.name}'", "not by 'someone-else'")
    second.invoke("take-ownership", "--from", first.name)
    second.invoke("up")  # adopts the objects
    second.invoke("preview", "--expect-no-changes")
    assert first.query("SELECT project, stack FROM habit_tracker_db.owner") == [("habit-tracker-db", second.name)]

    # The old stack can neither change nor drop what the new owner manages.
    assert_refused(first.invoke("up", check=False), f"Stack '{first.name}' cannot deploy migration 013",
                   f"stack '{second.name}' of project 'habit-tracker-db' owns it there")
    assert_refused(first.invoke("destroy", check=False), f"Stack '{first.name}' does not drop",
                   f"stack '{second.name}' of project 'habit-tracker-db' owns migration 013 there now")
    assert sorted(o.name for o in objects_in(0)) == first.objects_of_013()
    assert first.query("SELECT key FROM public.idempotency_log") == [("kept",)]
    assert "FAIL" not in second.invoke("smoke-test").stdout


def test_destroy_releases_the_claim(e2e_stack):
    stack = e2e_stack()
    stack.invoke("up")
    stack.invoke("destroy")
    assert stack.query("SELECT to_regnamespace('habit_tracker_db')") == [(None,)]
