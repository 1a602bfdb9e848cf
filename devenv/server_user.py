"""Who runs the embedded PostgreSQL server: the current user, or `postgres` when we are root.

initdb and postgres refuse to run as root (a server bug must not own the machine), so
as root every server command runs as an unprivileged system user instead. Debian's
PostgreSQL package creates `postgres`; where it is missing we create it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SYSTEM_USER = "postgres"


@dataclass(frozen=True)
class ServerUser:
    uid: int
    gid: int
    name: str

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid()


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
        )
        return pwd.getpwnam(name)


def server_user() -> ServerUser:
    """The current user, unless that is root: then the `postgres` system user."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return ServerUser(entry.pw_uid, entry.pw_gid, entry.pw_name)
    entry = _ensure_system_user(SYSTEM_USER)
    return ServerUser(entry.pw_uid, entry.pw_gid, entry.pw_name)


def give_to(user: ServerUser, path: Path) -> None:
    """Make `path` (a directory tree the server writes) belong to the server user."""
    if user.is_current:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, user.uid, user.gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), user.uid, user.gid, follow_symlinks=False)


def run(user: ServerUser, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a server binary as `user`, output captured (shown in the error if it fails)."""
    switch = {} if user.is_current else {"user": user.uid, "group": user.gid, "extra_groups": []}
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    if not user.is_current:
        env["HOME"] = "/tmp"  # root's home is not readable by the server user
    result = subprocess.run(args, capture_output=True, text=True, cwd="/", env=env, **switch)  # type: ignore[arg-type,call-overload]
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed (exit {result.returncode}) as user {user.name}:\n{result.stdout}{result.stderr}"
        )
    return result
