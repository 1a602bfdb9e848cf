"""Phase 0: the trigger exists and is enabled, logs the guide's exact NOTICEs, writes nothing new."""

from __future__ import annotations

import psycopg
import pytest

from dualwrite import migration
from dualwrite.catalog import SCHEMA, objects_in
from dualwrite.objects.function import Function
from sheets import MONDAY, TUESDAY, count, habit, insert_sheet, update_sheet

pytestmark = pytest.mark.db


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    migration.apply(conn, 0)
    return conn


@pytest.fixture
def notices(db: psycopg.Connection) -> list[tuple[str, str]]:
    captured: list[tuple[str, str]] = []
    db.add_notice_handler(lambda d: captured.append((d.severity_nonlocalized or "", d.message_primary or "")))
    return captured


def test_trigger_is_enabled_after_row_on_insert_update_delete(db):
    row = db.execute(
        "SELECT tgrelid::regclass::text, tgenabled, pg_get_triggerdef(oid) FROM pg_trigger "
        "WHERE tgname = 'trigger_habit_tracker_dual_write'"
    ).fetchone()
    assert row[:2] == ("habit_tracker", "O")
    assert "AFTER INSERT OR DELETE OR UPDATE ON public.habit_tracker FOR EACH ROW" in row[2]
    assert "EXECUTE FUNCTION sync_old_to_new()" in row[2]


# SECURITY DEFINER functions of `names` with no pinned search_path: the rule (policy/__main__.py's too).
UNPINNED_DEFINERS = """
SELECT p.proname FROM pg_proc AS p
WHERE p.pronamespace = 'public'::regnamespace AND p.proname = ANY(%s) AND p.prosecdef
  AND NOT EXISTS (SELECT FROM unnest(coalesce(p.proconfig, '{}')) AS s WHERE s LIKE 'search_path=%%')
"""


def unpinned_definers(conn: psycopg.Connection, names: list[str]) -> list[str]:
    return sorted(row[0] for row in conn.execute(UNPINNED_DEFINERS, (names,)))


@pytest.mark.parametrize(("phase", "phase0_log"), [(0, "notice"), (0, "server"), (1, "notice")])
def test_only_phase1_sync_and_the_gate_evidence_are_security_definer_and_every_definer_pins_search_path(
        conn, phase, phase0_log):
    """Only two functions need definer rights: Phase 1's sync_old_to_new_statement() (it writes tables the app's
    roles may not) and dual_write_gate_evidence() (counts a read-only role cannot see past RLS; it
    writes nothing and only pg_read_all_data and service_role may run it). Every definer pins an empty
    search_path; so does every other function but Phase 0's row function, an invoker that runs once per
    written row and resolves no name through search_path (its SQL file says why it carries no SET)."""
    migration.apply(conn, phase, phase0_log=phase0_log)
    functions = [obj for obj in objects_in(phase) if obj.kind is Function]
    seen = {}
    for obj in functions:
        definer, config = conn.execute(
            "SELECT prosecdef, proconfig FROM pg_proc WHERE oid = to_regprocedure(%s)",
            (f"{SCHEMA}.{obj.name}{obj.signature}",),
        ).fetchone()
        seen[obj.name] = definer, config is not None and 'search_path=""' in config
    assert len(seen) >= 6, seen  # the loop checked every function of 013, not none of them
    expected_definers = {"dual_write_gate_evidence"} | ({"sync_old_to_new_statement"} if phase == 1 else set())
    assert {name for name, (definer, _) in seen.items() if definer} == expected_definers
    assert unpinned_definers(conn, list(seen)) == []
    assert {name for name, (_, pinned) in seen.items() if not pinned} == ({"sync_old_to_new"} if phase == 0 else set())


def test_an_unpinned_definer_breaks_the_rule(db):
    """The rule is not vacuous: Phase 0's unpinned row function, made SECURITY DEFINER, is what it finds."""
    names = [obj.name for obj in objects_in(0) if obj.kind is Function]
    assert unpinned_definers(db, names) == []
    db.execute("ALTER FUNCTION public.sync_old_to_new() SECURITY DEFINER")
    assert unpinned_definers(db, names) == ["sync_old_to_new"]


def test_insert_logs_the_guides_two_notices(db, notices):
    sheet = insert_sheet(db, child="Test Child", week=TUESDAY, habits=[habit("Read", "green")])
    assert notices == [
        ("NOTICE", f"Dual-write trigger fired: table=habit_tracker, operation=INSERT, id={sheet}"),
        ("NOTICE", "Trigger details: child_name=Test Child, week_start_date=2025-10-14"),
    ]


