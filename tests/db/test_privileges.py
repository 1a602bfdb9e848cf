"""No window for the API roles: each object is created with its privileges, in one transaction.

Supabase's default privileges grant every new object in `public` to anon, authenticated and
service_role (sql/app/roles.sql mirrors that). A deploy that stops after any object, a
killed one included, must leave nothing the API roles can use.
"""

from __future__ import annotations

import pytest

from dualwrite.catalog import by_name, objects_in
from dualwrite.db import Session
from dualwrite.objects import Function
from dualwrite.smoke import api_role_access

pytestmark = pytest.mark.db



@pytest.mark.parametrize("phase", [0, 1])
def test_after_every_committed_object_the_api_roles_can_use_none(conn, phase):
    # The local cluster grants new objects to the API roles by default: the revokes are needed.
    conn.execute("CREATE FUNCTION public.probe() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    assert conn.execute("SELECT has_function_privilege('anon', 'public.probe()', 'EXECUTE')").fetchone()[0]
    conn.execute("DROP FUNCTION public.probe()")
    session = Session.on(conn)
    for obj in objects_in(phase):
        obj.operations(phase).apply_create(session)  # one transaction, as `pulumi up` commits it
        assert api_role_access(conn) == [], f"API roles can use something after {obj.name}"


def test_service_role_keeps_what_the_edge_function_and_monitoring_need(conn):
    for obj in objects_in(0):
        obj.operations(0).apply_create(Session.on(conn))
    can = lambda q, *a: conn.execute(q, a).fetchone()[0]  # noqa: E731
    assert can("SELECT has_table_privilege('service_role', 'public.idempotency_log', 'SELECT,INSERT,UPDATE,DELETE')")
    assert not can("SELECT has_table_privilege('service_role', 'public.idempotency_log', 'TRUNCATE')")
    assert can("SELECT has_function_privilege('service_role', 'public.dual_write_drift()', 'EXECUTE')")
    assert not can("SELECT has_function_privilege('service_role', 'public.sync_old_to_new()', 'EXECUTE')")


def test_only_the_phase_1_trigger_function_and_the_gate_evidence_are_security_definer_and_pin_search_path(conn):
    for phase in (0, 1):
        session = Session.on(conn)
        for obj in objects_in(phase):
            (obj.operations(phase).apply_update(session, {}) if phase else obj.operations(0).apply_create(session))
        rows = conn.execute(
            "SELECT proname, prosecdef, array_to_string(proconfig, ',') FROM pg_proc "
            "WHERE pronamespace = 'public'::regnamespace AND proname = ANY(%s) AND prokind = 'f'",
            ([o.name for o in objects_in(phase) if o.kind is Function],),
        ).fetchall()
        # dual_write_gate_evidence(): counts for read-only roles that RLS would blind (its SQL file says why);
        # Phase 1's statement function writes the new schema for API roles that cannot (the guide's row
        # function only raises its NOTICEs, as the invoker).
        assert {name for name, definer, _ in rows if definer} == (
            {"sync_old_to_new_statement", "dual_write_gate_evidence"} if phase == 1 else {"dual_write_gate_evidence"})
        assert all("search_path=" in (settings or "") for _, definer, settings in rows if definer), rows
        # Unpinned only where nothing runs with the owner's rights and nothing resolves through search_path:
        # Phase 0's row function, once per written row (sql/013/sync_old_to_new.phase0.sql says why).
        assert {name for name, _, settings in rows if "search_path=" not in (settings or "")} == (
            set() if phase else {"sync_old_to_new"}), rows


def test_a_grant_made_by_hand_is_put_back_by_the_next_update(conn):
    table = by_name("idempotency_log").operations(0)
    table.apply_create(Session.on(conn))
    conn.execute("GRANT SELECT ON public.idempotency_log TO anon")  # a click in the dashboard
    assert conn.execute("SELECT has_table_privilege('anon', 'public.idempotency_log', 'SELECT')").fetchone()[0]
    table.apply_update(Session.on(conn), table.props)
    assert not conn.execute("SELECT has_table_privilege('anon', 'public.idempotency_log', 'SELECT')").fetchone()[0]
