"""The workflows, run as written: every `run:` step of deploy.yml and pull-request.yml, in order.

`devenv/workflow_runner.py` plays the GitHub-hosted runner (a fresh clone per job, the event
payload, GITHUB_OUTPUT/ENV/PATH, the secrets of the job's environment, `uses:` mapped to their
effect: `pulumi/actions` = the engine built in .tools/bin). The repository the jobs clone is
this checkout's files committed in a temp dir, where `Pulumi.dev.yaml` points at a cluster of
the test's own (a dev-like stack named `dev`, its password a secret under dev's own
passphrase) and the state lives in the postgres:// backend of a second cluster.

1. A push to main deploys `dev` (plan, deploy-stack: up, smoke-test, drift; the summary job).
2. A pull request changing `dev` previews it (plan, gate, preview, policy, comment posted to
   a local stand-in of GitHub's API, the summary job) with read-only credentials only: no job
   of the PR holds a passphrase or the read-write backend URL, the preview role and the state
   reader cannot write (tried here), and neither the database nor the state changes.

The `test` job of pull-request.yml (the whole suite, this test included) is not run here.
Interfaces of the gate's branch that this branch lacks (`ci-plan --since-deployed`,
`gate-recheck`, `record-deployed`, `promotion-check --base`) are stood in for, each only while
`invoke --help` says it is missing, and listed in the test's output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from devenv.workflow_runner import WorkflowRunner
from dualwrite import readonly_roles
from dualwrite.pr_comment import MARKER
from tests.e2e import gitops_support as support

pytestmark = [pytest.mark.engine, pytest.mark.db]
ROOT = support.ROOT
WORKFLOWS = ROOT / ".github" / "workflows"
DEV_PASSPHRASE = "dev-environment-only-passphrase"
DEV_PASSWORD = "Dev-Deploy-Password-3141"  # the target trusts loopback: any password connects
PREVIEW_PASSWORD = "preview-role-password-2718"
READER_PASSWORD = "state-reader-password-1618"
# What no job of a pull request may hold.
DEPLOY_SECRETS = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_BACKEND_URL")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout.strip()


def invoke_help(*args: str) -> str:
    return subprocess.run([str(ROOT / ".venv" / "bin" / "invoke"), *args], cwd=ROOT, capture_output=True,
                          text=True).stdout


class StandIns:
    """Interfaces of another branch, stood in for only while this checkout lacks them."""

    def __init__(self, before: str) -> None:
        self.before = before
        tasks = invoke_help("--list")
        self.missing = {
            "ci-plan --since-deployed": "--since-deployed" not in invoke_help("--help", "ci-plan"),
            "gate-recheck": "gate-recheck" not in tasks,
            "record-deployed": "record-deployed" not in tasks,
            "promotion-check --base": "--base" not in invoke_help("--help", "promotion-check"),
        }
        self.used: set[str] = set()

    def __call__(self, command: str) -> str:
        if self.missing["ci-plan --since-deployed"] and "ci-plan --since-deployed" in command:
            self.used.add("ci-plan --since-deployed")
            return command.replace("--since-deployed", f"--base {self.before}")
        for task in ("gate-recheck", "record-deployed"):
            if self.missing[task] and f"invoke {task} " in command:
                self.used.add(task)
                return "true"
        if self.missing["promotion-check --base"] and "promotion-check" in command and " --base " in command:
            self.used.add("promotion-check --base")
            return command.split(" --base ")[0]
        return command


class FakeGitHub(BaseHTTPRequestHandler):
    """GitHub's issue-comment API, on loopback: records what the workflow posts."""

    posted: list[dict] = []

    def _reply(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        self._reply([])

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).posted.append({"path": self.path, "body": body["body"],
                                  "auth": self.headers.get("Authorization")})
        self._reply({"id": len(type(self).posted)})

    def log_message(self, *_: object) -> None:
        pass


def state_rows(state) -> dict[str, str]:
    with psycopg.connect(state.db_url("ops")) as conn:
        return dict(conn.execute("SELECT key, data::text FROM pulumi_state").fetchall())


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    support.sweep_stale()
    state = support.cluster("wfstate", dbname="ops")
    target = support.cluster("wfdev")
    target.ensure_app_schema()
    url = support.backend_url(state, "ops")
    tmp = tmp_path_factory.mktemp("workflows")
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state, target, url, tmp, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        env = {**support.environment("dev", url), "PULUMI_CONFIG_PASSPHRASE": DEV_PASSPHRASE,
               "PULUMI_HOME": str(tmp / "pulumi-home")}
        if (tmp / "origin").is_dir():
            subprocess.run([str(support.engine.pulumi_binary()), "destroy", "--yes", "--skip-preview", "--stack", "dev",
                            "--non-interactive"], cwd=tmp / "origin", env=env, capture_output=True)
        target.destroy()
        state.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


