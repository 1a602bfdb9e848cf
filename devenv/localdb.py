"""The project-local PostgreSQL 15 cluster: stack `local` and the tests run against it.

One cluster per name, in `.state/pg/<name>` (git-ignored), listening on 127.0.0.1 only,
with trust authentication on loopback (it holds nothing but dev and test data), and
pg_cron preloaded with `cron.database_name` set to the app database, as Phase 1 needs.
Data survives stop/start. As root, the server runs as the `postgres` system user
(see devenv/server_user.py).

Shaped like hosted Supabase (../shared/notes/supabase.md, sql/app/):
- `supabase_admin` is the bootstrap superuser (initdb -U supabase_admin). Only set-up code
  uses it: roles, databases, extensions, default privileges (`admin_url()`).
- `postgres` is the deploy role: NOSUPERUSER CREATEDB CREATEROLE LOGIN REPLICATION
  BYPASSRLS. It owns `public` and the app's tables; stack local and the tests connect as it
  (`db_url()`).
- pg_cron exists in the cron database only, created by the admin; postgres has USAGE on
  schema cron, reads cron.job and schedules through cron.schedule()/unschedule().
- Optionally PgBouncer in transaction mode beside it (`pooler_port`, devenv/pooler.py),
  like Supavisor's port 6543 (`pooler_url()`).

    cluster = LocalCluster()          # defaults: name "local", port 54329, db habit_tracker
    cluster.start()                   # idempotent; initdb on first use; waits until ready
    cluster.ensure_app_schema()       # sql/app/*.sql, idempotent
    cluster.db_url()                  # postgresql://postgres@127.0.0.1:54329/habit_tracker
    cluster.admin_url()               # postgresql://supabase_admin@127.0.0.1:54329/habit_tracker
    cluster.pooler_url()              # postgresql://postgres@127.0.0.1:54330/habit_tracker

A cluster initialised by an older version of this module (bootstrap superuser `postgres`)
is converted in place at its next start, data kept (`_upgrade_legacy_cluster`).

Module-level `ensure_running()`, `stop()`, `db_url()`, `pooler_url()` act on stack local's cluster.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping
from urllib.parse import quote

import psycopg
from psycopg import sql

from devenv import app_schema, server_user
from devenv.pooler import Pooler

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".state" / "pg"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
DEFAULT_PORT = 54329
DEFAULT_DB = "habit_tracker"
# Stack local's PgBouncer: the port after the server's (Supavisor's transaction mode is 6543).
DEFAULT_POOLER_PORT = DEFAULT_PORT + 1
ADMIN_ROLE = "supabase_admin"  # the bootstrap superuser: set-up only
DEPLOY_ROLE = "postgres"  # what stack local and the tests log in as: not a superuser
# Older name of the login role, kept for callers outside devenv (bench/run.py's pgbench -U).
# It is the deploy role, and no longer a superuser.
SUPERUSER = DEPLOY_ROLE
# The role an older version of this module initialised clusters with (then a superuser).
LEGACY_BOOTSTRAP_ROLE = "postgres"
UPGRADE_ROLE = "devenv_upgrade"  # a temporary superuser, only while converting such a cluster
CONF_FILE = "localdb.conf"  # rewritten at every start, included from postgresql.conf
READY_TIMEOUT_S = 60


@dataclass(frozen=True)
class LocalCluster:
    name: str = "local"
    port: int = DEFAULT_PORT
    dbname: str = DEFAULT_DB
    # Extra server settings, e.g. {"fsync": "off"} for throwaway test clusters.
    settings: Mapping[str, str] = field(default_factory=dict)
    state_dir: Path = STATE_DIR
    # PgBouncer (transaction mode) on this port beside the server, started and stopped with it.
    pooler_port: int | None = None

    @property
    def data_dir(self) -> Path:
        return self.state_dir / self.name

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    # --- what callers use -----------------------------------------------------------

    @property
    def pooler(self) -> Pooler | None:
        if self.pooler_port is None:
            return None
        return Pooler(self.state_dir / f"{self.name}.pooler", self.pooler_port, self.port)

    def db_url(self, dbname: str | None = None, role: str = DEPLOY_ROLE) -> str:
        """libpq URI of a database in this cluster, as `role` (default: the deploy role postgres;
        no password: trust on loopback)."""
        return f"postgresql://{quote(role)}@127.0.0.1:{self.port}/{quote(dbname or self.dbname)}?sslmode=disable"

    def admin_url(self, dbname: str | None = None) -> str:
        """The same as the bootstrap superuser supabase_admin: for set-up code, and for tests
        that play a dashboard superuser or create superuser-only extensions."""
        return self.db_url(dbname, role=ADMIN_ROLE)

    def pooler_url(self, dbname: str | None = None) -> str:
        """The database through PgBouncer in transaction mode, as postgres (needs `pooler_port`)."""
        if self.pooler is None:
            raise RuntimeError(f"cluster {self.name} has no pooler (LocalCluster(pooler_port=...))")
        return self.pooler.url(dbname or self.dbname)

    def status(self) -> str:
        """'running', 'stopped' or 'absent' (never initialised)."""
        if not (self.data_dir / "PG_VERSION").is_file():
            return "absent"
        result = server_user.run(server_user.server_user(), [self._bin("pg_ctl"), "status", "-D", str(self.data_dir)],
                                 check=False)
        return "running" if result.returncode == 0 else "stopped"

    def start(self) -> None:
        """Initialise on first use, (re)write settings, start and wait until ready; a no-op if running."""
        with self._lock():
            state = self.status()
            if state == "absent":
                self._initdb()
            if state != "running":
                self._write_settings()
                self._pg_ctl("start", "-w", "-t", str(READY_TIMEOUT_S), "-l", str(self.log_file))
            self._set_up()
            if self.pooler is not None:
                self.pooler.start()

    def stop(self) -> None:
        """Stop the pooler and the server if they run (fast shutdown: sessions are cut, data is kept)."""
        with self._lock():
            if self.pooler is not None:
                self.pooler.stop()
            if self.status() == "running":
                self._pg_ctl("stop", "-w", "-m", "fast")

    def destroy(self) -> None:
        """Stop and delete the cluster's data (tests use this for a clean slate)."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.pooler is not None:
            self.pooler.destroy()
        (self.state_dir / f"{self.name}.lock").unlink(missing_ok=True)

    def ensure_app_schema(self, dbname: str | None = None) -> None:
        """The app's tables (as postgres, who owns them) in a database of this cluster, and the
        database's Supabase set-up if an older version created it without; idempotent."""
        with psycopg.connect(self.admin_url(dbname), autocommit=True) as admin:
            if not app_schema.database_is_set_up(admin):
                app_schema.apply_database_setup(admin)
        with psycopg.connect(self.db_url(dbname), autocommit=True) as conn:
            app_schema.apply_app_schema(conn)

    def create_database(self, dbname: str, template: str | None = None) -> None:
        """A database owned by supabase_admin, set up as on Supabase (sql/app/database.sql).
        A copy of `template` is set up as its template is (default privileges and schema
        rights are copied); pg_cron is never in a template, it lives in the cron database."""
        with self._admin() as conn:
            query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
            if template:
                query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
            conn.execute(query)
        if not template:
            with psycopg.connect(self.admin_url(dbname), autocommit=True) as admin:
                app_schema.apply_database_setup(admin)

    def create_extension(self, name: str, dbname: str | None = None) -> None:
        """CREATE EXTENSION IF NOT EXISTS as supabase_admin (what supautils does on Supabase for
        superuser-only extensions such as plpgsql_check)."""
        with psycopg.connect(self.admin_url(dbname), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name)))

    def drop_database(self, dbname: str) -> None:
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))

    # --- how ----------------------------------------------------------------------------

    def _bin(self, program: str) -> str:
        return str(PG_BIN / program)

    def _pg_ctl(self, *args: str) -> None:
        server_user.run(server_user.server_user(), [self._bin("pg_ctl"), *args, "-D", str(self.data_dir)])

    def _initdb(self, bootstrap_role: str = ADMIN_ROLE) -> None:
        user = server_user.server_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        server_user.give_to(user, self.data_dir)
        server_user.run(user, [
            self._bin("initdb"), "-D", str(self.data_dir), "-U", bootstrap_role, "-E", "UTF8", "--no-locale",
            "--auth-local=trust", "--auth-host=trust",
        ])
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(f"\n# Project settings (devenv/localdb.py rewrites this file at every start)\ninclude '{CONF_FILE}'\n")

    def _server_settings(self) -> dict[str, str]:
        base = {
            "port": str(self.port),
            "listen_addresses": "127.0.0.1",  # loopback only: trust auth must never face a network
            "unix_socket_directories": "",  # TCP only; no socket directory to own or clean up
            "shared_preload_libraries": "pg_cron",
            "cron.database_name": self.dbname,
            "cron.host": "127.0.0.1",  # pg_cron connects back over TCP; "localhost" may resolve to ::1
        }
        return {**base, **self.settings}

    def _write_settings(self) -> None:
        lines = [f"{key} = '{value}'" for key, value in self._server_settings().items()]
        path = self.data_dir / CONF_FILE
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        server_user.give_to(server_user.server_user(), path)

    @contextmanager
    def _admin(self, dbname: str = "postgres", role: str = ADMIN_ROLE) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.db_url(dbname, role=role), autocommit=True) as conn:
            yield conn

    def _set_up(self) -> None:
        """At every start (cheap, idempotent): convert a legacy cluster, the cluster's roles,
        the app database, pg_cron in it (the cron database)."""
        self._upgrade_legacy_cluster()
        with self._admin() as conn:
            app_schema.apply_cluster_roles(conn)
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,)).fetchone()
        if not exists:
            self.create_database(self.dbname)
        with self._admin(self.dbname) as conn:
            if not app_schema.database_is_set_up(conn):
                app_schema.apply_database_setup(conn)
            # absent, or created by an older version (without postgres' grants)
            if conn.execute("SELECT CASE WHEN to_regnamespace('cron') IS NULL THEN true"
                            " ELSE NOT has_schema_privilege('postgres', 'cron', 'USAGE') END").fetchone()[0]:
                app_schema.apply_pg_cron(conn)

    def _admin_exists(self) -> bool:
        try:
            with self._admin():
                return True
        except psycopg.OperationalError as error:
            if f'role "{ADMIN_ROLE}" does not exist' in str(error):
                return False
            raise

    def _upgrade_legacy_cluster(self) -> None:
        """Convert a cluster an older version initialised (bootstrap superuser `postgres`) in place.

        Renaming keeps every object where it is: the bootstrap role (which owns the system
        catalogs) becomes supabase_admin, a new non-superuser `postgres` is created, and the
        user's objects (tables, sequences, views, routines, types, schemas) are handed to it in
        every database; pg_cron and other extensions stay with the admin, as on Supabase; jobs
        keep their `postgres` username, so they now run as the new postgres. Nothing is dropped.
        A temporary superuser does the renaming (a session cannot rename its own role); it is
        dropped only once every database is handed over, so an interrupted conversion resumes
        at the next start.
        """
        if not self._admin_exists():
            with self._admin(role=LEGACY_BOOTSTRAP_ROLE) as conn:
                conn.execute(sql.SQL("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name})"
                                     " THEN CREATE ROLE {role} SUPERUSER LOGIN; END IF; END $$").format(
                    name=sql.Literal(UPGRADE_ROLE), role=sql.Identifier(UPGRADE_ROLE)))
            with self._admin(role=UPGRADE_ROLE) as conn:
                conn.execute(sql.SQL("ALTER ROLE {} RENAME TO {}").format(
                    sql.Identifier(LEGACY_BOOTSTRAP_ROLE), sql.Identifier(ADMIN_ROLE)))
        with self._admin() as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (UPGRADE_ROLE,)).fetchone():
                return  # not a legacy cluster, or converted already
            app_schema.apply_cluster_roles(conn)  # the new postgres
            databases = [row[0] for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname")]
        for dbname in databases:
            with self._admin(dbname) as conn, conn.transaction():
                for (statement,) in conn.execute(LEGACY_HANDOVER).fetchall():
                    conn.execute(statement)
                conn.execute(sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(
                    sql.Identifier(dbname), sql.Identifier(DEPLOY_ROLE)))
                app_schema.apply_database_setup(conn)
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(UPGRADE_ROLE)))

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """One process at a time starts/stops a cluster (tasks and providers may race)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / f"{self.name}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


# The ALTER ... OWNER statements that hand a legacy cluster's user objects from the bootstrap
# role (OID 10, now supabase_admin) to postgres, in the connected database. System schemas
# and extension members stay (REASSIGN OWNED refuses the bootstrap role: it owns the catalogs).
# A table's own sequences, indexes and row type follow it; sequences owned by a column are
# therefore left out, as are array and table row types.
LEGACY_HANDOVER = """
WITH kept AS (
    SELECT objid FROM pg_depend WHERE deptype = 'e'
), system AS (
    SELECT oid FROM pg_namespace WHERE nspname LIKE 'pg\\_%' OR nspname = 'information_schema'
)
SELECT statement FROM (
    SELECT 1 AS step, format('ALTER SCHEMA %I OWNER TO postgres', n.nspname) AS statement
    FROM pg_namespace AS n
    WHERE n.nspowner = 10 AND n.oid NOT IN (SELECT oid FROM system) AND n.oid NOT IN (SELECT objid FROM kept)
    UNION ALL
    SELECT 2, format('ALTER %s %s OWNER TO postgres',
                     CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                    WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                     c.oid::regclass)
    FROM pg_class AS c
    WHERE c.relowner = 10 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND c.relnamespace NOT IN (SELECT oid FROM system) AND c.oid NOT IN (SELECT objid FROM kept)
      AND NOT (c.relkind = 'S' AND EXISTS (SELECT FROM pg_depend AS d WHERE d.objid = c.oid
               AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
    UNION ALL
    SELECT 3, format('ALTER ROUTINE %s OWNER TO postgres', p.oid::regprocedure)
    FROM pg_proc AS p
    WHERE p.proowner = 10 AND p.pronamespace NOT IN (SELECT oid FROM system) AND p.oid NOT IN (SELECT objid FROM kept)
    UNION ALL
    SELECT 4, format('ALTER TYPE %s OWNER TO postgres', t.oid::regtype)
    FROM pg_type AS t
    WHERE t.typowner = 10 AND t.typtype IN ('c', 'd', 'e', 'r')
      AND t.typnamespace NOT IN (SELECT oid FROM system) AND t.oid NOT IN (SELECT objid FROM kept)
      AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
) AS handover
ORDER BY step, statement
"""


def local_cluster() -> LocalCluster:
    """Stack local's cluster: port and database from Pulumi.local.yaml when it is readable."""
    from dualwrite import config as stack_config

    try:
        config = stack_config.load("local")
    except stack_config.ConfigError:  # no stack file (e.g. a bare checkout): the documented defaults
        return LocalCluster(pooler_port=DEFAULT_POOLER_PORT)
    return LocalCluster(port=config.db_port, dbname=config.db_name, pooler_port=config.db_port + 1)


def ensure_running() -> LocalCluster:
    """Start stack local's cluster if needed and make sure the app's roles and tables exist."""
    cluster = local_cluster()
    cluster.start()
    cluster.ensure_app_schema()
    return cluster


def stop() -> None:
    local_cluster().stop()


def db_url() -> str:
    return local_cluster().db_url()


def admin_url() -> str:
    return local_cluster().admin_url()


def pooler_url() -> str:
    return local_cluster().pooler_url()
