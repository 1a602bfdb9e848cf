"""What every Supabase environment already has (sql/app/*.sql), and who applies each part.

Only the local stack and the tests apply these files; the Pulumi program never owns them.
Hosted Supabase sets a project up as its superuser, supabase_admin, and then lets users in
as `postgres`, which is not a superuser. The local cluster does the same:

    roles.sql     supabase_admin, once per cluster     postgres, anon, authenticated, ...
    database.sql  supabase_admin, once per database    schema rights, default privileges
    pg_cron.sql   supabase_admin, the cron database    the extension, postgres' grants on it
    schema.sql    postgres, every app database         the app's tables (postgres owns them)
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

APP_SQL_DIR = Path(__file__).resolve().parent.parent / "sql" / "app"

CLUSTER_FILES = ("roles.sql",)
DATABASE_FILES = ("database.sql",)
CRON_FILES = ("pg_cron.sql",)
APP_FILES = ("schema.sql",)


def app_sql_files() -> list[Path]:
    """Every file, in the order a new cluster applies them."""
    return [APP_SQL_DIR / name for name in (*CLUSTER_FILES, *DATABASE_FILES, *CRON_FILES, *APP_FILES)]


def apply_files(conn: psycopg.Connection, names: tuple[str, ...]) -> None:
    """Apply sql/app files in one transaction; safe to repeat (the files are idempotent)."""
    with conn.transaction():
        for name in names:
            # The file's own reviewed text, holding no parameters.
            conn.execute(sql.SQL((APP_SQL_DIR / name).read_text(encoding="utf-8")))  # type: ignore[arg-type]


def apply_cluster_roles(admin_conn: psycopg.Connection) -> None:
    apply_files(admin_conn, CLUSTER_FILES)


def apply_database_setup(admin_conn: psycopg.Connection) -> None:
    apply_files(admin_conn, DATABASE_FILES)


def apply_pg_cron(admin_conn: psycopg.Connection) -> None:
    apply_files(admin_conn, CRON_FILES)


def apply_app_schema(conn: psycopg.Connection) -> None:
    """The app's tables, on a connection as `postgres` (so that it owns them)."""
    apply_files(conn, APP_FILES)


# True when database.sql has run in the connected database (a database created by an older
# version of devenv, or by hand, has not).
DATABASE_IS_SET_UP = """
SELECT pg_catalog.pg_get_userbyid(n.nspowner) = 'postgres'
       AND EXISTS (SELECT FROM pg_catalog.pg_default_acl AS d
                   WHERE d.defaclrole = 'postgres'::regrole AND d.defaclnamespace = n.oid
                     AND d.defaclobjtype = 'f')
FROM pg_catalog.pg_namespace AS n WHERE n.nspname = 'public'
"""


def database_is_set_up(conn: psycopg.Connection) -> bool:
    row = conn.execute(DATABASE_IS_SET_UP).fetchone()
    return bool(row and row[0])
