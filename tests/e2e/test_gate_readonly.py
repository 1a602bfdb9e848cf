"""The promotion gate in a pull request's read-only job (issue 16), run as pull-request.yml is written.

A chain of two shared stacks, `dev` (first: no promotes_from) and `staging` (promotes_from dev),
each on a cluster of the test's own, their state in the postgres:// backend of a third. The
pull request's `stack` job holds only what its preview environment gives it: the SELECT-only
state URL and the read-only preview role passwords (its own stack's, and for staging also
dev's as PREVIEW_PREVIOUS_DB_PASSWORD); never a passphrase or the read-write backend URL.

1. A PR flips dev (the first stack) to Phase 1: its gate reads dev itself (smoke test, its
   Phase 0 soak from the history rows, cost, errors) and passes in the PR job.
2. dev is deployed in Phase 1; a PR flips staging: its gate reads dev (smoke test, soak from
   the history rows, dual_write_drift(), performance, errors) and passes.
3. dev turns unhealthy (a malformed row: a dual-write error and drift); the same PR's gate
   fails in the PR job, with those rows.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

import tests.e2e.test_workflows as workflows
from devenv.workflow_runner import WorkflowRunner
from dualwrite import readonly_roles
from dualwrite.smoke import TEST_CHILD, TEST_HABITS, TEST_MONDAY, TEST_PERIOD, TEST_WEEK
from tests.e2e import gitops_support as support

pytestmark = [pytest.mark.engine, pytest.mark.db]
ROOT = support.ROOT
GATE = "Phase 1 gate (thresholds from the base branch)"
PASSWORDS = {"dev": "dev-preview-password-1111", "staging": "staging-preview-password-2222"}
READER_PASSWORD = "state-reader-password-3333"
WAIVER = "no Edge Function in this test's environments"


def git(repo: Path, *args: str) -> str:
    return workflows.git(repo, *args)


def stack_file(cluster, **extra: str) -> str:
    # A bound of a second a row: this test reads the performance row through the read-only role; a mean over
    # a few writes on a shared machine is noise (a malformed row's error path measured 7.9 ms in CI), and the
    # bound itself is tested in tests/db/test_gate_rows.py.
    return support.stack_file_text(cluster, extra={"db_user": "postgres", "soak_hours": "0",
                                                   "perf_max_mean_ms": "1000", "edge_function_waiver": WAIVER,
                                                   **extra})


def write_sheet(cluster, week: str) -> None:
    """One app write to habit_tracker (committed): the trigger runs, so its cost is measured."""
    with psycopg.connect(cluster.db_url(), autocommit=True) as conn:
        conn.execute("INSERT INTO public.habit_tracker (child_name, week_start_date, week_period, habits, user_id) "
                     "VALUES (%s, %s, %s, %s::jsonb, %s)", (TEST_CHILD, week, TEST_PERIOD, TEST_HABITS,
                                                            str(uuid.uuid4())))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    support.sweep_stale()
    state = support.cluster("grstate", dbname="ops")
    clusters = {"dev": support.cluster("grdev"), "staging": support.cluster("grstaging")}
    for cluster in clusters.values():
        cluster.ensure_app_schema()
    url = support.backend_url(state, "ops")
    tmp = tmp_path_factory.mktemp("gate-readonly")
    origin = tmp / "origin"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):  # what a clone has (no .venv: each job makes its own)
        if (ROOT / name).is_file():
            (origin / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, origin / name)
    # The program's virtualenv for the deploys made here (git-ignored: no job's clone has it).
    (origin / "infra" / ".venv").symlink_to(ROOT / ".venv")
    try:
        yield state, clusters, url, tmp, origin
    finally:
        for stack in clusters:
            support.pulumi(stack, ["destroy", "--yes", "--skip-preview"], backend=url, cwd=origin, check=False)
        for cluster in [*clusters.values(), state]:
            cluster.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


def pull_request(origin: Path, tmp: Path, name: str, edit: dict[str, str], secrets: dict, api_url: str):
    """Open a PR on a branch `name` that applies `edit` (file -> text), and run pull-request.yml on it."""
    git(origin, "checkout", "-q", "-b", name)
    for file, text in edit.items():
        (origin / file).write_text(text)
    git(origin, "commit", "-q", "-am", name)
    head = git(origin, "rev-parse", "HEAD")
    git(origin, "checkout", "-q", "main")
    base = git(origin, "rev-parse", "main")
    work = tmp / f"pull-{name}-{len(list(tmp.iterdir()))}"
    work.mkdir()
    runner = WorkflowRunner(origin=origin, work=work, event_name="pull_request",
                            event={"number": 9, "pull_request": {"number": 9, "base": {"ref": "main", "sha": base},
                                                                 "head": {"ref": name, "sha": head}}},
                            github={"sha": head, "ref": "refs/pull/9/merge", "base_ref": "main", "head_ref": name,
                                    "repository": "team/habit-tracker-db", "api_url": api_url},
                            secrets=secrets, action_path=[(ROOT / ".tools" / "bin").resolve()],
                            base_env=workflows.runner_env(tmp), skip_jobs={"test": "the whole suite, this test included"})
    run = runner.run(workflows.WORKFLOWS / "pull-request.yml")
    plan = run.jobs["plan"][0]
    assert run.result("stack") != "skipped", (plan.outputs, [s.output[-2000:] for s in plan.steps])
    for job in run.all_jobs():  # least privilege: no step of the pull request held a deploy secret
        for step in job.steps:
            assert not set(workflows.DEPLOY_SECRETS) & step.env_keys, (job.name, step.name)
    return run, head


def test_the_gate_runs_in_the_read_only_pull_request_job(chain, capsys):
    state, clusters, url, tmp, origin = chain
    server = workflows.ThreadingHTTPServer(("127.0.0.1", 0), workflows.FakeGitHub)
    workflows.threading.Thread(target=server.serve_forever, daemon=True).start()
    api_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        # main: the project, and the chain dev -> staging deployed in Phase 0 (the team's deploy job).
        (origin / "Pulumi.dev.yaml").write_text(stack_file(clusters["dev"]))
        (origin / "Pulumi.staging.yaml").write_text(stack_file(clusters["staging"], promotes_from="dev"))
        for stack in clusters:
            support.init_stack(stack, backend=url, cwd=origin)
        git(origin, "init", "-q", "-b", "main")
        git(origin, "add", "-A")
        git(origin, "commit", "-q", "-m", "the project; dev -> staging on the test's clusters")
        for stack in clusters:
            support.pulumi(stack, ["up", "--yes", "--skip-preview"], backend=url, cwd=origin)
        write_sheet(clusters["dev"], TEST_MONDAY)  # the app writes: Phase 0's cost on dev is measured

        # The read-only roles a team makes once (README): a preview role per stack, the state reader.
        for stack, cluster in clusters.items():
            with psycopg.connect(cluster.db_url(), autocommit=True) as conn:
                readonly_roles.ensure_preview_role(conn, f"{stack}_preview", PASSWORDS[stack])
        with psycopg.connect(state.db_url("ops"), autocommit=True) as conn:
            readonly_roles.ensure_state_reader(conn, "pulumi_state_reader", READER_PASSWORD)
        reader_url = url.replace("postgres://postgres@", f"postgres://pulumi_state_reader:{READER_PASSWORD}@")
        secrets = {
            "": {"GITHUB_TOKEN": "fake-token"},
            "preview-dev": {"PULUMI_STATE_READONLY_URL": reader_url, "PREVIEW_DB_PASSWORD": PASSWORDS["dev"]},
            "preview-staging": {"PULUMI_STATE_READONLY_URL": reader_url, "PREVIEW_DB_PASSWORD": PASSWORDS["staging"],
                                "PREVIEW_PREVIOUS_DB_PASSWORD": PASSWORDS["dev"]},
        }
        rows_before = workflows.state_rows(state)

        # 1. The first stack's flip: its gate reads dev itself, read-only.
        dev_phase1 = (origin / "Pulumi.dev.yaml").read_text().replace('phase: "0"', 'phase: "1"')
        run, head = pull_request(origin, tmp, "dev-phase-1", {"Pulumi.dev.yaml": dev_phase1}, secrets, api_url)
        job = run.jobs["stack"][0]
        gate = job.step(GATE)
        assert job.matrix == {"stack": "dev"} and gate.outcome == "success", workflows.failures(run)
        printed = gate.output
        for row in ("'dev' smoke test passes in phase 0", "0-hour stability test passed (its own Phase 0)",
                    "Performance baseline acceptable", "Logs monitored: no dual-write errors"):
            assert any(row in line and "PASS" in line for line in printed.splitlines()), f"{row}\n{printed}"
        assert "Phase 0 since update 1" in printed, printed  # read from the state's history rows

        # 2. Merged and deployed: dev runs Phase 1. The flip of staging reads dev as dev_preview.
        git(origin, "merge", "-q", "--ff-only", head)
        support.pulumi("dev", ["up", "--yes", "--skip-preview"], backend=url, cwd=origin)
        write_sheet(clusters["dev"], TEST_MONDAY)
        rows_before = workflows.state_rows(state)
        staging_phase1 = (origin / "Pulumi.staging.yaml").read_text().replace('phase: "0"', 'phase: "1"')
        run, _ = pull_request(origin, tmp, "staging-phase-1", {"Pulumi.staging.yaml": staging_phase1}, secrets,
                              api_url)
        job = run.jobs["stack"][0]
        gate = job.step(GATE)
        assert job.matrix == {"stack": "staging"} and gate.outcome == "success", workflows.failures(run)
        assert run.result("pull-request") == "success", workflows.failures(run)
        healthy = gate.output
        for row in ("'dev' declares phase 1", "'dev' smoke test passes", "0-hour stability test passed",
                    "Drift detection shows at most 0.1% drift", "Performance baseline acceptable",
                    "Logs monitored: no dual-write errors"):
            assert any(row in line and "PASS" in line for line in healthy.splitlines()), f"{row}\n{healthy}"
        assert "dual_write_drift() on 'dev': 0%" in healthy, healthy
        assert workflows.state_rows(state) == rows_before  # the PR jobs wrote no state

        # 3. dev turns unhealthy: a malformed sheet (a Tuesday) lands in dual_write_errors and drifts.
        write_sheet(clusters["dev"], TEST_WEEK)
        git(origin, "branch", "-q", "-D", "staging-phase-1")
        run, _ = pull_request(origin, tmp, "staging-phase-1", {"Pulumi.staging.yaml": staging_phase1}, secrets,
                              api_url)
        job = run.jobs["stack"][0]
        gate = job.step(GATE)
        assert gate.outcome == "failure" and run.result("pull-request") == "failure", workflows.failures(run)
        unhealthy = gate.output
        for row in ("Drift detection shows at most 0.1% drift", "Logs monitored: no dual-write errors"):
            assert any(row in line and "FAIL" in line for line in unhealthy.splitlines()), f"{row}\n{unhealthy}"
        assert "dual_write_errors on 'dev': 1 row(s)" in unhealthy, unhealthy
        # ... and what the job could not read is not what failed it: every other row still passes.
        for row in ("'dev' declares phase 1", "0-hour stability test passed", "Performance baseline acceptable"):
            assert any(row in line and "PASS" in line for line in unhealthy.splitlines()), f"{row}\n{unhealthy}"
        assert workflows.state_rows(state) == rows_before
    finally:
        server.shutdown()
    with capsys.disabled():
        print("\n[test_gate_readonly] healthy staging gate in the PR job:\n" + healthy[-2500:])
        print("[test_gate_readonly] unhealthy:\n" + unhealthy[-2500:])
