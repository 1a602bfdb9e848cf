"""idempotency_log as the guide's verification steps 1-2 and the security notes describe it."""

from __future__ import annotations

import psycopg
import pytest

from dualwrite import migration

pytestmark = pytest.mark.db

COLUMNS = [
    ("id", "uuid", "NO"),
    ("key", "text", "NO"),
    ("operation", "text", "NO"),
    ("request_data", "jsonb", "YES"),
    ("response_data", "jsonb", "YES"),
    ("status", "text", "NO"),
    ("created_at", "timestamp with time zone", "NO"),
    ("expires_at", "timestamp with time zone", "NO"),
]
INDEXES = ["idempotency_log_pkey", "idx_idempotency_created", "idx_idempotency_expires",
           "idx_idempotency_key", "idx_idempotency_status"]


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    migration.apply(conn, 0)
    return conn


def log_row(conn: psycopg.Connection, key: str, operation: str = "create_week", status: str = "success") -> None:
    conn.execute("INSERT INTO public.idempotency_log (key, operation, status) VALUES (%s, %s, %s)",
                 (key, operation, status))


def test_exactly_the_eight_columns_with_their_types(db):
    rows = db.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = 'idempotency_log' ORDER BY ordinal_position"
    ).fetchall()
    assert rows == COLUMNS


def test_five_indexes_and_key_unique_through_idx_idempotency_key_only(db):
    names = [r[0] for r in db.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'idempotency_log' ORDER BY 1"
    ).fetchall()]
    assert names == INDEXES
    unique = [r[0] for r in db.execute(
        "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'public.idempotency_log'::regclass "
        "AND indisunique AND NOT indisprimary"
    ).fetchall()]
    assert unique == ["idx_idempotency_key"]


def test_defaults_and_key_uniqueness(db):
    log_row(db, "k1")
    created, expires = db.execute("SELECT created_at, expires_at FROM public.idempotency_log").fetchone()
    assert (expires - created).total_seconds() == 24 * 3600
    with pytest.raises(psycopg.errors.UniqueViolation):
        log_row(db, "k1")


@pytest.mark.parametrize("operation, status", [("drop_table", "success"), ("create_week", "pending")])
def test_operation_and_status_are_constrained(db, operation, status):
    with pytest.raises(psycopg.errors.CheckViolation):
        log_row(db, "k", operation, status)


def test_allowed_operations_and_statuses(db):
    for i, (operation, status) in enumerate([("create_week", "success"), ("update_habit_record", "failed"),
                                             ("delete_week", "not_implemented")]):
        log_row(db, f"k{i}", operation, status)
    assert db.execute("SELECT count(*) FROM public.idempotency_log").fetchone()[0] == 3


def test_rls_enabled_with_a_service_role_policy(db):
    assert db.execute("SELECT relrowsecurity FROM pg_class WHERE oid = 'public.idempotency_log'::regclass").fetchone()[0]
    policies = db.execute(
        "SELECT polname, polroles::regrole[]::text[] FROM pg_policy WHERE polrelid = 'public.idempotency_log'::regclass"
    ).fetchall()
    assert policies == [("idempotency_log_service_role_only", ["service_role"])]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_can_neither_read_nor_write(db, role):
    log_row(db, "secret")
    for statement in ("SELECT * FROM public.idempotency_log",
                      "INSERT INTO public.idempotency_log (key, operation, status) VALUES ('x', 'create_week', 'success')",
                      "DELETE FROM public.idempotency_log"):
        with db.transaction(force_rollback=True):
            db.execute(f"SET LOCAL ROLE {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                db.execute(statement)


def test_service_role_reads_and_writes(db):
    log_row(db, "a")
    with db.transaction(force_rollback=True):
        db.execute("SET LOCAL ROLE service_role")
        db.execute("INSERT INTO public.idempotency_log (key, operation, status) VALUES ('b', 'delete_week', 'failed')")
        assert db.execute("SELECT count(*) FROM public.idempotency_log").fetchone()[0] == 2
        db.execute("UPDATE public.idempotency_log SET status = 'success' WHERE key = 'b'")
        db.execute("DELETE FROM public.idempotency_log WHERE key = 'a'")


def test_policy_alone_hides_rows_from_a_role_with_a_stray_grant(db):
    """Defence in depth: even if SELECT is granted by mistake, RLS shows anon no row."""
    log_row(db, "a")
    db.execute("GRANT SELECT ON public.idempotency_log TO anon")
    with db.transaction(force_rollback=True):
        db.execute("SET LOCAL ROLE anon")
        assert db.execute("SELECT count(*) FROM public.idempotency_log").fetchone()[0] == 0


@pytest.mark.parametrize("role, allowed", [("anon", False), ("authenticated", False), ("service_role", True)])
def test_execute_on_cleanup_only_for_service_role(db, role, allowed):
    assert db.execute(
        "SELECT has_function_privilege(%s, 'public.cleanup_idempotency_log()', 'EXECUTE')", (role,)
    ).fetchone()[0] is allowed
    public = db.execute(
        "SELECT bool_or(a.grantee = 0) FROM pg_proc p, aclexplode(p.proacl) a "
        "WHERE p.oid = 'public.cleanup_idempotency_log()'::regprocedure"
    ).fetchone()[0]
    assert not public
