"""dual_write_diff()'s source side runs in parallel workers and finds exactly what one process finds.

The data has every kind of difference the diff reports (missing, each mismatch it fingerprints,
malformed rows of each kind, orphaned) among synced sheets, including empty and non-array
habits. The same function runs twice: once with parallel plans forced even for these few rows,
once with no workers at all; both must return the expected rows. The plan of the parallel run is
read back to prove that its source side really was reduced by workers.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from dualwrite import migration
from sheets import TUESDAY, habit, insert_sheet

pytestmark = pytest.mark.db

FORCE_PARALLEL = {"parallel_setup_cost": "0", "parallel_tuple_cost": "0", "min_parallel_table_scan_size": "0",
                  "min_parallel_index_scan_size": "0", "max_parallel_workers_per_gather": "2"}
ONE_PROCESS = {"max_parallel_workers_per_gather": "0"}


def every_kind_of_difference(conn: psycopg.Connection) -> list[tuple[int, str]]:
    """Sheets, some synced and some not; the diff's expected rows."""
    ids = [insert_sheet(conn, child=f"c{i}", habits=[habit("Read", "green", "red"), habit("Walk", "", "yellow")])
           for i in range(14)]
    empty = insert_sheet(conn, child="empty", habits=[])
    migration.set_phase(conn, 0)  # edit behind the trigger's back
    missing = insert_sheet(conn, child="new")
    missing_empty = insert_sheet(conn, child="new, empty", habits=[])
    edits = [
        "UPDATE public.habit_tracker SET week_period = 'changed' WHERE id = %s",
        "UPDATE public.habit_tracker SET child_name = 'renamed' WHERE id = %s",
        "UPDATE public.habit_tracker SET week_start_date = week_start_date + 7 WHERE id = %s",
        "UPDATE public.habit_tracker SET habits = jsonb_set(habits, '{0,name}', '\"Write\"') WHERE id = %s",
        "UPDATE public.habit_tracker SET habits = jsonb_set(habits, '{1,times,1}', '\"red\"') WHERE id = %s",
        "UPDATE public.habit_tracker SET habits = habits - 1 WHERE id = %s",
        "UPDATE public.habit_tracker SET habits = jsonb_build_array(habits->1, habits->0) WHERE id = %s",
        # malformed: not an array, an element without a name, a bad status, a week not starting on Monday
        "UPDATE public.habit_tracker SET habits = '{\"Read\": 1}' WHERE id = %s",
        "UPDATE public.habit_tracker SET habits = jsonb_set(habits, '{0}', '{\"times\": []}') WHERE id = %s",
        "UPDATE public.habit_tracker SET habits = jsonb_set(habits, '{0,times,0}', '\"blue\"') WHERE id = %s",
    ]
    for statement, sheet in zip(edits, ids):
        conn.execute(statement, (sheet,))
    mismatched = ids[:len(edits)]
    conn.execute("UPDATE public.habit_tracker SET week_start_date = %s WHERE id = %s", (TUESDAY, ids[10]))
    mismatched.append(ids[10])
    # new schema edited by hand: a record moved outside its week, a habit renamed
    conn.execute("UPDATE public.habit_records SET record_date = record_date + 7 WHERE id = (SELECT r.id FROM "
                 "public.habit_records r JOIN public.habits h ON h.id = r.habit_id JOIN public.weeks w "
                 "ON w.id = h.week_id WHERE w.legacy_id = %s LIMIT 1)", (ids[11],))
    conn.execute("UPDATE public.habits SET name = 'Run' WHERE position = 1 AND week_id = "
                 "(SELECT id FROM public.weeks WHERE legacy_id = %s)", (ids[12],))
    mismatched += [ids[11], ids[12]]
    conn.execute("DELETE FROM public.habit_tracker WHERE id = %s", (ids[13],))  # orphaned
    conn.execute("INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, habits) "
                 "VALUES (gen_random_uuid(), 'not an array, unsynced', '2025-10-13', %s)", (Jsonb("text"),))
    unsynced_bad = conn.execute("SELECT max(id) FROM public.habit_tracker").fetchone()[0]
    assert empty not in mismatched
    return sorted([(missing, "missing"), (missing_empty, "missing"), (unsynced_bad, "missing"),
                   (ids[13], "orphaned")] + [(sheet, "mismatched") for sheet in mismatched])


def diff_with(conn: psycopg.Connection, settings: dict[str, str]) -> list[tuple[Any, ...]]:
    with conn.transaction():
        for name, value in settings.items():
            conn.execute("SELECT set_config(%s, %s, true)", (name, value))
        return conn.execute("SELECT legacy_id, state FROM public.dual_write_diff() ORDER BY 1").fetchall()


def plan_of_the_body(conn: psycopg.Connection, settings: dict[str, str]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of dual_write_diff()'s own query, under its own SET clauses and `settings`."""
    body, config = conn.execute("SELECT prosrc, proconfig FROM pg_proc "
                                "WHERE oid = 'public.dual_write_diff()'::regprocedure").fetchone()
    with conn.transaction():
        for name, value in [*(item.split("=", 1) for item in config), *settings.items()]:
            conn.execute("SELECT set_config(%s, %s, true)", (name, value.strip('"')))
        rows = conn.execute(sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) {}").format(sql.SQL(body))).fetchone()[0]
    return (rows if isinstance(rows, list) else json.loads(rows))[0]["Plan"]


def nodes(plan: dict[str, Any], inside_gather: bool = False):
    """(node, launched workers of the Gather above it or None) for every node of the plan."""
    here = plan.get("Workers Launched") if plan["Node Type"] in ("Gather", "Gather Merge") else None
    yield plan, here if here is not None else inside_gather
    for child in plan.get("Plans", []):
        yield from nodes(child, here if here is not None else inside_gather)


def test_the_parallel_source_side_finds_what_one_process_finds(conn):
    migration.apply(conn, 1)
    expected = every_kind_of_difference(conn)
    conn.execute("ANALYZE")
    assert diff_with(conn, ONE_PROCESS) == expected
    assert diff_with(conn, FORCE_PARALLEL) == expected
    assert diff_with(conn, {}) == expected  # as deployed, the planner's own choice


def test_the_source_side_is_reduced_by_parallel_workers(conn):
    migration.apply(conn, 1)
    every_kind_of_difference(conn)
    conn.execute("ANALYZE")
    plan = plan_of_the_body(conn, FORCE_PARALLEL)
    # Each worker groups its own habit_tracker rows (a partial aggregate under a Gather that
    # launched workers), instead of one process reducing every sheet.
    partial_over_sheets = [
        workers for node, workers in nodes(plan)
        if node.get("Partial Mode") == "Partial" and workers
        and any(n.get("Relation Name") == "habit_tracker" for n, _ in nodes(node))
    ]
    assert partial_over_sheets, json.dumps(plan, indent=1)[:3000]
