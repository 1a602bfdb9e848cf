"""Locks read from deploy SQL by PostgreSQL's parser: each row of dualwrite/locks.py's table,
with its table and its PostgreSQL 15 lock level, and what the parser sees that a scanner did not."""

from __future__ import annotations

import pytest

from dualwrite.catalog import by_name
from dualwrite.locks import analyse, locks
from dualwrite.parsed_sql import SqlSyntaxError


def modes(text: str) -> list[tuple[str, str]]:
    return [(lock.table, lock.mode) for lock in locks(text)]


@pytest.mark.parametrize(("statement", "expected"), [
    ("LOCK TABLE public.habit_tracker IN SHARE ROW EXCLUSIVE MODE", [("habit_tracker", "SHARE ROW EXCLUSIVE")]),
    ("LOCK habit_tracker", [("habit_tracker", "ACCESS EXCLUSIVE")]),
    ("CREATE INDEX i ON public.idempotency_log (key)", [("idempotency_log", "SHARE")]),
    ("CREATE UNIQUE INDEX CONCURRENTLY i ON app.t USING btree (k) WHERE k > 0", [("app.t", "SHARE UPDATE EXCLUSIVE")]),
    # An index statement locks the index's table, looked up from the catalog's declared index files.
    ("DROP INDEX IF EXISTS public.idx_idempotency_status", [("idempotency_log", "ACCESS EXCLUSIVE")]),
    ("DROP INDEX CONCURRENTLY IF EXISTS public.idx_idempotency_status", [("idempotency_log", "SHARE UPDATE EXCLUSIVE")]),
    ("DROP INDEX public.idx_idempotency_key_new", [("idempotency_log", "ACCESS EXCLUSIVE")]),
    ("ALTER INDEX public.idx_idempotency_key_new RENAME TO idx_idempotency_key",
     [("idempotency_log", "SHARE UPDATE EXCLUSIVE")]),
    ("CREATE POLICY p ON public.idempotency_log AS PERMISSIVE FOR ALL TO service_role USING (true)",
     [("idempotency_log", "ACCESS EXCLUSIVE")]),
    ("DROP POLICY IF EXISTS p ON public.idempotency_log", [("idempotency_log", "ACCESS EXCLUSIVE")]),
    ("CREATE OR REPLACE TRIGGER t AFTER INSERT ON public.habit_tracker FOR EACH ROW EXECUTE FUNCTION f()",
     [("habit_tracker", "SHARE ROW EXCLUSIVE")]),
    ("DROP TRIGGER IF EXISTS t ON public.habit_tracker", [("habit_tracker", "ACCESS EXCLUSIVE")]),
    ("ALTER TABLE public.habit_tracker DISABLE TRIGGER t", [("habit_tracker", "SHARE ROW EXCLUSIVE")]),
    ("ALTER TABLE public.habit_tracker ENABLE TRIGGER t", [("habit_tracker", "SHARE ROW EXCLUSIVE")]),
    ("ALTER TABLE public.idempotency_log ENABLE ROW LEVEL SECURITY", [("idempotency_log", "ACCESS EXCLUSIVE")]),
    ("ALTER TABLE public.habit_tracker ADD COLUMN c int", [("habit_tracker", "ACCESS EXCLUSIVE")]),
    ("ALTER TABLE public.habit_tracker VALIDATE CONSTRAINT c", [("habit_tracker", "SHARE UPDATE EXCLUSIVE")]),
    ("CREATE OR REPLACE FUNCTION public.f() RETURNS void LANGUAGE sql AS $$ SELECT 1 $$", []),
    ("CREATE OR REPLACE PROCEDURE public.p(integer) LANGUAGE sql AS $$ SELECT 1 $$", []),
    ("GRANT SELECT ON public.idempotency_log TO service_role", []),
    ("REVOKE ALL ON FUNCTION public.f() FROM PUBLIC, anon", []),
    ("DROP TABLE IF EXISTS public.dual_write_errors", [("dual_write_errors", "ACCESS EXCLUSIVE")]),
    ("COMMENT ON TABLE public.habit_tracker IS 'x'", [("habit_tracker", "SHARE UPDATE EXCLUSIVE")]),
    ("COMMENT ON INDEX public.idx_idempotency_key IS 'x'", [("idempotency_log", "SHARE UPDATE EXCLUSIVE")]),
    ("COMMENT ON TRIGGER t ON public.habit_tracker IS 'x'", [("habit_tracker", "SHARE UPDATE EXCLUSIVE")]),
    ("COMMENT ON FUNCTION public.f() IS 'x'", []),
    ("SELECT cron.schedule('cleanup_idempotency_log', '17 3 * * *', 'CALL x()')", [("cron.job", "ROW EXCLUSIVE")]),
    ("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = 'cleanup_idempotency_log'",
     [("cron.job", "ROW EXCLUSIVE")]),
])
def test_each_statement_names_its_table_and_lock_level(statement: str, expected: list[tuple[str, str]]):
    assert modes(statement) == expected


