"""Retirement: the archive kind renames habit_tracker away from every API role and back, keeping
every row and restoring exactly the ACLs it had (table and columns)."""

from __future__ import annotations

import psycopg
import pytest

from dualwrite.db import Session
from dualwrite.objects import Archive, kind_of
from dualwrite.objects.archive import ArchiveRefused
from sheets import count, generate_sheets

pytestmark = pytest.mark.db

PROPS = {"kind": "archive", "name": "habit_tracker_archive", "schema": "public", "source": "habit_tracker",
         "archived": True}
ACLS = ("SELECT c.relacl::text, (SELECT jsonb_object_agg(a.attname, a.attacl::text) FROM pg_attribute a "
        "WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL) FROM pg_class c WHERE c.oid = to_regclass(%s)")
API_ROLES = ("anon", "authenticated", "service_role")


def readable(conn: psycopg.Connection, role: str, table: str) -> bool:
    return conn.execute("SELECT has_table_privilege(%s, %s, 'SELECT')", (role, table)).fetchone()[0]


@pytest.fixture
def archive(conn: psycopg.Connection) -> Archive:
    generate_sheets(conn, 300)
    # An ACL with a bit of everything: default grants, a grant option, a column grant, PUBLIC.
    conn.execute("REVOKE ALL ON public.habit_tracker FROM anon")
    conn.execute("GRANT SELECT (id, child_name) ON public.habit_tracker TO anon")
    conn.execute("GRANT SELECT ON public.habit_tracker TO PUBLIC")
    conn.execute("GRANT UPDATE ON public.habit_tracker TO service_role WITH GRANT OPTION")
    kind = kind_of(PROPS)
    assert isinstance(kind, Archive)
    return kind


def test_create_and_delete_round_trip_keeps_every_row_and_acl(conn, archive):
    before_rows = conn.execute("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM public.habit_tracker t").fetchone()
    before_acls = conn.execute(ACLS, ("public.habit_tracker",)).fetchone()
    assert readable(conn, "authenticated", "public.habit_tracker")
    session = Session.on(conn)

    created = archive.apply_create(session)
    assert created["fingerprint"] is not None
    assert conn.execute("SELECT to_regclass('public.habit_tracker')").fetchone()[0] is None
    assert count(conn, "habit_tracker_archive") == 300
    for role in API_ROLES + ("public",):
        assert not readable(conn, role, "public.habit_tracker_archive"), role
    assert not conn.execute("SELECT has_column_privilege('anon', 'public.habit_tracker_archive', 'child_name', "
                            "'SELECT')").fetchone()[0]
    assert archive.apply_read(session) is not None  # read: the archive is in place
    archive.apply_create(session)  # a retried deploy changes nothing
    assert count(conn, "habit_tracker_archive") == 300

    archive.apply_delete(session)  # the step back
    assert conn.execute("SELECT to_regclass('public.habit_tracker_archive')").fetchone()[0] is None
    assert conn.execute("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM public.habit_tracker t").fetchone() \
        == before_rows
    assert conn.execute(ACLS, ("public.habit_tracker",)).fetchone() == before_acls
    assert archive.apply_read(session) is None  # read: not archived


def test_a_grant_made_by_hand_shows_on_read_and_up_revokes_it(conn, archive):
    session = Session.on(conn)
    archive.apply_create(session)
    seen = archive.apply_read(session)["fingerprint"]
    conn.execute("GRANT SELECT ON public.habit_tracker_archive TO anon")
    assert archive.apply_read(session)["fingerprint"] != seen
    archive.apply_update(session, PROPS)
    assert not readable(conn, "anon", "public.habit_tracker_archive")
    assert archive.apply_read(session)["fingerprint"] == seen


def test_refused_before_anything_changes(conn, archive):
    conn.execute("CREATE TABLE public.habit_tracker_archive (id bigint)")
    problem = archive.incompatibility(conn)
    assert problem and "already exists beside it" in problem and "Nothing was changed" in problem
    with pytest.raises(ArchiveRefused, match="already exists beside it"):
        archive.apply_create(Session.on(conn))
    assert count(conn, "habit_tracker") == 300
    assert readable(conn, "authenticated", "public.habit_tracker")
