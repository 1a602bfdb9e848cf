"""`invoke db-url` starts the embedded database as every other task does (issue 17, item 12), so
`psql "$(invoke db-url)"` answers on a fresh clone or after `invoke db-stop`.

Stack local's cluster lives in the project's own .state, on the port of Pulumi.local.yaml: the test
runs the task in a copy of the project (in .state/copies, git-ignored) whose Pulumi.local.yaml names
a free port, so the user's own `local` cluster is never started, stopped or read."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import free_port

pytestmark = [pytest.mark.db]
ROOT = Path(__file__).resolve().parents[2]


def test_db_url_starts_the_embedded_database():
    copy = ROOT / ".state" / "copies" / f"db-url-{os.getpid()}"
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir(parents=True)
    for part in ("devenv", "dualwrite", "sql"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "tasks.py", copy / "tasks.py")
    port = free_port()
    (copy / "Pulumi.local.yaml").write_text(
        (ROOT / "Pulumi.local.yaml").read_text().replace('db_port: "54329"', f'db_port: "{port}"'))
    env = {**os.environ, "PYTHONPATH": str(copy)}

    def task(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(Path(sys.executable).parent / "invoke"), *args], cwd=copy, env=env, text=True,
                              capture_output=True, timeout=600)

    try:
        url = task("db-url")
        assert url.returncode == 0, url.stdout + url.stderr
        assert f"@127.0.0.1:{port}/habit_tracker" in url.stdout
        with psycopg.connect(url.stdout.strip(), connect_timeout=10) as conn:  # it answers: started by db-url
            assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
    finally:
        subprocess.run([sys.executable, "-c", "from devenv.localdb import local_cluster; local_cluster().destroy()"],
                       cwd=copy, env=env, capture_output=True, timeout=300)
        shutil.rmtree(copy, ignore_errors=True)
        if not any(copy.parent.iterdir()):
            copy.parent.rmdir()