def make_origin(tmp: Path, target, url: str) -> tuple[Path, str, str]:
    """This checkout's files as `main` (B0), then B1: `Pulumi.dev.yaml` pointing at the test's cluster."""
    origin = tmp / "origin"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    # This team has one shared environment, dev: the example staging and prod stack files point at
    # hosts that do not exist here, and a stack the pipeline never deployed is deployed
    # (`ci-plan --since-deployed`), so the test's repository leaves them out.
    for name in filter(lambda n: n and n not in ("Pulumi.staging.yaml", "Pulumi.prod.yaml"), listed):
        if (ROOT / name).is_file():
            (origin / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, origin / name)
    git(origin, "init", "-q", "-b", "main")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "B0: the project")
    before = git(origin, "rev-parse", "HEAD")
    (origin / "Pulumi.dev.yaml").write_text(support.stack_file_text(
        target, extra={"db_user": "postgres", "lock_timeout": "3s"}))
    env = {**support.environment("dev", url), "PULUMI_CONFIG_PASSPHRASE": DEV_PASSPHRASE,
           "PULUMI_HOME": str(tmp / "pulumi-home")}
    for args in (["stack", "init", "dev", "--secrets-provider", "passphrase"],
                 ["config", "set", "--secret", "habit-tracker-db:db_password", DEV_PASSWORD, "--stack", "dev"]):
        subprocess.run([str(support.engine.pulumi_binary()), *args, "--non-interactive"], cwd=origin, env=env,
                       check=True, capture_output=True)
    assert DEV_PASSWORD not in (origin / "Pulumi.dev.yaml").read_text()
    git(origin, "add", "Pulumi.dev.yaml")
    git(origin, "commit", "-q", "-m", "B1: dev deploys to the test's cluster")
    return origin, before, git(origin, "rev-parse", "HEAD")


