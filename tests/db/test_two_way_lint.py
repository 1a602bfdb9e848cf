"""plpgsql_check on every PL/pgSQL function of Phases 2 and 3, each trigger function with every
table it fires on (NEW/OLD typed), all warning classes on: no finding. The same check as
tests/lint/test_plpgsql_check.py runs on the catalog's routines; these objects join the catalog
with the phase model, and then that test covers them too."""

from __future__ import annotations

import psycopg
import pytest

from dualwrite.objects import Function
from dualwrite.parsed_sql import function_attributes
from two_way import PHASE2_OBJECTS, PHASE3_OBJECTS, apply_phase3

pytestmark = [pytest.mark.db, pytest.mark.lint]

ROUTINES = [obj for obj in PHASE2_OBJECTS + PHASE3_OBJECTS if issubclass(obj.kind, Function)
            and any(f.language == "plpgsql" for f in function_attributes(obj.source(1), obj.file))]
CHECK = """
SELECT lineno, statement, sqlstate, message, detail, level
FROM plpgsql_check_function_tb(%(oid)s::regprocedure, relid => %(relid)s::regclass, fatal_errors => false,
    other_warnings => true, extra_warnings => true, performance_warnings => true, security_warnings => true)
"""


@pytest.fixture
def db(conn: psycopg.Connection, admin_conn: psycopg.Connection) -> psycopg.Connection:
    admin_conn.execute("CREATE EXTENSION IF NOT EXISTS plpgsql_check")
    apply_phase3(conn)
    # Phase 3 drops the forward trigger: check the Phase 2 record function and the rest all at once.
    return conn


@pytest.mark.parametrize("routine", ROUTINES, ids=lambda o: o.name)
def test_plpgsql_check_is_clean(db: psycopg.Connection, routine) -> None:
    oid = f"public.{routine.name}{routine.signature}"
    tables = [r[0] for r in db.execute(
        "SELECT DISTINCT tgrelid::regclass::text FROM pg_trigger WHERE tgfoid = %s::regprocedure AND NOT tgisinternal",
        (oid,)).fetchall()] or ["0"]
    returns = db.execute("SELECT prorettype::regtype::text FROM pg_proc WHERE oid = %s::regprocedure", (oid,)).fetchone()
    assert (returns[0] == "trigger") == (tables != ["0"]), f"{oid}: a trigger function must fire on a table"
    findings = [(table, *row) for table in tables for row in db.execute(CHECK, {"oid": oid, "relid": table}).fetchall()]
    assert not findings, "\n".join(str(f) for f in findings)


def test_every_new_routine_is_pinned_and_closed_to_the_api_roles(db: psycopg.Connection) -> None:
    for obj in PHASE2_OBJECTS + PHASE3_OBJECTS:
        if not issubclass(obj.kind, Function):
            continue
        oid = f"public.{obj.name}{obj.signature}"
        config, definer = db.execute("SELECT proconfig, prosecdef FROM pg_proc WHERE oid = %s::regprocedure",
                                     (oid,)).fetchone()
        assert "search_path=\"\"" in (config or []), oid
        # definer rights only where an API role's write must reach a table it has no privilege on
        assert definer == (obj.name in ("sync_new_to_old", "record_old_client_write")), oid
        for role in ("public", "anon", "authenticated"):
            assert not db.execute("SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, oid)).fetchone()[0], \
                (oid, role)
        expected = obj.name == "dual_write_reverse_drift"
        assert db.execute("SELECT has_function_privilege('service_role', %s, 'EXECUTE')", (oid,)).fetchone()[0] \
            == expected, oid
