"""Test data in the app's terms: habit sheets in habit_tracker, and what the new schema holds."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

MONDAY = date(2025, 10, 13)
NEXT_MONDAY = date(2025, 10, 20)
TUESDAY = date(2025, 10, 14)


def habit(name: str, *days: str) -> dict[str, Any]:
    """A habit; days are Monday..Sunday statuses, padded with "" to 7."""
    times = list(days) + [""] * (7 - len(days))
    return {"name": name, "times": times}


def insert_sheet(
    conn: psycopg.Connection,
    *,
    user_id: uuid.UUID | None = None,
    child: str = "Mina",
    week: date = MONDAY,
    period: str | None = "2025-10-13 ~ 2025-10-19",
    habits: Any = None,
) -> int:
    row = conn.execute(
        "INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, week_period, habits) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (user_id or uuid.uuid4(), child, week, period, Jsonb(habits if habits is not None else [])),
    ).fetchone()
    assert row is not None
    return int(row[0])


def update_sheet(conn: psycopg.Connection, sheet_id: int, **changes: Any) -> None:
    columns = {"child": "child_name", "week": "week_start_date", "period": "week_period", "habits": "habits",
               "user_id": "user_id"}
    for key, value in changes.items():
        value = Jsonb(value) if key == "habits" else value
        # Column names come from the fixed mapping above, never from test input.
        conn.execute(f"UPDATE public.habit_tracker SET {columns[key]} = %s WHERE id = %s", (value, sheet_id))


def source(conn: psycopg.Connection, sheet_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT user_id, child_name, week_start_date, week_period, habits FROM public.habit_tracker WHERE id = %s",
        (sheet_id,),
    ).fetchone()
    assert row is not None
    return {"user_id": row[0], "child": row[1], "week": row[2], "period": row[3], "habits": row[4]}


def projection(conn: psycopg.Connection, sheet_id: int) -> dict[str, Any] | None:
    """The week mirroring a sheet, rebuilt in the sheet's shape (None when there is none)."""
    week = conn.execute(
        "SELECT w.id, c.user_id, c.name, w.week_start_date, w.week_period "
        "FROM public.weeks w JOIN public.children c ON c.id = w.child_id WHERE w.legacy_id = %s",
        (sheet_id,),
    ).fetchone()
    if week is None:
        return None
    week_id, user_id, child, start, period = week
    habits: list[dict[str, Any]] = []
    for habit_id, position, name in conn.execute(
        "SELECT id, position, name FROM public.habits WHERE week_id = %s ORDER BY position", (week_id,)
    ).fetchall():
        assert position == len(habits), "habit positions must be 0..n-1"
        times = [""] * 7
        for record_date, status in conn.execute(
            "SELECT record_date, status FROM public.habit_records WHERE habit_id = %s", (habit_id,)
        ).fetchall():
            offset = (record_date - start).days
            assert 0 <= offset <= 6, f"record {record_date} outside week {start}"
            times[offset] = status
        habits.append({"name": name, "times": times})
    return {"user_id": user_id, "child": child, "week": start, "period": period, "habits": habits}


def assert_synced(conn: psycopg.Connection, sheet_id: int) -> None:
    assert projection(conn, sheet_id) == source(conn, sheet_id)


def count(conn: psycopg.Connection, table: str) -> int:
    # Table names are constants of the tests.
    return int(conn.execute(f"SELECT count(*) FROM public.{table}").fetchone()[0])  # type: ignore[index]


def drift(conn: psycopg.Connection) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM public.dual_write_drift()").fetchone()
    names = ["source_rows", "synced", "missing", "mismatched", "orphaned", "errors", "drift_pct"]
    assert row is not None
    return dict(zip(names, row))


def generate_sheets(conn: psycopg.Connection, rows: int, *, users: int = 20, habits: int = 4) -> None:
    """Many well-formed sheets at once (set-based), for backfill and cleanup sizes."""
    conn.execute(
        """
        INSERT INTO public.habit_tracker (user_id, child_name, week_start_date, week_period, habits)
        SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(g %% %(users)s), 12, '0'))::uuid,
               'child ' || (g / %(users)s %% 3),
               DATE '2024-01-01' + 7 * (g / (%(users)s * 3)),
               'week ' || g,
               (SELECT jsonb_agg(jsonb_build_object(
                    'name', 'habit ' || k,
                    'times', (SELECT jsonb_agg((ARRAY['green', 'yellow', 'red', '', ''])[1 + abs(hashint4(g * 31 + k * 7 + d)) %% 5])
                              FROM generate_series(0, 6) AS d)))
                FROM generate_series(1, %(habits)s) AS k)
        FROM generate_series(0, %(rows)s - 1) AS g
        """,
        {"rows": rows, "users": users, "habits": habits},
    )
