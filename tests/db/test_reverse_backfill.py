"""Reverse drift and the reverse catch-up: a mixed workload ends at drift 0 both ways; weeks written
while nothing copied them back (retirement, then the step back) are brought into habit_tracker by
backfill_new_to_old in batches, and a sheet that is an old client's malformed data is never deleted."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from dualwrite.db import Session
from dualwrite.objects import kind_of
from sheets import MONDAY, count, drift, habit, insert_sheet
from two_way import FORWARD_TRIGGER, NEW_TABLES, NewClient, apply_phase2, apply_phase3, as_user, reverse_drift, sheet

pytestmark = pytest.mark.db

USERS = [uuid.UUID(int=0x5555 + i) for i in range(2)]
WEEKS = [MONDAY + timedelta(weeks=i) for i in range(4)]
ARCHIVE = {"kind": "archive", "name": "habit_tracker_archive", "schema": "public", "source": "habit_tracker",
           "archived": True}
STEP_BACK_TRIGGERS = [(f"trigger_{t}_reverse_{k}", t) for t in NEW_TABLES for k in ("lock", "sync")] + [
    ("trigger_habit_tracker_old_client_writes", "habit_tracker"), ("trigger_habit_tracker_read_only", "habit_tracker")]


def backfill(conn: psycopg.Connection, batch: int = 2) -> int:
    """backfill_new_to_old to the end, one transaction per batch, as a deploy runs it; the batches."""
    after, batches = None, 0
    while True:
        with conn.transaction():
            after = conn.execute("SELECT public.backfill_new_to_old(%s, %s)", (after, batch)).fetchone()[0]
        batches += 1
        if after is None:
            return batches


def clean(report: dict) -> bool:
    return (report["missing"], report["mismatched"], report["orphaned"]) == (0, 0, 0)


def test_a_mixed_workload_ends_at_drift_zero_both_ways(conn):
    apply_phase2(conn)
    rng = random.Random(18)
    for _ in range(120):
        user = rng.choice(USERS)
        client = NewClient(conn, user)
        with as_user(conn, user):
            kind = rng.random()
            week = conn.execute("SELECT w.id FROM public.weeks w JOIN public.children c ON c.id = w.child_id "
                                "WHERE c.user_id = %s ORDER BY random() LIMIT 1", (user,)).fetchone()
            if kind < 0.3 or week is None:  # an old client saves a whole sheet
                conn.execute(
                    "INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (user_id, child_name, week_start_date) "
                    "DO UPDATE SET habits = EXCLUDED.habits",
                    (user, rng.choice(["Mina", "Jun"]), rng.choice(WEEKS),
                     Jsonb([habit(n, *(rng.choice(["green", "red", ""]) for _ in range(7)))
                            for n in rng.sample(["Read", "Walk", "Sleep"], rng.randint(0, 3))])))
            elif kind < 0.45:
                start = rng.choice(WEEKS)
                slot = conn.execute("SELECT %s::date NOT IN (SELECT week_start_date FROM public.weeks w JOIN "
                                    "public.children c ON c.id = w.child_id WHERE c.user_id = %s AND c.name = 'Seo')",
                                    (start, user)).fetchone()
                if slot[0]:
                    client.new_week("Seo", start)
            elif kind < 0.85:  # a new client ticks, unticks or adds a habit
                habits = conn.execute("SELECT count(*) FROM public.habits WHERE week_id = %s", (week[0],)).fetchone()[0]
                if habits == 0 or rng.random() < 0.2:
                    client.add_habit(week[0], rng.choice(["Read", "Brush"]), habits)
                else:
                    start = conn.execute("SELECT week_start_date FROM public.weeks WHERE id = %s", (week[0],)).fetchone()[0]
                    target = client.habit(week[0], rng.randrange(habits))
                    if rng.random() < 0.7:
                        client.tick(target, start, rng.randrange(7), rng.choice(["green", "yellow", "red"]))
                    else:
                        client.untick(target, start, rng.randrange(7))
            else:  # a new client deletes a week
                conn.execute("DELETE FROM public.weeks WHERE id = %s", (week[0],))
    assert count(conn, "weeks") > 5
    assert clean(drift(conn)) and clean(reverse_drift(conn)), (drift(conn), reverse_drift(conn))
    assert count(conn, "dual_write_errors") == 0


def test_retired_then_stepped_back_the_backfill_brings_every_new_write_into_habit_tracker(conn, admin_conn):
    admin_conn.execute(sql.SQL("GRANT ALL ON DATABASE {} TO postgres").format(sql.Identifier(conn.info.dbname)))
    apply_phase3(conn)
    user = USERS[0]
    client = NewClient(conn, user)
    with as_user(conn, user):
        kept = client.new_week("Mina", WEEKS[0], habits=(("Read", {0: "green"}),))
        changed = client.new_week("Mina", WEEKS[1], habits=(("Walk", {}),))
        deleted = client.new_week("Mina", WEEKS[2])
    assert count(conn, "habit_tracker") == 3
    # retired: every trigger and sync gone, habit_tracker archived
    for trigger, table in STEP_BACK_TRIGGERS:
        conn.execute(sql.SQL("DROP TRIGGER {} ON {}").format(sql.Identifier(trigger), sql.Identifier("public", table)))
    archive = kind_of(ARCHIVE)
    archive.apply_create(Session.on(conn))
    with as_user(conn, user):  # the new app keeps writing
        created = client.new_week("Jun", WEEKS[0], habits=(("Sleep", {3: "red"}),))
        client.tick(client.habit(changed, 0), WEEKS[1], 6, "yellow")
        conn.execute("DELETE FROM public.weeks WHERE id = %s", (deleted,))
    # the step back to Phase 3: the table back with its ACL, the reverse sync back, then the catch-up
    archive.apply_delete(Session.on(conn))
    apply_phase3_objects_again(conn)
    before = reverse_drift(conn)
    assert (before["missing"], before["mismatched"], before["orphaned"]) == (1, 1, 1), before
    assert backfill(conn) == 3  # 2 + 2 weeks, then the last call
    assert clean(reverse_drift(conn)), reverse_drift(conn)
    assert sheet(conn, kept)["habits"] == [habit("Read", "green")]
    assert sheet(conn, changed)["habits"] == [habit("Walk", "", "", "", "", "", "", "yellow")]
    assert sheet(conn, created)["child"] == "Jun" and sheet(conn, created)["habits"] == [habit("Sleep", "", "", "", "red")]
    assert count(conn, "habit_tracker") == 3
    assert backfill(conn) == 3 and clean(reverse_drift(conn))  # again: nothing to do, nothing written
    assert count(conn, "dual_write_errors") == 0
    assert count(conn, "old_client_writes") == 0


def apply_phase3_objects_again(conn: psycopg.Connection) -> None:
    from two_way import PHASE2_OBJECTS, PHASE3_OBJECTS, apply_objects

    apply_objects(conn, tuple(o for o in PHASE2_OBJECTS + PHASE3_OBJECTS if o.on_table))


def test_the_last_batch_never_deletes_an_old_clients_sheet(conn):
    apply_phase2(conn)
    user = USERS[1]
    with as_user(conn, user):
        malformed = insert_sheet(conn, user_id=user, habits=[{"name": "Read", "times": ["green"]}])
        fine = insert_sheet(conn, user_id=user, child="Jun", habits=[habit("Walk", "red")])
    # a well-formed sheet whose week the new app deleted while nothing copied it back
    conn.execute("ALTER TABLE public.weeks DISABLE TRIGGER trigger_weeks_reverse_lock")
    conn.execute("DELETE FROM public.weeks WHERE legacy_id = %s", (fine,))
    conn.execute("ALTER TABLE public.weeks ENABLE TRIGGER trigger_weeks_reverse_lock")
    assert reverse_drift(conn)["orphaned"] == 2

    # the guide's option 1 in force: any unmirrored sheet may be an old client's unsynced write
    conn.execute(sql.SQL("ALTER TABLE public.habit_tracker DISABLE TRIGGER {}").format(sql.Identifier(FORWARD_TRIGGER)))
    with as_user(conn, user):  # malformed, and with no dual_write_errors row: the forward sync never saw it
        unseen = insert_sheet(conn, user_id=user, child="Seo", habits="not a list")
    backfill(conn)
    assert count(conn, "habit_tracker") == 3
    conn.execute(sql.SQL("ALTER TABLE public.habit_tracker ENABLE TRIGGER {}").format(sql.Identifier(FORWARD_TRIGGER)))

    backfill(conn)
    ids = {r[0] for r in conn.execute("SELECT id FROM public.habit_tracker").fetchall()}
    assert ids == {malformed, unseen}  # malformed sheets stay, recorded in dual_write_errors or not
    assert reverse_drift(conn)["orphaned"] == 2