def test_create_table_locks_only_the_new_table_and_what_its_foreign_keys_reference():
    found = locks("CREATE TABLE public.t (id int REFERENCES public.children (id)); "
                  "ALTER TABLE public.t ENABLE ROW LEVEL SECURITY")
    assert [(lock.table, lock.mode, lock.new_table) for lock in found] == [
        ("t", "ACCESS EXCLUSIVE", True), ("children", "SHARE ROW EXCLUSIVE", False), ("t", "ACCESS EXCLUSIVE", True)]


def test_concurrently_runs_outside_a_transaction_and_says_so():
    build, drop = locks("CREATE INDEX CONCURRENTLY i ON public.idempotency_log (k); "
                        "DROP INDEX CONCURRENTLY public.idx_idempotency_status")
    assert build.outside_transaction and drop.outside_transaction
    assert build.bounded("3s", 5) == ("LOCK idempotency_log SHARE UPDATE EXCLUSIVE, lock_timeout 3s, 5 retries "
                                      "(outside any transaction)")
    assert not locks("CREATE INDEX i ON public.idempotency_log (k)")[0].outside_transaction


def test_an_index_of_the_same_sql_or_an_unknown_one():
    # Created earlier in the same SQL: its table comes from that statement.
    assert modes("CREATE INDEX x ON app.t (k); DROP INDEX x") == [("app.t", "SHARE"), ("app.t", "ACCESS EXCLUSIVE")]
    assert modes("DROP INDEX x", ) == [("(the table of index x: not declared in 013)", "ACCESS EXCLUSIVE")]
    assert modes("DROP INDEX x", ) != [("x", "ACCESS EXCLUSIVE")]


def test_comments_strings_and_bodies_are_not_statements():
    assert modes("-- LOCK TABLE x IN ACCESS EXCLUSIVE MODE\nGRANT SELECT ON t TO r") == []
    assert modes("/* DROP TABLE x; */ SELECT 'DROP TABLE y; LOCK z'") == []
    assert modes("CREATE FUNCTION f() RETURNS void AS $body$ BEGIN LOCK TABLE t IN ACCESS EXCLUSIVE MODE; END "
                 "$body$ LANGUAGE plpgsql") == []
    assert modes('DROP TABLE "Odd; name"') == [('Odd; name', 'ACCESS EXCLUSIVE')]


def test_unknown_statements_are_listed_not_dropped():
    found = analyse("DO $$ BEGIN PERFORM 1; END $$; SELECT public.backfill_habit_tracker(0, 10)")
    assert found.locks == []
    assert found.unread[0].startswith("DO") and "public.backfill_habit_tracker" in found.unread[1]


def test_sql_postgresql_refuses_is_an_error_with_its_line():
    with pytest.raises(SqlSyntaxError, match="sql/013/x.sql: .* at line 2"):
        locks("SELECT 1;\nCREATE TABLE (", "sql/013/x.sql")


def test_migration_013_files():
    assert modes(by_name("trigger_habit_tracker_dual_write").source(0)) == [("habit_tracker", "SHARE ROW EXCLUSIVE")]
    # Its file locks habit_tracker before the replace; its body runs at write time, not at deploy.
    assert modes(by_name("sync_old_to_new_statement").source(1)) == [("habit_tracker", "SHARE ROW EXCLUSIVE")]
    assert modes(by_name("idx_idempotency_key").source(0)) == [("idempotency_log", "SHARE")]
    assert modes(by_name("idempotency_log").source(0)) == [("idempotency_log", "ACCESS EXCLUSIVE")] * 3


def test_the_index_swap_an_update_runs():
    index = by_name("idx_idempotency_status").operations()
    text = ";\n".join(s.as_string(None) for s in index.planned_sql("update", {}, ["checksum"]))
    found = locks(text)
    assert [(lock.table, lock.mode, lock.outside_transaction) for lock in found] == [
        ("idempotency_log", "ACCESS EXCLUSIVE", False),  # DROP INDEX IF EXISTS the _new left by a cut-off build
        ("idempotency_log", "SHARE UPDATE EXCLUSIVE", True),  # CREATE INDEX CONCURRENTLY ..._new
        ("idempotency_log", "ACCESS EXCLUSIVE", False),  # DROP INDEX the old one
        ("idempotency_log", "SHARE UPDATE EXCLUSIVE", False),  # ALTER INDEX ..._new RENAME
    ]
    assert found[3].on == "index idx_idempotency_status_new"


@pytest.mark.parametrize(("query", "writes"), [
    ("INSERT INTO public.habit_tracker (user_id, child_name) VALUES ($1, $2)", True),
    ('update "habit_tracker" set habits = $1 where id = $2', True),
    ("/* app */ DELETE FROM habit_tracker WHERE id = $1", True),
    ("WITH x AS (SELECT $1 AS id) DELETE FROM public.habit_tracker USING x WHERE habit_tracker.id = x.id", True),
    ("SELECT * FROM public.habit_tracker WHERE id = $1", False),
    ("INSERT INTO public.habit_tracker_archive SELECT * FROM public.habit_tracker", False),
    ("INSERT INTO other.habit_tracker VALUES ($1)", False),
    ("not sql at all", False),
])
def test_which_statements_write_habit_tracker(query: str, writes: bool):
    """The gate's performance row reads pg_stat_statements' writes to habit_tracker this way."""
    from dualwrite.parsed_sql import writes_to

    assert writes_to(query, "public", "habit_tracker") is writes
