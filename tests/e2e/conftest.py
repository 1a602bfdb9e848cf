"""Stacks of the tests' own, for the real engine: never the user's `local`, its state or its data.

    e2e_stack(phase="0", **config)   a new stack `e2e-<pid>-<n>`: its own PostgreSQL cluster
                                     on a free port, its own git-ignored stack file
                                     (Pulumi.e2e-*.yaml), its own file backend in a temp dir

Every engine or task call of a test goes through its `E2EStack` (`.invoke`, `.pulumi`), which
points PULUMI_BACKEND_URL at the test's backend and sets a passphrase, so the user's
`.state/backend` is never read or written. Clusters and stack files left by a killed run are
swept at the next start (their pid is gone).

No engine process outlives the session: every process the session starts inherits
SESSION_VARIABLE, and at the end any CLI or plugin still carrying it fails the run (and is
stopped), so a test that cuts a deploy off must leave it to the next task to clean up.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import psycopg
import pytest

from devenv import engine, engine_processes
from devenv.localdb import STATE_DIR, LocalCluster
from dualwrite.catalog import MIGRATION_013
from tests.conftest import TEST_SETTINGS, free_port

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "e2e-tests-passphrase"
CLUSTER_SETTINGS = {key: value for key, value in TEST_SETTINGS.items() if key != "max_connections"}
_numbers = itertools.count(1)
SESSION_VARIABLE = "HABIT_TRACKER_DB_TEST_SESSION"
os.environ[SESSION_VARIABLE] = str(os.getpid())  # inherited by every task, CLI and plugin the tests start
LINGER = 15.0  # seconds a CLI that just exited may take to close its plugins


@pytest.fixture(scope="session", autouse=True)
def no_engine_process_outlives_the_session() -> Iterator[None]:
    yield
    deadline = time.monotonic() + LINGER
    left = engine_processes.marked(SESSION_VARIABLE, os.environ[SESSION_VARIABLE])
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = engine_processes.marked(SESSION_VARIABLE, os.environ[SESSION_VARIABLE])
    if left:
        engine_processes.stop(left)
        pytest.fail(f"{len(left)} engine process(es) started by this test session still ran at its end "
                    f"({sum(p.rss_kb for p in left) // 1024} MB; now stopped): "
                    + "; ".join(p.describe() for p in left), pytrace=False)


def _sweep_stale() -> None:
    """Stack files and clusters of e2e runs whose process is gone."""
    for path in [*ROOT.glob("Pulumi.e2e-*.yaml"), *(STATE_DIR.glob("e2e-*") if STATE_DIR.is_dir() else [])]:
        match = re.search(r"e2e-(\d+)-", path.name)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            if path.is_dir():
                LocalCluster(name=path.name).destroy()
            else:
                path.unlink(missing_ok=True)


@dataclass
class E2EStack:
    name: str
    cluster: LocalCluster
    backend: Path
    root: Path = ROOT
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def stack_file(self) -> Path:
        return self.root / f"Pulumi.{self.name}.yaml"

    @property
    def env(self) -> dict[str, str]:
        # PULUMI_HOME too: workspace settings of the tests' stacks stay in the test's temp dir.
        return {**os.environ, "PULUMI_BACKEND_URL": self.backend.as_uri(), "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
                "PULUMI_HOME": str(self.backend.parent / "pulumi-home"),
                "COLUMNS": "200", **self.extra_env}  # tables of checks, one row to a line

    def write_config(self, **config: str) -> None:
        """The stack file, as `pulumi config set` writes it (numbers quoted)."""
        salt = [line for line in self.stack_file.read_text().splitlines() if line.startswith("encryptionsalt:")] \
            if self.stack_file.exists() else []
        lines = ["config:"] + [f'  habit-tracker-db:{key}: "{value}"' for key, value in config.items()] + salt
        self.stack_file.write_text("\n".join(lines) + "\n")

    def set(self, key: str, value: str) -> None:
        text = self.stack_file.read_text()
        pattern = re.compile(rf'^  habit-tracker-db:{re.escape(key)}: .*$', re.M)
        line = f'  habit-tracker-db:{key}: "{value}"'
        text = pattern.sub(line, text) if pattern.search(text) else text.replace("config:\n", f"config:\n{line}\n", 1)
        self.stack_file.write_text(text)

    def invoke(self, *args: str, check: bool = True, without: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        """`invoke <task> [args] --stack <this stack>`, from the project root, as a user would
        (`without`: variables the user's shell does not have)."""
        env = {key: value for key, value in self.env.items() if key not in without}
        result = subprocess.run(
            [str(Path(sys.executable).parent / "invoke"), *args, "--stack", self.name],
            cwd=self.root, env=env, text=True, capture_output=True, timeout=900,
        )
        if check and result.returncode != 0:
            pytest.fail(f"invoke {' '.join(args)} exited {result.returncode}\n{result.stdout[-4000:]}\n"
                        f"{result.stderr[-4000:]}")
        return result

    def pulumi(self, *args: str, check: bool = True, cwd: Path | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The real CLI with the project's environment (devenv.engine), on this stack and backend."""
        full_env = engine.environment(self.name, self.env)
        full_env.update(env or {})
        result = subprocess.run(
            [str(engine.pulumi_binary()), *args, "--stack", self.name, "--non-interactive"],
            cwd=cwd or self.root, env=full_env, text=True, capture_output=True, timeout=900,
        )
        if check and result.returncode != 0:
            pytest.fail(f"pulumi {' '.join(args)} exited {result.returncode}\n{result.stdout[-4000:]}\n"
                        f"{result.stderr[-4000:]}")
        return result

    def init(self, cwd: Path | None = None) -> None:
        self.backend.mkdir(parents=True, exist_ok=True)
        engine.link_program_virtualenv()
        self.pulumi("stack", "init", "--secrets-provider", "passphrase", cwd=cwd)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.cluster.db_url(), autocommit=True)

    def objects_of_013(self) -> list[str]:
        """Names of migration 013's tables, indexes, functions and trigger present in the database."""
        names = [o.name for o in MIGRATION_013]
        rows = self.query(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = ANY(%s) "
            "UNION ALL SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proname = ANY(%s) "
            "UNION ALL SELECT tgname FROM pg_trigger WHERE tgname = ANY(%s)",
            names, names, names,
        )
        return sorted(r[0] for r in rows)

    def copy_project(self, into: Path) -> Path:
        """A copy of the project (program, library, SQL) to change a file without touching the checkout;
        run the engine there with `cwd=copy, env={"PYTHONPATH": str(copy)}`."""
        for part in ("infra", "dualwrite", "devenv", "sql", "policy"):
            shutil.copytree(self.root / part, into / part, ignore=shutil.ignore_patterns("__pycache__", ".venv"))
        for part in ("Pulumi.yaml", self.stack_file.name):
            shutil.copy(self.root / part, into / part)
        (into / "infra" / ".venv").symlink_to(self.root / ".venv")
        return into

    def query(self, text: str, *params: object, admin: bool = False) -> list[tuple]:
        """A query as the deploy role `postgres` (the dashboard's SQL editor), or as the cluster's admin."""
        url = self.cluster.admin_url() if admin else self.cluster.db_url()
        with psycopg.connect(url, autocommit=True) as conn:
            cursor = conn.execute(text, params or None)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []


@pytest.fixture
def e2e_stack(tmp_path: Path) -> Iterator[Callable[..., E2EStack]]:
    """Make stacks of the test's own; everything they made is removed afterwards."""
    _sweep_stale()
    made: list[E2EStack] = []

    def make(*, pooler: bool = False, **config: str) -> E2EStack:
        number = next(_numbers)
        name = f"e2e-{os.getpid()}-{number}"
        cluster = LocalCluster(name=name, port=free_port(), dbname="habit_tracker", settings=CLUSTER_SETTINGS,
                               pooler_port=free_port() if pooler else None)
        cluster.destroy()
        cluster.start()
        cluster.ensure_app_schema()
        stack = E2EStack(name, cluster, tmp_path / f"backend-{number}")
        made.append(stack)
        defaults = {"phase": "0", "db_host": "127.0.0.1", "db_port": str(cluster.port), "db_name": "habit_tracker",
                    "db_user": "postgres", "db_sslmode": "disable"}
        stack.write_config(**{**defaults, **config})
        stack.init()
        return stack

    try:
        yield make
    finally:
        for stack in made:
            stack.stack_file.unlink(missing_ok=True)
            stack.cluster.destroy()
