"""A stack's deploy lock, read where the engine's DIY backend keeps it: file or `postgres://`.

The engine (pkg/backend/diy/lock.go, v3.251.0) writes one JSON blob per running update,
`{"pid", "username", "hostname", "timestamp"}`, at the key
`[<prefix>/].pulumi/locks/<org>/<project>/<stack>/<lock id>.json`:
- a file backend (`file://DIR`) keeps it as the file DIR/.pulumi/locks/...;
- the `postgres://` backend (pkg/backend/diy/postgres/bucket.go) keeps it as a row of the
  table `pulumi_state` (or the URL's `?table=`) whose `key` is that path prefixed with the
  URL's path (the database name, from `blob.PrefixedBucket`) and whose `data` is
  `{"data": "<base64 of the JSON>"}`.

Each lock is read, judged and removed on its own: `pulumi cancel` deletes every lock of the
stack, including one a live deploy took a moment ago, so it is never used to clear a stale one.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from dualwrite.config import PROJECT

POSTGRES_SCHEMES = ("postgres",)  # the one scheme pkg/backend/diy/postgres registers
DEFAULT_TABLE = "pulumi_state"
LOCK_DIR = ".pulumi/locks/"
# The backend is the team's shared state: reading or removing a lock waits on nobody for long.
TIMEOUTS = "SELECT set_config('lock_timeout', '3s', true), set_config('statement_timeout', '15s', true)"


class LockError(RuntimeError):
    """The backend holding the locks could not be read."""


@dataclass(frozen=True)
class DeployLock:
    key: str  # the file path (file backend) or the row's key (postgres backend)
    pid: int
    hostname: str
    username: str
    timestamp: str

    @property
    def here(self) -> bool:
        return self.hostname == socket.gethostname()

    @property
    def process_alive(self) -> bool:
        """Only a local lock's process can be checked; another host's counts as alive."""
        return not self.here or self.pid <= 0 or alive(self.pid)

    def describe(self) -> str:
        return f"pid {self.pid} of {self.username}@{self.hostname}, since {self.timestamp}"


def alive(pid: int) -> bool:
    """A process that runs (a zombie, killed and not yet reaped by its parent, does not)."""
    if not Path("/proc").is_dir():  # not Linux: a zombie counts as alive, the safe side
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def backend_url(env: Mapping[str, str]) -> str:
    return env.get("PULUMI_BACKEND_URL", "")


def is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in POSTGRES_SCHEMES


def _decode(raw: bytes | str) -> dict:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _lock(key: str, content: dict) -> DeployLock:
    try:
        pid = int(content.get("pid") or 0)
    except (TypeError, ValueError):
        pid = 0
    return DeployLock(key=key, pid=pid, hostname=str(content.get("hostname") or ""),
                      username=str(content.get("username") or "?"), timestamp=str(content.get("timestamp") or "?"))


def _of_stack(parts: list[str], stack: str) -> bool:
    """`<org>/<project>/<stack>/<id>.json` below the lock folder: this project's stack."""
    return len(parts) >= 3 and parts[-3] == PROJECT and parts[-2] == stack and parts[-1].endswith(".json")


# --- postgres:// ------------------------------------------------------------------------


def _postgres_target(url: str) -> tuple[str, str, str]:
    """(libpq URL without `table`, table name, key prefix) as the engine derives them."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    table = next((value for key, value in query if key == "table"), "") or DEFAULT_TABLE
    conninfo = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "table"])))
    prefix = parts.path.lstrip("/")
    return conninfo, table, (prefix.rstrip("/") + "/" if prefix else "") + LOCK_DIR


def _table(name: str) -> sql.Identifier:
    """The engine puts `?table=` into its SQL as written, so `schema.table` names a schema."""
    return sql.Identifier(*name.split("."))


def _postgres_locks(url: str, stack: str) -> list[DeployLock]:
    conninfo, table, lock_dir = _postgres_target(url)
    query = sql.SQL("SELECT key, data::text FROM {} WHERE starts_with(key, %s) ORDER BY key").format(_table(table))
    try:
        with psycopg.connect(conninfo, connect_timeout=10) as conn, conn.transaction():
            conn.execute(TIMEOUTS)
            if conn.execute("SELECT to_regclass(%s)", [_table(table).as_string(conn)]).fetchone() == (None,):
                return []  # a backend no command has opened yet has no table, and no lock
            rows = conn.execute(query, [lock_dir]).fetchall()
    except psycopg.Error as error:
        raise LockError(_unreadable(url, error)) from None
    locks = []
    for key, data in rows:
        if not _of_stack(key[len(lock_dir):].split("/"), stack):
            continue
        try:
            content = _decode(base64.b64decode(_decode(data).get("data") or ""))
        except ValueError:
            content = {}
        locks.append(_lock(key, content))
    return locks


def _remove_postgres(url: str, lock: DeployLock) -> bool:
    conninfo, table, _ = _postgres_target(url)
    try:
        with psycopg.connect(conninfo, connect_timeout=10) as conn, conn.transaction():
            conn.execute(TIMEOUTS)
            deleted = conn.execute(sql.SQL("DELETE FROM {} WHERE key = %s").format(_table(table)), [lock.key])
            return deleted.rowcount == 1
    except psycopg.Error as error:
        raise LockError(_unreadable(url, error)) from None


def _unreadable(url: str, error: Exception) -> str:
    parts = urlsplit(url)
    shown = urlunsplit(parts._replace(netloc=parts.hostname or "", query=""))  # no user, no password
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return (f"cannot read the deploy locks in the state backend {shown} ({first}). Check PULUMI_BACKEND_URL "
            "and that its database is reachable; nothing was changed.")


# --- file:// --------------------------------------------------------------------------


def _file_root(url: str) -> Path | None:
    return Path(url[len("file://"):]) if url.startswith("file://") else None


def _file_locks(root: Path, stack: str) -> list[DeployLock]:
    folder = root / LOCK_DIR
    if not folder.is_dir():
        return []
    locks = []
    for path in sorted(folder.rglob("*.json")):
        if _of_stack(list(path.relative_to(folder).parts), stack):
            try:
                locks.append(_lock(str(path), _decode(path.read_text())))
            except OSError:
                continue  # removed meanwhile: that deploy ended
    return locks


# --- both -----------------------------------------------------------------------------


def supported(env: Mapping[str, str]) -> bool:
    url = backend_url(env)
    return _file_root(url) is not None or is_postgres(url)


def stack_locks(stack: str, env: Mapping[str, str]) -> list[DeployLock]:
    """Every deploy lock of `stack` in the backend `env` points at (none for other backends)."""
    url = backend_url(env)
    root = _file_root(url)
    if root is not None:
        return _file_locks(root, stack)
    if is_postgres(url):
        return _postgres_locks(url, stack)
    return []


def remove(lock: DeployLock, env: Mapping[str, str]) -> bool:
    """Remove this one lock (and no other); False when it was gone already."""
    url = backend_url(env)
    if is_postgres(url):
        return _remove_postgres(url, lock)
    try:
        Path(lock.key).unlink()
    except FileNotFoundError:
        return False
    return True
