"""PgBouncer in transaction mode beside a local cluster: the second endpoint, like Supavisor's 6543.

Debian's `pgbouncer` (scripts/setup), one instance per cluster, its files in
`.state/pg/<cluster>.pooler/` (ini, userlist, pid, log), listening on 127.0.0.1 only.
`pool_mode = transaction`: a server connection goes back to the pool at every COMMIT or
ROLLBACK and the next transaction, from any client, may get it. So, exactly as through
Supavisor's port 6543, session state (SET, prepared statements, LISTEN, temporary tables)
leaks between clients or is lost, and psycopg's automatic prepared statements collide
(`DuplicatePreparedStatement`) unless `prepare_threshold=None`.

Authentication: the server trusts loopback, so PgBouncer does too (`auth_type = trust`);
only the roles in its userlist may log in through it (`postgres`, as through Supavisor).
PgBouncer refuses to run as root: as root it runs as the server's system user
(devenv/server_user.py), like PostgreSQL itself. Started and stopped by LocalCluster.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from devenv import server_user

PGBOUNCER = os.environ.get("PGBOUNCER_BIN") or shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
READY_TIMEOUT_S = 15
USERS = ("postgres",)


@dataclass(frozen=True)
class Pooler:
    directory: Path  # its files
    port: int  # where clients connect
    server_port: int  # the cluster it pools
    pool_size: int = 5  # server connections per (database, user)
    users: tuple[str, ...] = USERS

    @property
    def ini_file(self) -> Path:
        return self.directory / "pgbouncer.ini"

    @property
    def pid_file(self) -> Path:
        return self.directory / "pgbouncer.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "pgbouncer.log"

    def url(self, dbname: str, user: str = USERS[0]) -> str:
        return f"postgresql://{quote(user)}@127.0.0.1:{self.port}/{quote(dbname)}?sslmode=disable"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:  # alive, owned by someone else
            pass
        return pid

    def status(self) -> str:
        """'running', 'stopped' or 'absent' (never configured)."""
        if self.pid() is not None:
            return "running"
        return "stopped" if self.ini_file.exists() else "absent"

    def start(self) -> None:
        """Write the configuration and start PgBouncer (daemonized); a no-op if it runs."""
        if self.pid() is not None:
            return
        if not Path(PGBOUNCER).exists():
            raise RuntimeError(f"PgBouncer not found at {PGBOUNCER}: it is Debian's `pgbouncer` package; "
                               "run `bash scripts/setup`")
        user = server_user.server_user()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.pid_file.unlink(missing_ok=True)
        self.ini_file.write_text(self._ini(), encoding="utf-8")
        (self.directory / "userlist.txt").write_text("".join(f'"{u}" ""\n' for u in self.users), encoding="utf-8")
        server_user.give_to(user, self.directory)
        server_user.run(user, [PGBOUNCER, "-d", "-q", str(self.ini_file)])
        self._wait_until_ready()

    def stop(self) -> None:
        """SIGINT: PgBouncer's safe shutdown (waits for transactions in flight); then it is gone."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not os.path.exists(f"/proc/{pid}"):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGTERM)  # immediate shutdown
        self.pid_file.unlink(missing_ok=True)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _ini(self) -> str:
        return "\n".join([
            "; Written by devenv/pooler.py at every start.",
            "[databases]",
            f"* = host=127.0.0.1 port={self.server_port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",  # loopback only: trust auth must never face a network
            f"listen_port = {self.port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {self.directory / 'userlist.txt'}",
            "pool_mode = transaction",
            f"default_pool_size = {self.pool_size}",
            "max_client_conn = 200",
            "ignore_startup_parameters = extra_float_digits",
            f"pidfile = {self.pid_file}",
            f"logfile = {self.log_file}",
            "",
        ])

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.pid() is not None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else "(no log)"
        raise RuntimeError(f"PgBouncer did not start on port {self.port} within {READY_TIMEOUT_S} s:\n{log}")
