"""The owner record of migration 013 (dualwrite/objects/ownership.py) on a real database."""

from __future__ import annotations

import psycopg
import psycopg.sql
import pytest

from dualwrite.catalog import ownership_props
from dualwrite.db import Session
from dualwrite.objects import Ownership
from dualwrite.objects.ownership import OwnedElsewhere, Owner, recorded, refuse_unless_owner, take_over

pytestmark = pytest.mark.db


@pytest.fixture(autouse=True)
def database_grant(admin_conn) -> None:
    """`postgres` may create schemas, as on Supabase and as sql/app/database.sql grants; a database
    copied from the tests' template does not inherit that database-level grant."""
    db = admin_conn.execute("SELECT current_database()").fetchone()[0]
    admin_conn.execute(psycopg.sql.SQL("GRANT ALL ON DATABASE {} TO postgres").format(psycopg.sql.Identifier(db)))


def record(stack: str) -> Ownership:
    return Ownership(ownership_props("habit-tracker-db", stack))


def test_the_first_stack_claims_a_second_is_refused_before_anything_changes(conn):
    session = Session.on(conn)
    record("dev").apply_create(session)
    assert recorded(conn)[0] == Owner("habit-tracker-db", "dev")
    copy = record("dev-copy")
    problem = copy.incompatibility(conn)  # what the provider's check says at preview
    assert problem and "Stack 'dev-copy' cannot deploy migration 013" in problem and "stack 'dev' of project" in problem
    assert "invoke take-ownership --stack dev-copy --from dev" in problem
    with pytest.raises(OwnedElsewhere):
        copy.apply_create(session)
    assert recorded(conn)[0] == Owner("habit-tracker-db", "dev")
    assert record("dev").incompatibility(conn) is None
    record("dev").apply_update(session, {})  # its own: nothing to refuse


def test_the_record_is_out_of_the_api_roles_reach(conn):
    record("dev").apply_create(Session.on(conn))
    for role in ("anon", "authenticated", "service_role", "authenticator"):
        assert conn.execute("SELECT has_schema_privilege(%s, 'habit_tracker_db', 'USAGE'), "
                            "has_table_privilege(%s, 'habit_tracker_db.owner', 'SELECT, INSERT, UPDATE, DELETE')",
                            (role, role)).fetchone() == (False, False)


def test_take_over_moves_it_only_from_its_owner(conn):
    session = Session.on(conn)
    with pytest.raises(OwnedElsewhere, match="No stack owns migration 013"):
        session.change(lambda c: take_over(c, Owner("habit-tracker-db", "prod"), "dev"))
    record("dev").apply_create(session)
    with pytest.raises(OwnedElsewhere, match="owned by stack 'dev'.*not by 'staging'"):
        session.change(lambda c: take_over(c, Owner("habit-tracker-db", "prod"), "staging"))
    assert session.change(lambda c: take_over(c, Owner("habit-tracker-db", "prod"), "dev")) == \
        Owner("habit-tracker-db", "dev")
    assert recorded(conn)[0] == Owner("habit-tracker-db", "prod")
    # The old owner's deletes are refused; the new owner's and old state's (no owner) are not.
    with pytest.raises(OwnedElsewhere, match="Stack 'dev' does not drop table public.x"):
        refuse_unless_owner(conn, "habit-tracker-db/dev", "table public.x")
    refuse_unless_owner(conn, "habit-tracker-db/prod", "table public.x")
    refuse_unless_owner(conn, None, "table public.x")


def test_release_drops_the_record_once_nothing_is_claimed(conn):
    session = Session.on(conn)
    record("dev").apply_create(session)
    record("other").apply_delete(session)  # not its claim: nothing happens
    assert recorded(conn)[0].stack == "dev"
    record("dev").apply_delete(session)
    assert conn.execute("SELECT to_regnamespace('habit_tracker_db')").fetchone()[0] is None


def test_two_claims_at_once_serialize(conn, db_url):
    """The claim locks the record: a second claimant waits, then sees the first one's row."""
    session = Session.on(conn)
    record("dev").apply_create(session)
    conn.execute("DELETE FROM habit_tracker_db.owner")
    with psycopg.connect(db_url) as first:
        record("a").create(first)  # claimed, not committed: holds the record's lock
        with pytest.raises(psycopg.errors.LockNotAvailable):
            record("b").apply_create(Session.on(conn, lock_timeout="200ms", retries=0))
        first.commit()
    with pytest.raises(OwnedElsewhere, match="stack 'a' of project"):
        record("b").apply_create(session)


def test_a_rollback_from_a_stack_that_does_not_own_the_database_is_refused(conn, db_url):
    from psycopg.conninfo import conninfo_to_dict

    from dualwrite import migration, rollback

    migration.apply(conn, 0)
    record("prod").apply_create(Session.on(conn))
    info = conninfo_to_dict(db_url)
    with pytest.raises(OwnedElsewhere, match="Stack 'prod-copy' does not drop migration 013 \\(rollback all\\)"):
        rollback.execute(info, "all", lock_timeout="2s", statement_timeout="10s", owner="habit-tracker-db/prod-copy")
    assert conn.execute("SELECT to_regclass('public.idempotency_log') IS NOT NULL").fetchone()[0]  # nothing dropped
    rollback.execute(info, "disable", lock_timeout="2s", statement_timeout="10s", owner="habit-tracker-db/prod")
    assert conn.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = 'trigger_habit_tracker_dual_write'"
                        ).fetchone()[0] == "D"
