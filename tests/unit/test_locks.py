"""Locks read from deploy SQL: the rows of dualwrite/locks.py's table, and function bodies skipped."""

from __future__ import annotations

from dualwrite.catalog import by_name
from dualwrite.locks import locks


def modes(text: str) -> list[tuple[str, str, bool]]:
    return [(lock.table, lock.mode, lock.new_table) for lock in locks(text)]


def test_each_rule():
    assert modes("LOCK TABLE public.habit_tracker IN SHARE ROW EXCLUSIVE MODE") == [
        ("habit_tracker", "SHARE ROW EXCLUSIVE", False)]
    assert modes("CREATE INDEX i ON public.idempotency_log (key)") == [("idempotency_log", "SHARE", False)]
    assert modes("CREATE INDEX CONCURRENTLY i ON t (k)") == [("t", "SHARE UPDATE EXCLUSIVE", False)]
    assert modes("ALTER TABLE public.habit_tracker DISABLE TRIGGER x") == [("habit_tracker", "SHARE ROW EXCLUSIVE", False)]
    assert modes("ALTER TABLE public.habit_tracker ADD COLUMN c int") == [("habit_tracker", "ACCESS EXCLUSIVE", False)]
    assert modes("DROP TRIGGER IF EXISTS x ON public.habit_tracker") == [("habit_tracker", "ACCESS EXCLUSIVE", False)]
    assert modes("CREATE TABLE public.t (id int); ALTER TABLE public.t ENABLE ROW LEVEL SECURITY") == [
        ("t", "ACCESS EXCLUSIVE", True), ("t", "ACCESS EXCLUSIVE", True)]
    assert modes("-- LOCK TABLE x IN ACCESS EXCLUSIVE MODE\nGRANT SELECT ON t TO r") == []
    assert modes("CREATE FUNCTION f() RETURNS void AS $body$ BEGIN LOCK TABLE t IN ACCESS EXCLUSIVE MODE; END "
                 "$body$ LANGUAGE plpgsql") == []


def test_migration_013_files():
    assert modes(by_name("trigger_habit_tracker_dual_write").source(0)) == [
        ("habit_tracker", "SHARE ROW EXCLUSIVE", False)]
    assert ("habit_tracker", "SHARE ROW EXCLUSIVE", False) in modes(by_name("sync_old_to_new").source(1))
    assert modes(by_name("idx_idempotency_key").source(0)) == [("idempotency_log", "SHARE", False)]
