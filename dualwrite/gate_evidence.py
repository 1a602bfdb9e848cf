"""The gate's evidence as a read-only role gets it: `dual_write_gate_evidence()` (sql/013).

idempotency_log and dual_write_errors have row-level security (and an app's tables on Supabase
usually do): a pull request's preview role reads through pg_read_all_data, which does not bypass
it, so its own SELECTs would count nothing and the gate would pass by not seeing. A role that
bypasses RLS (the deploy role, service_role) reads the tables itself; any other reads this one
row of counts and times, computed by the function as its owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import psycopg

FUNCTION = "public.dual_write_gate_evidence()"


def sees_every_row(conn: psycopg.Connection) -> bool:
    """Whether the session's role reads past row-level security (superuser or BYPASSRLS)."""
    row = conn.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class Evidence:
    drift: tuple[int, int, int, int, int, int, Decimal]  # dual_write_drift()'s columns, in order
    errors_24h: int
    errors_latest: datetime | None
    edge_success_24h: int
    edge_latest: datetime | None


def read(conn: psycopg.Connection) -> Evidence:
    row = conn.execute(f"SELECT * FROM {FUNCTION}").fetchone()
    assert row is not None  # the function always returns exactly one row
    return Evidence(tuple(row[:7]), int(row[7]), row[8], int(row[9]), row[10])  # type: ignore[arg-type]


def through() -> str:
    return f"read through {FUNCTION}, as row-level security hides those rows from this read-only role"