def test_date_in_notice_ignores_the_sessions_datestyle(db, notices):
    db.execute("SET DateStyle = 'SQL, DMY'")
    insert_sheet(db, child="A", week=MONDAY)
    assert notices[1] == ("NOTICE", "Trigger details: child_name=A, week_start_date=2025-10-13")


def test_update_and_delete_log_too_delete_with_the_old_row(db, notices):
    sheet = insert_sheet(db, child="A")
    update_sheet(db, sheet, child="B")
    db.execute("DELETE FROM public.habit_tracker WHERE id = %s", (sheet,))
    assert notices[2:] == [
        ("NOTICE", f"Dual-write trigger fired: table=habit_tracker, operation=UPDATE, id={sheet}"),
        ("NOTICE", "Trigger details: child_name=B, week_start_date=2025-10-13"),
        ("NOTICE", f"Dual-write trigger fired: table=habit_tracker, operation=DELETE, id={sheet}"),
        ("NOTICE", "Trigger details: child_name=B, week_start_date=2025-10-13"),
    ]


def test_phase0_writes_nothing_to_the_new_schema(db):
    sheet = insert_sheet(db, habits=[habit("Read", "green", "red")])
    update_sheet(db, sheet, habits=[habit("Walk", "yellow")])
    insert_sheet(db, child="Other", habits={"not": "an array"})
    for table in ("children", "weeks", "habits", "habit_records", "dual_write_errors"):
        assert count(db, table) == 0, table


def test_app_role_writes_through_the_trigger(db, notices):
    """The app writes as `authenticated`; the definer trigger runs regardless."""
    with db.transaction():
        db.execute("SET LOCAL ROLE authenticated")
        insert_sheet(db, child="Role")
    assert any("child_name=Role" in message for _, message in notices)


def test_server_log_mode_raises_the_same_two_lines_as_log(conn):
    """phase0_log: server: the guide's two lines at level LOG: in the server log, not sent to a
    session at the default client_min_messages, and seen by one that asks for LOG."""
    migration.apply(conn, 0, phase0_log="server")
    seen: list[tuple[str, str]] = []
    conn.add_notice_handler(lambda diag: seen.append((diag.severity_nonlocalized, diag.message_primary)))
    conn.execute("SET client_min_messages = notice")
    conn.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                 "VALUES (gen_random_uuid(), 'Quiet', '2025-10-13', '[]')")
    assert seen == []
    conn.execute("SET client_min_messages = log")
    row = conn.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                       "VALUES (gen_random_uuid(), 'Logged', '2025-10-13', '[]') RETURNING id").fetchone()[0]
    assert seen == [("LOG", f"Dual-write trigger fired: table=habit_tracker, operation=INSERT, id={row}"),
                    ("LOG", "Trigger details: child_name=Logged, week_start_date=2025-10-13")]


def test_the_smoke_test_checks_the_configured_mode(conn):
    from dualwrite.config import parse
    from dualwrite.smoke import run_smoke_test

    migration.apply(conn, 0, phase0_log="server")
    server = parse("local", {"phase": "0", "db_host": "127.0.0.1", "phase0_log": "server"}, has_password=False)
    checks = {c.name: c.ok for c in run_smoke_test(conn, server)}
    assert checks["INSERT LOG: trigger fired"] and checks["INSERT LOG: trigger details"]
    notice = parse("local", {"phase": "0", "db_host": "127.0.0.1"}, has_password=False)
    checks = {c.name: c.ok for c in run_smoke_test(conn, notice)}
    assert checks["INSERT NOTICE: trigger fired"] is False  # deployed as server, declared notice: it says so


@pytest.mark.parametrize("phase0_log", ["notice", "server"])
def test_the_smoke_tests_security_rows_pass_in_phase_0_and_fail_for_an_unpinned_definer(conn, phase0_log):
    """Phase 0's row function is an unpinned invoker, as declared: no security row fails. Made SECURITY
    DEFINER by hand, it must pin, and its row says it does not."""
    from dualwrite.config import parse
    from dualwrite.smoke import run_smoke_test

    migration.apply(conn, 0, phase0_log=phase0_log)
    config = parse("local", {"phase": "0", "db_host": "127.0.0.1", "phase0_log": phase0_log}, has_password=False)
    security = {c.name: c.ok for c in run_smoke_test(conn, config) if c.step == "security"}
    assert len(security) >= 10 and all(security.values()), security
    assert "sync_old_to_new: search_path pinned" not in security
    conn.execute("ALTER FUNCTION public.sync_old_to_new() SECURITY DEFINER")
    security = {c.name: c.ok for c in run_smoke_test(conn, config) if c.step == "security"}
    assert security["sync_old_to_new: search_path pinned"] is False
