"""Issue 18's proof: one Supabase-shaped stack walks 0 -> 1 -> 2 -> 3 -> retired and back down
step by step to 0, with the real engine, exactly as an operator does it (`invoke phase N`, then
`invoke up`; every gate runs and passes on its evidence, the stack's soak set to 0 h), while two
application clients write as `authenticated` through RLS the whole time (tests/e2e/walk_support.py):

- the OLD client (the app release on people's phones) writes habit_tracker: new sheets, days
  ticked, habits edited, sheets deleted, in 0, 1 and 2; it stops before the Phase 3 gate (which
  refuses while it writes: old_client_writes over a quiet period of seconds), and its one write
  in Phase 3 gets the clear 42501 error;
- the NEW client writes children/weeks/habits/habit_records from Phase 2 on, down to 2 again.

After every step, with both clients paused between two writes: no application write failed,
drift is 0 in each direction that syncs, each copy holds exactly the sheets each client
committed (where a copy is no longer kept current, or archived while retired, every sheet not
written since the step before, unchanged), each client sees only its own rows, dual_write_errors
is empty, and `invoke smoke-test` passes and leaves every table's row count as it found it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
import pytest

from dualwrite.gate import QUIET_ROW
from tests.e2e.walk_support import (Clients, NewClient, OldClient, api_roles_reading, drift_row, expected, new_copy,
                                    old_copy, supabase_app, table_counts)

pytestmark = [pytest.mark.engine, pytest.mark.db]

QUIET_PERIOD_S = 7.2
WRITES_BEFORE_CHECK = 40  # a client that starts in a phase: creates, ticks, edits and deletes before the checks
GATE_CONFIG = {
    "soak_hours": "0",  # the gates' soak rows read the stack history; 0 h is allowed and still needs the phase run
    # Not 0: a window of a few seconds lets the walk see the Phase 3 gate refuse while the old client writes.
    "quiet_period_hours": f"{QUIET_PERIOD_S / 3600:g}",
    "edge_function_waiver": "the walk has no Edge Function: its clients write through psql as PostgREST would",
}


@dataclass(frozen=True)
class Step:
    phase: str
    old_writes: bool  # the old client writes habit_tracker in this phase
    new_writes: bool  # the new client writes the normalized tables in this phase
    old_copy: str  # habit_tracker: "exact" (every committed sheet), "frozen" (no longer kept current) or
    #                "archived" (habit_tracker_archive, frozen, no API role can read it)
    new_copy: str  # the normalized tables: "exact", "frozen" or "empty"
    drift: tuple[str, ...]  # the drift functions that must read 0
    refused: bool = False  # an old client's write gets the phase's clear error (asserted once)
    quiet: bool = False  # the gate refuses while the old client writes, and passes once it stopped for the quiet period


FORWARD, REVERSE = "dual_write_drift", "dual_write_reverse_drift"
START = Step("0", old_writes=True, new_writes=False, old_copy="exact", new_copy="empty", drift=())
WALK = [
    Step("1", old_writes=True, new_writes=False, old_copy="exact", new_copy="exact", drift=(FORWARD,)),
    Step("2", old_writes=True, new_writes=True, old_copy="exact", new_copy="exact", drift=(FORWARD, REVERSE)),
    Step("3", old_writes=False, new_writes=True, old_copy="exact", new_copy="exact", drift=(REVERSE,), refused=True,
         quiet=True),
    Step("retired", old_writes=False, new_writes=True, old_copy="archived", new_copy="exact", drift=()),
    # back down: the sheets written while retired are brought into habit_tracker (backfill_new_to_old)
    Step("3", old_writes=False, new_writes=True, old_copy="exact", new_copy="exact", drift=(REVERSE,)),
    Step("2", old_writes=True, new_writes=True, old_copy="exact", new_copy="exact", drift=(FORWARD, REVERSE)),
    Step("1", old_writes=True, new_writes=False, old_copy="exact", new_copy="exact", drift=(FORWARD,)),
    Step("0", old_writes=True, new_writes=False, old_copy="exact", new_copy="frozen", drift=()),
]


def test_the_phase_walk_keeps_every_write_of_both_clients(e2e_stack):
    stack = e2e_stack(**GATE_CONFIG)
    # The gate's performance row reads the trigger's mean time (pg_stat_user_functions).
    stack.query("ALTER SYSTEM SET track_functions = 'pl'", admin=True)
    stack.query("SELECT pg_reload_conf()", admin=True)
    supabase_app(stack.cluster.admin_url(), stack.cluster.db_url())
    api = stack.cluster.db_url(role="authenticator")
    old, new = OldClient("old client", api), NewClient("new client", api)
    clients = Clients(old, new)
    old.start()
    new.start()
    try:
        with psycopg.connect(stack.cluster.db_url(), autocommit=True) as conn:
            clients.during("phase 0 up")
            old.active = True
            stack.invoke("up")
            marks = check(stack, conn, clients, START, marks=None)
            for step in WALK:
                marks = walk_to(stack, conn, clients, step, marks)
    finally:
        clients.stop()
    print(f"walk: old client {old.writes} writes, {old.created} sheets created, {len(old.sheets)} live; "
          f"new client {new.writes} writes, {new.created} sheets created, {len(new.sheets)} live")
    for client in (old, new):  # the checks above compared every sheet each one committed, in both copies
        assert client.created > 0 and client.sheets, f"the {client.name} wrote no sheet"


def walk_to(stack, conn: psycopg.Connection, clients: Clients, step: Step, marks: dict[str, int]) -> dict[str, int]:
    old, new = clients.old, clients.new
    clients.during(f"to phase {step.phase}")
    before = {client.name: client.writes for client in clients.all}
    if step.quiet:  # the old client still writes: the gate reads it in old_client_writes
        refused = stack.invoke("phase", step.phase, check=False)
        failed = [line for line in refused.stdout.splitlines() if "FAIL" in line]
        assert refused.returncode != 0 and any(QUIET_ROW in line for line in failed), refused.stdout[-3000:]
        # Only the quiet period's rows (the old client's writes; Phase 2 deployed for that long): drift is 0 both
        # ways while both clients write.
        assert all(QUIET_ROW in line or "for the quiet period" in line for line in failed), failed
    # A client the phase does not allow stops before the flip (a gate may read that it stopped).
    for client, allowed in ((old, step.old_writes), (new, step.new_writes)):
        if not allowed:
            client.stop_writing()
    if step.quiet:
        time.sleep(QUIET_PERIOD_S + 1)  # not a limit: the gate's window must pass the old client's last write
    stack.invoke("phase", step.phase)
    stack.invoke("up")
    for client, allowed in ((old, step.old_writes), (new, step.new_writes)):
        if allowed and client.active:
            assert client.writes > before[client.name], f"{client.name} wrote nothing while phase {step.phase} deployed"
        elif allowed:  # starts now: every kind of write it makes, before the checks
            client.active = True
            client.wait_for_writes(WRITES_BEFORE_CHECK)
        client.active = allowed
    if step.refused:
        error = old.one_write_outside_the_loop()
        assert isinstance(error, psycopg.errors.InsufficientPrivilege), error
        assert f"Phase {step.phase}" in error.diag.message_primary and "Update the app" in error.diag.message_hint, \
            (error.diag.message_primary, error.diag.message_hint)
    return check(stack, conn, clients, step, marks)


def check(stack, conn: psycopg.Connection, clients: Clients, step: Step, marks: dict[str, int] | None) -> dict[str, int]:
    """Every check of one step, with both clients paused; returns each client's write count (the mark
    a frozen copy is compared from at the next step)."""
    with clients.paused():
        failures = [f for client in clients.all for f in client.failures]
        assert not failures, f"application writes failed in phase {step.phase}: {failures[:5]}"

        for function in step.drift:
            row = drift_row(conn, function)
            drifted = {k: v for k, v in row.items() if k in ("missing", "mismatched", "orphaned", "drift_pct") and v}
            assert not drifted, f"phase {step.phase}: {function}() = {row}"
        assert conn.execute("SELECT count(*) FROM public.dual_write_errors").fetchone()[0] == 0

        if step.old_copy == "archived":
            assert conn.execute("SELECT to_regclass('public.habit_tracker')").fetchone()[0] is None
            assert api_roles_reading(conn, "habit_tracker_archive") == []
        for client in clients.all:
            for copy_name, state in (("old", step.old_copy), ("new", step.new_copy)):
                if copy_name == "new":
                    copy = new_copy(conn, client.user_id)
                else:
                    copy = old_copy(conn, client.user_id,
                                    "habit_tracker_archive" if state == "archived" else "habit_tracker")
                what = f"phase {step.phase}, {client.name}'s sheets in the {copy_name} copy"
                if state == "empty":
                    assert copy == {}, what
                elif state == "exact":
                    assert copy == expected(client), what
                else:  # frozen or archived: every sheet not written since the step before is as it was
                    assert marks is not None
                    untouched = (set(copy) | set(client.sheets) | set(client.deleted)) - client.written_since(
                        marks[client.name])
                    assert {k: v for k, v in copy.items() if k in untouched} == expected(client, untouched), what
            # RLS: each client sees exactly its own rows of either copy, whoever wrote them there.
            if step.old_copy == "exact":
                assert client.visible("habit_tracker") == len(old_copy(conn, client.user_id)), step.phase
            assert client.visible("weeks") == len(new_copy(conn, client.user_id)), step.phase

        counts = table_counts(conn)
        smoke = stack.invoke("smoke-test")
        assert "FAIL" not in smoke.stdout, smoke.stdout[-3000:]
        assert table_counts(conn) == counts, f"phase {step.phase}: the smoke test left rows"
        return {client.name: client.writes for client in clients.all}
