"""Phase 0: the trigger exists and is enabled, logs the guide's exact NOTICEs, writes nothing new."""

from __future__ import annotations

import psycopg
import pytest

from dualwrite import migration
from dualwrite.catalog import MIGRATION_013, SCHEMA
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


def test_every_function_is_security_definer_with_empty_search_path(db):
    for obj in MIGRATION_013:
        if obj.kind != "function":
            continue
        definer, config = db.execute(
            "SELECT prosecdef, proconfig FROM pg_proc WHERE oid = to_regprocedure(%s)",
            (f"{SCHEMA}.{obj.name}{obj.signature}",),
        ).fetchone()
        assert definer, obj.name
        assert 'search_path=""' in config, (obj.name, config)


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
