"""infra.migration: the catalog applied in one transaction, switched per phase, dropped without residue."""

from __future__ import annotations

import psycopg
import pytest
from pglast import ast

from dualwrite import migration, parsed_sql
from dualwrite.catalog import by_name, objects_in
from dualwrite.db import Session
from dualwrite.objects import Function
from dualwrite.objects.table import IncompatibleTable
from sheets import count, insert_sheet

pytestmark = pytest.mark.db

OBJECTS = """
SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = ANY(%(names)s)
UNION ALL SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proname = ANY(%(names)s)
UNION ALL SELECT tgname FROM pg_trigger WHERE tgname = ANY(%(names)s)
"""


def names(phase: int) -> set[str]:
    return {o.name for o in objects_in(phase)}


def present(conn: psycopg.Connection) -> set[str]:
    """The objects of phases 0 and 1 the database has."""
    return {r[0] for r in conn.execute(OBJECTS, {"names": sorted(names(0) | names(1))}).fetchall()}


def body(conn: psycopg.Connection, function: str = "sync_old_to_new") -> str:
    return conn.execute("SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure(%s)",
                        (f"public.{function}()",)).fetchone()[0]


def test_every_file_is_plain_sql_for_one_transaction():
    for phase in (0, 1):
        for obj in objects_in(phase):
            # PostgreSQL's parser refuses psql meta-commands (`\\i`, `\\set`): parsing is that check.
            statements = parsed_sql.statements(obj.source(phase), obj.file)
            for statement in statements:
                node = statement.node
                assert not isinstance(node, ast.TransactionStmt), f"{obj.file}: {statement.head()}"
                assert not getattr(node, "if_not_exists", False), f"{obj.file}: {statement.head()}"
            if obj.kind is Function:
                assert any(isinstance(s.node, ast.CreateFunctionStmt) and s.node.replace for s in statements), obj.file


def test_apply_creates_every_catalog_object(conn):
    migration.apply(conn, 0)
    assert present(conn) == names(0)


STATEMENT_SYNC = {"sync_habit_tracker_rows", "sync_one_habit_tracker_row", "sync_old_to_new_statement",
                  "trigger_habit_tracker_dual_write_insert", "trigger_habit_tracker_dual_write_update",
                  "trigger_habit_tracker_dual_write_delete"}


def test_set_phase_swaps_the_body_and_adds_then_drops_the_statement_sync(conn):
    migration.apply(conn, 0)
    phase0 = body(conn)
    assert not present(conn) & STATEMENT_SYNC  # Phase 0 only logs: no statement trigger, no transition table
    migration.set_phase(conn, 1)
    # Phase 1 syncs once per statement; the guide's row trigger keeps only its messages.
    assert present(conn) == names(0) | STATEMENT_SYNC == names(1)
    assert body(conn) != phase0 and "sync_habit_tracker_rows" in body(conn, "sync_old_to_new_statement")
    migration.set_phase(conn, 0)
    assert body(conn) == phase0 and present(conn) == names(0)
    # CREATE OR REPLACE keeps privileges: still no EXECUTE for PUBLIC.
    assert not conn.execute("SELECT has_function_privilege('anon', 'public.sync_old_to_new()', 'EXECUTE')").fetchone()[0]


def test_a_failed_object_leaves_nothing_of_itself_and_the_objects_before_it_stay(conn):
    """Per-object transactions, as a deploy runs them: the objects created before the failure
    stay (a deploy's state records them), the failing one leaves nothing half-done."""
    conn.execute("CREATE TABLE public.dual_write_errors (x int)")  # collides half-way through the catalog
    with pytest.raises(IncompatibleTable, match="dual_write_errors already exists but is not the declared one"):
        migration.apply(conn, 0)
    ordered = [o.name for o in objects_in(0)]
    before = set(ordered[: ordered.index("dual_write_errors")])
    assert present(conn) == before | {"dual_write_errors"}
    columns = conn.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.dual_write_errors'::regclass "
                           "AND attnum > 0").fetchone()[0]
    assert columns == 1  # still the hand-made table: its failed CREATE left nothing


def test_drop_removes_everything_and_keeps_app_rows(conn):
    migration.apply(conn, 1)
    insert_sheet(conn)
    migration.drop(conn)
    assert present(conn) == set()
    assert count(conn, "habit_tracker") == 1 and count(conn, "weeks") == 1
    migration.drop(conn)  # idempotent


def test_phase_must_be_a_place_on_the_path(conn):
    for bad in (5, -1, "1"):
        with pytest.raises(ValueError, match="phase must be a place on the path 0..4"):
            migration.apply(conn, bad)  # type: ignore[arg-type]


def test_flip_to_phase1_waits_for_inflight_writers_within_lock_timeout(conn, db_url):
    """The phase 1 file of the function that syncs locks habit_tracker first: a writer
    mid-transaction makes the flip wait (bounded by lock_timeout, retried), never the other way round."""
    migration.apply(conn, 0)
    with psycopg.connect(db_url) as writer:
        insert_sheet(writer, child="in flight")  # open transaction holding ROW EXCLUSIVE
        quick = Session.on(conn, lock_timeout="100ms", retries=0)
        with pytest.raises(psycopg.errors.LockNotAvailable):
            by_name("sync_old_to_new_statement").operations(1).apply_update(quick, {})
        writer.commit()
    migration.set_phase(conn, 1)
    assert "sync_habit_tracker_rows" in body(conn, "sync_old_to_new_statement")
