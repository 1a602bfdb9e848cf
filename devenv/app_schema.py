"""The app's roles and tables (sql/app/*.sql): what every Supabase environment already has.

Only the local stack and the tests apply them; the Pulumi program never owns them.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

APP_SQL_DIR = Path(__file__).resolve().parent.parent / "sql" / "app"


def app_sql_files() -> list[Path]:
    """roles.sql before schema.sql: the tables' default privileges name the roles."""
    return sorted(APP_SQL_DIR.glob("*.sql"))


def apply_app_schema(conn: psycopg.Connection) -> None:
    """Apply every sql/app file in one transaction; safe to repeat (the files are idempotent)."""
    with conn.transaction():
        for path in app_sql_files():
            # The file's own reviewed text, holding no parameters.
            conn.execute(sql.SQL(path.read_text(encoding="utf-8")))  # type: ignore[arg-type]
