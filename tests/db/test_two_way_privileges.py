"""Every routine of Phases 2 and 3: search_path pinned, SECURITY DEFINER only where an API role's
write must reach a table it has no privilege on (the two trigger functions that write the other
copy or the old-client record), no EXECUTE for PUBLIC, anon or authenticated, and EXECUTE for
service_role only on the reverse drift it monitors with. (plpgsql_check covers them through the
catalog: tests/lint/test_plpgsql_check.py, phases 2 and 3.)"""

from __future__ import annotations

import psycopg
import pytest

from dualwrite.objects import Function
from two_way import PHASE2_OBJECTS, PHASE3_OBJECTS, apply_phase3

pytestmark = pytest.mark.db


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    apply_phase3(conn)  # every routine of Phase 2 is still there in Phase 3
    return conn


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
