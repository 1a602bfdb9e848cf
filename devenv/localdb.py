"""The project-local PostgreSQL 15 cluster: stack `local` and the tests run against it.

One cluster per name, in `.state/pg/<name>` (git-ignored), listening on 127.0.0.1 only,
with trust authentication on loopback (it holds nothing but dev and test data), and
pg_cron preloaded with `cron.database_name` set to the app database, as Phase 1 needs.
Data survives stop/start. As root, the server runs as the `postgres` system user
(see devenv/server_user.py).

    cluster = LocalCluster()          # defaults: name "local", port 54329, db habit_tracker
    cluster.start()                   # idempotent; initdb on first use; waits until ready
    cluster.ensure_app_schema()       # sql/app/*.sql, idempotent
    cluster.db_url()                  # postgresql://postgres@127.0.0.1:54329/habit_tracker

Module-level `ensure_running()`, `stop()`, `db_url()` act on stack local's cluster.
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

from devenv import server_user
from devenv.app_schema import apply_app_schema

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".state" / "pg"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
DEFAULT_PORT = 54329
DEFAULT_DB = "habit_tracker"
SUPERUSER = "postgres"
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

    @property
    def data_dir(self) -> Path:
        return self.state_dir / self.name

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    # --- what callers use -----------------------------------------------------------

    def db_url(self, dbname: str | None = None) -> str:
        """libpq URI of a database in this cluster (no password: trust on loopback)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{quote(dbname or self.dbname)}?sslmode=disable"

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
            self._ensure_database(self.dbname)

    def stop(self) -> None:
        """Stop the server if it runs (fast shutdown: sessions are cut, data is kept)."""
        with self._lock():
            if self.status() == "running":
                self._pg_ctl("stop", "-w", "-m", "fast")

    def destroy(self) -> None:
        """Stop and delete the cluster's data (tests use this for a clean slate)."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        (self.state_dir / f"{self.name}.lock").unlink(missing_ok=True)

    def ensure_app_schema(self, dbname: str | None = None) -> None:
        """Apply sql/app (roles and app tables) to a database of this cluster; idempotent."""
        with psycopg.connect(self.db_url(dbname), autocommit=True) as conn:
            apply_app_schema(conn)

    def create_database(self, dbname: str, template: str | None = None) -> None:
        with self._admin() as conn:
            query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
            if template:
                query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
            conn.execute(query)

    def drop_database(self, dbname: str) -> None:
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))

    # --- how ----------------------------------------------------------------------------

    def _bin(self, program: str) -> str:
        return str(PG_BIN / program)

    def _pg_ctl(self, *args: str) -> None:
        server_user.run(server_user.server_user(), [self._bin("pg_ctl"), *args, "-D", str(self.data_dir)])

    def _initdb(self) -> None:
        user = server_user.server_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        server_user.give_to(user, self.data_dir)
        server_user.run(user, [
            self._bin("initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "-E", "UTF8", "--no-locale",
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
    def _admin(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.db_url("postgres"), autocommit=True) as conn:
            yield conn

    def _ensure_database(self, dbname: str) -> None:
        with self._admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            self.create_database(dbname)

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


def local_cluster() -> LocalCluster:
    """Stack local's cluster: port and database from Pulumi.local.yaml when it is readable."""
    try:
        from dualwrite import config as stack_config

        config = stack_config.load("local")
        return LocalCluster(port=config.db_port, dbname=config.db_name)
    except Exception:  # no stack file (e.g. a bare checkout): the documented defaults
        return LocalCluster()


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
