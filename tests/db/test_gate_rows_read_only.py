"""The gate's rows of the previous stack, read as its read-only preview role (issue 16).

A pull request's job reaches the stack before as `<stack>_preview` (dualwrite/readonly_roles.py):
pg_read_all_data, no write privilege, and no way past row-level security. Every row the gate
reads there must be right for it, not merely readable: errors, drift and the Edge Function's
rows come through dual_write_gate_evidence() (counts and times, as the owner), the only function
pg_read_all_data may EXECUTE; anon and authenticated may not.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from psycopg import sql

from dualwrite import gate, migration, readonly_roles
from dualwrite.config import parse
from dualwrite.smoke import READ_ONLY_SKIP, run_smoke_test
from sheets import habit, insert_sheet

pytestmark = pytest.mark.db
PASSWORD = "preview-role-password-in-a-db-test"


def config(**raw: str):
    return parse("dev", {"phase": "1", "db_host": "127.0.0.1", **raw}, has_password=False)


@pytest.fixture
def preview(conn: psycopg.Connection, db_url: str, admin_conn: psycopg.Connection):
    """A preview role of this test's own (roles are cluster-wide: a unique name, dropped after)."""
    migration.apply(conn, 1)
    role = f"gate_preview_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_url, autocommit=True) as owner:
        readonly_roles.ensure_preview_role(owner, role, PASSWORD)
    url = psycopg.conninfo.make_conninfo(db_url, user=role, password=PASSWORD)
    try:
        with psycopg.connect(url, autocommit=True) as reader:
            yield reader
    finally:
        admin_conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        admin_conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_the_preview_role_reads_every_row_of_the_previous_stack(conn, preview):
    insert_sheet(conn, child="ok", habits=[habit("Read", "green")])
    assert gate.drift(preview, config()).ok  # on main: permission denied for function dual_write_drift
    assert gate.errors(preview, config(), config()).ok
    # RLS shows the preview role no row of dual_write_errors: its own SELECT would see 0, always.
    assert preview.execute("SELECT count(*) FROM public.dual_write_errors").fetchone() == (0,)
    insert_sheet(conn, child="bad", habits={"not": "a list"})  # malformed: logged, and drift
    row = gate.drift(preview, config())
    assert not row.ok and "1 of 2 rows drifted" in row.detail
    row = gate.errors(preview, config(), config())
    assert not row.ok and "1 row(s) in the last 24 h" in row.detail and "dual_write_gate_evidence()" in row.detail
    assert preview.execute("SELECT count(*) FROM public.dual_write_errors").fetchone() == (0,)


def test_the_read_only_smoke_test_skips_only_the_test_row_and_the_cron_rows_it_cannot_see(conn, preview):
    checks = run_smoke_test(preview, config(), writes=False)
    failed = [c for c in checks if not c.ok]
    assert not failed, failed
    assert [c.name for c in checks if c.detail == READ_ONLY_SKIP] == ["test trigger"]
    drift = next(c for c in checks if c.name.startswith("drift at most"))
    assert drift.detail == "drift=0%"  # read, not skipped


def test_the_evidence_function_gives_no_power_to_write_and_none_to_the_api_roles(conn, preview):
    preview.execute("SET default_transaction_read_only = off")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        preview.execute("INSERT INTO public.dual_write_errors (tracker_id, operation, error) VALUES (1, 'x', 'y')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the invoker functions stay the owner's
        preview.execute("SELECT * FROM public.dual_write_drift()")
    rows = conn.execute(
        "SELECT p.proname, p.prosecdef, p.provolatile, array_to_string(p.proconfig, ','), "
        "has_function_privilege('anon', p.oid, 'EXECUTE') OR has_function_privilege('authenticated', p.oid, 'EXECUTE') "
        "FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace "
        "AND has_function_privilege('pg_read_all_data', p.oid, 'EXECUTE')").fetchall()
    assert rows == [("dual_write_gate_evidence", True, "s", "search_path=\"\"", False)]