def runner_env(tmp: Path) -> dict[str, str]:
    """The runner machine's environment: nothing of this project's engine, backend or secrets."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PULUMI_", "PREVIEW_", "PG", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if str(ROOT) not in p)
    env.update({"PULUMI_HOME": str(tmp / "pulumi-home"), "COLUMNS": "200"})
    return env


def failures(run) -> str:
    return "\n".join(f"--- {job.name} / {step.name} ({step.outcome}): {step.command}\n{step.output[-3000:]}"
                     for job in run.all_jobs() for step in job.steps if step.outcome == "failure")


def test_deploy_then_pull_request_as_written(world, capsys):
    state, target, url, tmp, api_url = world
    origin, before, deployed = make_origin(tmp, target, url)
    reader_url = url.replace("postgres://postgres@", f"postgres://pulumi_state_reader:{READER_PASSWORD}@")
    secrets = {
        "": {"GITHUB_TOKEN": "fake-token", "PULUMI_STATE_READONLY_URL": reader_url},
        "dev": {"PULUMI_BACKEND_URL": url, "PULUMI_CONFIG_PASSPHRASE": DEV_PASSPHRASE},
        "preview-dev": {"PULUMI_STATE_READONLY_URL": reader_url, "PREVIEW_DB_PASSWORD": PREVIEW_PASSWORD},
    }
    stand_ins = StandIns(before)
    engine_bin = (ROOT / ".tools" / "bin").resolve()

    # The backend's SELECT-only role, made once when the team sets the backend up (README): the deploy
    # workflow's plan job reads each stack's deployed commit with it.
    with psycopg.connect(state.db_url("ops"), autocommit=True) as conn:
        readonly_roles.ensure_state_reader(conn, "pulumi_state_reader", READER_PASSWORD)

    # 1. The push to main: deploy.yml.
    push = WorkflowRunner(origin=origin, work=tmp / "push", event_name="push",
                          event={"before": before, "after": deployed, "ref": "refs/heads/main"},
                          github={"sha": deployed, "ref": "refs/heads/main", "repository": "team/habit-tracker-db",
                                  "api_url": api_url},
                          secrets=secrets, action_path=[engine_bin], base_env=runner_env(tmp), stand_in=stand_ins)
    (tmp / "push").mkdir()
    run = push_run = push.run(WORKFLOWS / "deploy.yml")
    results = {name: run.result(name) for name in run.jobs}
    assert results == {"plan": "success", "dev": "success", "staging": "skipped", "prod": "skipped",
                       "deploy": "success"}, failures(run)
    assert json.loads(run.jobs["plan"][0].outputs["deploy"]) == ["dev"]
    dev_job = run.jobs["dev"][0].called[0].jobs["deploy"][0]
    assert dev_job.environment == "dev"
    assert [s.name for s in dev_job.steps if s.outcome == "success"][-4:] == [
        "Up", "Smoke test", "Drift", "Record the deployed commit (the next deploy plans from it)"]
    assert "dev" in dev_job.step("Smoke test").output
    with psycopg.connect(target.db_url()) as conn:
        assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'trigger_habit_tracker_dual_write'"
                            ).fetchone() == (1,)
        body_before = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = 'sync_old_to_new'").fetchone()

    # The read-only role the preview uses, made once in the target (README).
    with psycopg.connect(target.db_url(), autocommit=True) as conn:
        readonly_roles.ensure_preview_role(conn, "dev_preview", PREVIEW_PASSWORD)

    # 2. A pull request that changes dev: pull-request.yml.
    git(origin, "checkout", "-q", "-b", "change-dev")
    text = (origin / "Pulumi.dev.yaml").read_text()
    (origin / "Pulumi.dev.yaml").write_text(text.replace("config:\n", "config:\n  habit-tracker-db:phase0_log: server\n"))
    git(origin, "commit", "-q", "-am", "dev: Phase 0 messages to the server log")
    head = git(origin, "rev-parse", "HEAD")
    git(origin, "checkout", "-q", "main")
    rows_before = state_rows(state)
    pull = WorkflowRunner(origin=origin, work=tmp / "pull", event_name="pull_request",
                          event={"number": 7, "pull_request": {"number": 7, "base": {"ref": "main", "sha": deployed},
                                                               "head": {"ref": "change-dev", "sha": head}}},
                          github={"sha": head, "ref": "refs/pull/7/merge", "base_ref": "main", "head_ref": "change-dev",
                                  "repository": "team/habit-tracker-db", "api_url": api_url},
                          secrets=secrets, action_path=[engine_bin], base_env=runner_env(tmp),
                          skip_jobs={"test": "it runs the whole suite, this test included"}, stand_in=stand_ins)
    (tmp / "pull").mkdir()
    run = pull.run(WORKFLOWS / "pull-request.yml")
    results = {name: run.result(name) for name in run.jobs}
    assert results == {"plan": "success", "test": "skipped", "stack": "success", "pull-request": "success"}, failures(run)
    stack_job = run.jobs["stack"][0]
    assert stack_job.environment == "preview-dev" and stack_job.matrix == {"stack": "dev"}
    preview = stack_job.step("Preview (read-only)").output
    assert "sync_old_to_new" in preview and "update" in preview, preview[-3000:]
    assert stack_job.step("Phase 1 gate (thresholds from the base branch)").outcome == "skipped"  # no phase change
    posted = [p for p in FakeGitHub.posted if MARKER.format(stack="dev") in p["body"]]
    assert posted and posted[-1]["path"] == "/repos/team/habit-tracker-db/issues/7/comments"
    assert posted[-1]["auth"] == "Bearer fake-token"

    # Least privilege: no step of the pull request held a deploy secret; nothing changed.
    for job in run.all_jobs():
        for step in job.steps:
            assert not set(DEPLOY_SECRETS) & step.env_keys, (job.name, step.name)
    assert state_rows(state) == rows_before
    with psycopg.connect(target.db_url()) as conn:
        assert conn.execute("SELECT prosrc FROM pg_proc WHERE proname = 'sync_old_to_new'").fetchone() == body_before

    # The credentials the pull request holds cannot write, even with the read-only default turned off.
    preview_url = target.db_url(role="dev_preview")
    for statement in ("INSERT INTO public.dual_write_errors (tracker_id, operation, error) VALUES (1, 'x', 'y')",
                      "CREATE TABLE public.preview_was_here (id int)",
                      "ALTER FUNCTION public.sync_old_to_new() RESET ALL"):
        with psycopg.connect(preview_url, autocommit=True) as conn:
            conn.execute("SET default_transaction_read_only = off")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    reader = psycopg.connect(state.db_url("ops", role="pulumi_state_reader"), autocommit=True)
    with reader:
        reader.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("UPDATE pulumi_state SET data = data")
    # ... and the CLI itself cannot open the backend with them (why the preview reads the state by SELECT).
    env = {**support.environment("dev", reader_url), "PULUMI_HOME": str(tmp / "pulumi-home")}
    env.pop("PULUMI_CONFIG_PASSPHRASE")
    exported = subprocess.run([str(support.engine.pulumi_binary()), "stack", "export", "--stack", "dev",
                               "--non-interactive"], cwd=origin, env=env, capture_output=True, text=True)
    assert exported.returncode != 0 and "read-only transaction" in exported.stderr

    with capsys.disabled():
        print(f"\n[test_workflows] stood in for (missing on this branch): {sorted(stand_ins.used) or 'nothing'}")
        for workflow in (push_run, run):
            print("[test_workflows] " + ", ".join(f"{job.name}/{step.name[:24]} {step.seconds:.0f}s"
                                                  for job in workflow.all_jobs() for step in job.steps if step.seconds))
