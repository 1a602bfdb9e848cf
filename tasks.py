"""Tasks a team runs against a stack (default: the embedded `local` stack).

Thin on purpose: each task parses its arguments, calls one function in `dualwrite/` (or `devenv/`),
and prints the result. The library gets this machine's engine and embedded database passed in
(`_this_machine()`, devenv/stack_engine.py). `invoke --list` and `invoke --help TASK` explain them.
"""

from __future__ import annotations

import functools
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from invoke import Exit
from invoke import task as invoke_task

STACK_HELP = "Stack name (Pulumi.<stack>.yaml); default: local"


def _fail(message: str) -> Exit:
    return Exit(f"error: {message}", code=1)


@contextmanager
def _user_errors(stack: str | None = None) -> Iterator[None]:
    """What a user can cause (bad config, an unreachable database, a missing passphrase, an engine
    failure, a lock the app holds longer than the stack's lock_timeout) ends the task with its one
    paragraph, never a traceback."""
    where = f"Stack '{stack}'" if stack else "The database"
    try:
        yield
    except Exit:
        raise  # a task's own ending (`_fail`, a failed check): already one paragraph
    except Exception as error:
        # Imported here, not above: a job that installs invoke alone (the workflows' summary jobs)
        # runs tasks that never touch a database or the engine.
        import psycopg

        from dualwrite.ci_plan import PlanError
        from dualwrite.config import ConfigError
        from dualwrite.db import LOCK_RETRIES
        from dualwrite.dual_write_errors import ResolveRefused
        from dualwrite.github import GitHubError
        from dualwrite.lock_waits import LockWaitExhausted
        from dualwrite.objects.ownership import OwnedElsewhere
        from dualwrite.stack_engine import EngineError
        from dualwrite.stack_rollback import RollbackNotRun

        if isinstance(error, (ConfigError, EngineError, PlanError, GitHubError, LockWaitExhausted, OwnedElsewhere,
                              ResolveRefused, RollbackNotRun)):
            raise _fail(str(error)) from None
        if isinstance(error, psycopg.errors.LockNotAvailable):
            raise _fail(f"{where}: another session held a lock this task needs for longer than the stack's "
                        f"lock_timeout, on each of {LOCK_RETRIES + 1} tries ({_first_line(error)}). Every try was one "
                        "transaction and was rolled back, so nothing of it changed; run the task again when the app "
                        "is quieter (pg_locks shows who holds it), or raise habit-tracker-db:lock_timeout.") from None
        if isinstance(error, psycopg.errors.QueryCanceled):
            raise _fail(f"{where}: a statement ran longer than the stack's statement_timeout ({_first_line(error)}). "
                        "Its transaction was rolled back (batches a backfill or cleanup committed before it stay, and "
                        "the task resumes after them); run it again, or raise "
                        "habit-tracker-db:statement_timeout.") from None
        raise


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def task(*args: Any, **kwargs: Any) -> Any:
    """invoke's @task, with every task's body inside the one error boundary (_user_errors): what a
    user can cause ends any task with its paragraph, never a traceback."""

    def bounded(body: Callable[..., Any]) -> Any:
        @functools.wraps(body)
        def run(*call_args: Any, **call_kwargs: Any) -> Any:
            with _user_errors(call_kwargs.get("stack")):
                return body(*call_args, **call_kwargs)

        return invoke_task(**kwargs)(run)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        return bounded(args[0])
    return bounded


def _this_machine():
    """The engine and embedded database the library is given (dualwrite/stack_engine.py)."""
    from devenv.stack_engine import ENGINE

    return ENGINE


def _on_database(stack: str, work):
    """Run `work(conn, config)` on a stack's database; returns (config, result)."""
    from dualwrite import connection

    return connection.on_database(stack, _this_machine(), work)


# --- the embedded database -----------------------------------------------------------


@task
def db_start(c):
    """Start the embedded PostgreSQL 15 (with pg_cron) for stack local; create it on first use."""
    from devenv import localdb

    localdb.ensure_running()
    print(f"embedded PostgreSQL running: {localdb.db_url()}")
    print(f"through PgBouncer (transaction mode, like Supavisor's 6543): {localdb.pooler_url()}")


@task
def db_stop(c):
    """Stop the embedded PostgreSQL (its data is kept)."""
    from devenv import localdb

    localdb.stop()
    print("embedded PostgreSQL stopped; data kept")


@task(help={"stack": STACK_HELP})
def db_url(c, stack="local"):
    """Print the libpq URI of a stack's database, for `psql "$(invoke db-url)"` (no password in it).

    Starts the embedded database of stack local first, as every other task does."""
    from dualwrite import connection

    print(connection.db_url(stack, _this_machine()))


# --- the engine ------------------------------------------------------------------------


@task(help={"stack": "Stack name of a real environment (Pulumi.<stack>.yaml must exist); required"})
def stack_init(c, stack):
    """Create a real environment's stack and store its database password as a Pulumi secret.

    The password is asked for without echo, or read from stdin when it is not a terminal (CI:
    `printf %s "$DB_PASSWORD" | invoke stack-init --stack dev`); never from an argument. It is
    encrypted with the team's PULUMI_CONFIG_PASSPHRASE (or _FILE), which must be set. The stack is
    not selected: a plain `pulumi` keeps working on the stack it worked on."""
    from dualwrite import stack_init as initializer

    print(initializer.init(stack, sys.stdin, _this_machine()))


def _engine(stack: str, args: list[str], rewrite_line: Callable[[str], str] | None = None):
    """`pulumi <args>` on the stack, checks first (dualwrite/deploy.py); returns the stack's config."""
    from dualwrite import deploy

    return deploy.run(stack, args, _this_machine(), rewrite_line=rewrite_line)


@task(help={"stack": STACK_HELP, "expect_no_changes": "Exit non-zero if the preview shows any change",
            "refresh": "Read the database first, so out-of-band changes show", "diff": "Show property-level diffs"})
def preview(c, stack="local", expect_no_changes=False, refresh=False, diff=False):
    """Preview what `up` would change."""
    args = ["preview"] + (["--expect-no-changes"] if expect_no_changes else []) + (["--refresh"] if refresh else [])
    _engine(stack, args + (["--diff"] if diff else []))


@task(help={"stack": STACK_HELP})
def up(c, stack="local"):
    """Deploy migration 013 to a stack (no prompt), putting back what was changed by hand.

    Reads the database first, so objects changed or dropped by hand are put back as declared
    (declare a rollback to keep it)."""
    from devenv import display

    # The stack's outputs (every object's name) and the per-resource lines of reads and unchanged
    # resources say nothing: a no-op prints the engine's summary and one line below.
    config = _engine(stack, ["up", "--yes", "--skip-preview", "--refresh", "--suppress-outputs"],
                     rewrite_line=display.quiet)
    print(f"stack '{stack}' deployed: phase {config.stage.key}, dual_write {config.dual_write}")


@task(help={"stack": STACK_HELP})
def refresh(c, stack="local"):
    """Read the database into the stack's state: shows objects changed or dropped by hand."""
    _engine(stack, ["refresh", "--yes", "--diff"])


@task(help={"stack": STACK_HELP, "force": "Remove the lock even if its process still runs on this host"})
def cancel(c, stack="local", force=False):
    """Remove a stack's deploy lock, once the deploy holding it is known to be gone (says "no lock" if none)."""
    from devenv import engine

    print(engine.cancel(stack, force=force))


@task(help={"stack": STACK_HELP})
def destroy(c, stack="local"):
    """Remove migration 013 from a stack (no prompt); its tables stay, with their rows (`dual_write: removed` drops them)."""
    from dualwrite import deploy

    _engine(stack, ["destroy", "--yes", "--skip-preview"], rewrite_line=functools.partial(deploy.keep_stack_file, stack))


# --- checks and operations -------------------------------------------------------------


@task(help={"stack": STACK_HELP})
def smoke_test(c, stack="local"):
    """The guide's verification steps 1-4 plus security checks; exits non-zero on any failure."""
    from dualwrite import report, smoke

    config, checks = _on_database(stack, smoke.run_smoke_test)
    passed = report.checks_table(f"smoke test: stack {stack}, phase {config.stage.key}, dual_write {config.dual_write}", checks)
    for paragraph in smoke.state_notes(checks):
        print(f"dual write: {paragraph}")  # unwrapped: the rollback in effect and the way back
    if not passed:
        raise Exit(code=1)


@task(help={"stack": STACK_HELP, "force": "Override a failing promotion gate (needs --reason; leaves a trace)",
            "reason": "Why the gate is overridden (10+ chars): written to the stack file as habit-tracker-db:gate_override",
            "n": "The phase to declare, one step up or down: 0 (log only), 1 (sync old to new), 2 (both directions), "
                 "3 (contract) or retired; a step up runs that phase's promotion gate first"})
def phase(c, n, stack="local", force=False, reason=""):
    """The GitOps edit: set the phase line of Pulumi.<stack>.yaml, print the diff, deploy nothing.

    One step at a time (dualwrite/phases.py); up runs the gate to enter, down needs none and says what
    it does. Refuses a stack file that does not parse or sets a key this project does not read."""
    from dualwrite import phases, promotion, report, stack_file, config as stack_config

    override = None
    try:
        edit = stack_file.set_phase(stack, n, write=False)
        current, target = _declared_phase(stack), phases.parse(n)
        assert target is not None  # set_phase refused anything else
        skipped = phases.one_step(current, target)
        if skipped:
            raise _fail(f"Stack '{stack}': {skipped}. Nothing changed.")
        if target.order > current.order and edit.changed:
            gate = promotion.phase_gate(stack, engine=_this_machine(), target=target)
            if not report.checks_table(f"promotion gate for '{stack}' entering {target.label}", gate):
                if not force:
                    raise _fail(f"'{stack}' cannot enter phase {target.key} yet; fix the stack before it, or use "
                                "--force --reason \"...\" (the reason is committed in the stack file and shown on the PR).")
                if not reason.strip():
                    raise _fail(f"--force for '{stack}' needs --reason \"...\": it is written to {edit.path.name} as "
                                "habit-tracker-db:gate_override, so the commit, the PR comment and the deploy's "
                                "re-check show who overrode the gate and why. Nothing changed.")
                override = reason
                failed = "; ".join(f"{check.name} ({check.detail})" for check in gate if not check.ok)
                print(f"WARNING: --force: promotion gate for '{stack}' overridden. Failed rows: {failed}", file=sys.stderr)
        elif target.order < current.order:
            print(f"One step back, from {current.label} to {target.label}: no gate. After `invoke up`: "
                  f"{current.step_back}.")
        edit = promotion.declare_phase(stack, n, override)
    except stack_config.ConfigError as error:
        raise _fail(str(error)) from None
    print(edit.diff() or f"{edit.path.name} already says phase {n}; nothing changed.")
    if edit.changed:
        print(f"Next: commit {edit.path.name}, open a pull request; after the merge, `invoke up --stack {stack}` "
              "(or the merge workflow) deploys it.")


def _declared_phase(stack: str):
    """The phase a stack file declares now (its entry in dualwrite/phases.py)."""
    from dualwrite import config as stack_config

    raw = stack_config.read_stack_file(stack)
    raw.pop("db_password", None)
    return stack_config.parse(stack, raw, has_password=True).stage


def _enforce(stack: str, base: str | None, head: str | None, what: str, *, since_deployed: bool = False) -> None:
    from dualwrite import enforcement, report

    verdict = enforcement.check_stack(stack, base, head, _this_machine(), since_deployed=since_deployed)
    for line in verdict.notes:
        print(f"note: {line}")
    for line in verdict.callouts:
        print(f"CALL-OUT: {line}")
    report.checks_table(verdict.title(what), verdict.rows)
    if not verdict.passed:
        raise Exit(code=1)


@task(help={"stack": STACK_HELP,
            "base": "The base branch (e.g. origin/main): the gate's thresholds are read there, not from the PR",
            "head": "The change's commit (default: the working tree)"})
def promotion_check(c, stack="local", base="", head=""):
    """The promotion gate of a pull request that sets phase 1 (the guide's Phase 1 checklist).

    With --base (CI): thresholds from there, changes called out, a rollback passes with one row.
    Without: could the stack enter phase 1 now, by its working-tree values (a laptop's question)."""
    if base:
        _enforce(stack, base, head, "promotion gate")
        return
    from dualwrite import promotion, report

    gate = promotion.phase_gate(stack, engine=_this_machine())
    if not report.checks_table(f"promotion gate for '{stack}'", gate):
        raise Exit(code=1)


@task(help={"stack": STACK_HELP,
            "base": "The commit the stack last deployed (default: its record; see record-deployed)",
            "head": "The commit being deployed (default: the working tree)"})
def gate_recheck(c, stack="local", base="", head=""):
    """The deploy job's gate re-check, right before `up`: a phase flip deploys only if its gate holds.

    It fails unless the gate holds or the change records an override; rollbacks and other changes
    pass with one row. The base is the stack's recorded deployed commit unless --base says otherwise."""
    _enforce(stack, base, head, "deploy re-check of the promotion gate", since_deployed=True)


@task(help={"stack": STACK_HELP, "commit": "The full SHA that was deployed (github.sha)"})
def record_deployed(c, stack, commit):
    """After a successful `up`: record the deployed commit (a stack tag) for `ci-plan --since-deployed`."""
    from dualwrite import deploy_record

    value = deploy_record.write(stack, commit, _this_machine())
    print(f"stack '{stack}': deployed commit {value} recorded ({deploy_record.TAG})")


@task(help={"stack": STACK_HELP, "level": "disable | drop-trigger | all", "yes": "Do not ask for confirmation"})
def rollback(c, level, stack="local", yes=False):
    """Emergency rollback (the guide's options 1-3) in one bounded transaction."""
    from dualwrite import stack_rollback

    plan = stack_rollback.plan(stack, level, _this_machine())
    print(f"Rollback of stack '{stack}': {plan.level.guide_option}. Impact: {plan.level.impact}.")
    print("It runs, in one transaction (lock_timeout " + plan.config.lock_timeout + "):")
    for statement in plan.statements:
        print(f"  {statement};")
    if not yes:
        if not sys.stdin.isatty() or input("Type the stack name to proceed: ").strip() != stack:
            raise _fail("not confirmed; nothing changed (pass --yes to skip the prompt)")
    follow_up = stack_rollback.run(plan)
    print("Done. So that the next `invoke up` keeps this rollback, commit this line in "
          f"{plan.config.stack_file}:\n  {follow_up}")


@task(help={"stack": STACK_HELP, "from_": "The stack that owns migration 013 in this database now"})
def take_ownership(c, stack="local", from_=""):
    """Move migration 013 in a stack's database from another stack to this one (the only way).

    The next `invoke up --stack STACK` adopts its objects, and the other stack may no longer change
    or drop them."""
    from dualwrite import stack_ownership

    previous = stack_ownership.take_ownership(stack, from_, _this_machine())
    print(f"Migration 013 in the database of stack '{stack}' now belongs to '{stack}' (it was '{previous.stack}'). "
          f"Next: `invoke up --stack {stack}` adopts its objects; `pulumi stack rm --force --stack {from_}` forgets "
          f"the old stack's resources without dropping them (its deletes are refused from now on).")


@task(help={"stack": STACK_HELP})
def monitor(c, stack="local"):
    """Idempotency-log growth, trigger state and phase, as one table."""
    from dualwrite import monitor as mon, report

    _, status = _on_database(stack, mon.status)
    report.key_values(f"monitor: stack {stack}", status.rows())


@task(help={"stack": STACK_HELP,
            "one_transaction": "Run the guide's cleanup_idempotency_log() instead: one transaction, "
                               "every row lock held until it ends"})
def cleanup(c, stack="local", one_transaction=False):
    """Delete expired idempotency logs now, batch by batch as the scheduled job does; print the count.

    Each batch is committed (bounded and retried like every change); `--one-transaction` runs the
    guide's cleanup_idempotency_log() instead, which holds every row lock until it ends."""
    from dualwrite import lock_waits, monitor as mon

    try:
        _, deleted = _on_database(stack, lambda conn, config: mon.cleanup_now(conn, config,
                                                                               one_transaction=one_transaction))
    except lock_waits.LockWaitExhausted as error:
        raise _fail(f"cleanup of stack '{stack}': {error}") from None
    print(f"deleted_count: {deleted}")


@task(help={"stack": STACK_HELP})
def drift(c, stack="local"):
    """Old vs new schema: exits non-zero above the stack's threshold, where Phase 1 syncs.

    It says how much is unsynced rows (`invoke backfill`) and how much malformed ones (`invoke errors`);
    elsewhere (Phase 0, a rollback) it says why it does not apply and exits 0."""
    from dualwrite import report, stack_drift

    config, result = _on_database(stack, stack_drift.stack_drift)
    if result.not_applicable:
        print(result.not_applicable)
        return
    report.key_values(f"drift: stack {stack} (threshold {config.drift_threshold}%)", result.rows())
    if not result.ok:
        raise _fail(result.failure())


@task(help={"stack": STACK_HELP, "batch_size": "Rows per batch, 1-1000000 (default: the stack's backfill_batch_size)"})
def backfill(c, stack="local", batch_size=None):
    """Project every habit_tracker row into the new schema: batched, resumable, idempotent."""
    from dualwrite import stack_backfill

    # A string here, parsed below: invoke's own int() would end `--batch-size abc` in a traceback.
    text = str(batch_size).strip()
    if batch_size is not None and not (text.isdigit() and 1 <= int(text) <= 1_000_000):
        raise _fail(f"backfill --batch-size {batch_size} is not allowed: a whole number of rows from 1 to 1000000, "
                    f"or leave it out for stack '{stack}'s habit-tracker-db:backfill_batch_size; nothing was changed.")
    result = stack_backfill.run(stack, _this_machine(), None if batch_size is None else int(text))
    print(f"backfill of stack '{stack}': {result.summary()}")
    if result.pacing:  # what its own WAL and the server's checkpoints made it do (dualwrite/backfill_pacing.py)
        print(f"pacing: {result.pacing}")


@task(help={"stack": STACK_HELP, "resolve": "dual_write_errors id whose row was fixed: re-sync it (it is then handled)",
            "include_handled": "Also list the records already handled"})
def errors(c, stack="local", resolve=0, include_handled=False):
    """The open records of dual_write_errors (newest first; `--include-handled` adds the rest); `--resolve ID` re-syncs a fixed row."""
    from dualwrite import dual_write_errors as dwe, report
    from dualwrite.db import Session

    if resolve:
        def work(conn, config):
            return dwe.resolve(Session.on(conn, config.lock_timeout, config.statement_timeout), stack, int(resolve))

        _, done = _on_database(stack, work)
        print(f"dual_write_errors id {done.error_id} (habit_tracker id {done.tracker_id}): "
              f"{'re-synced' if done.row_exists else 'the row is gone; its week removed'}; handled "
              "(the record stays in dual_write_errors as history).")
        return
    config, (rows, opened, closed) = _on_database(stack, lambda conn, _: dwe.open_errors(conn, include_handled=include_handled))
    report.error_rows(f"dual_write_errors: stack {stack}: {opened} open, {closed} handled", rows, stack)


@task(help={"quick": "Small sizes (what CI runs)", "full": "1M-row backfill",
            "only": "Comma-separated figures to run (write,bulk,phase2,backfill,drift,cleanup,deploy); "
                    "results go to bench/results/only/",
            "port": "Port of the bench cluster (default 54339; another checkout may be benchmarking on it)"})
def bench(c, quick=False, full=False, only="", port=0):
    """Benchmarks against their floors; writes bench/results/ (table + plot)."""
    from bench import run as bench_run

    try:
        figures = bench_run.parse_only(only)
    except ValueError as error:
        raise _fail(str(error)) from None
    bench_run.main(quick=quick, full=full, only=figures, cluster=bench_run.cluster_on(int(port)) if port else None)


# --- GitOps: the pull request and the merge (issue 10) --------------------------------


@task(help={"base": "Commit the change starts from (a PR's base branch)",
            "head": "Commit of the change (default HEAD)", "json": "Print JSON",
            "since_deployed": "Per stack, from the commit it last deployed (record-deployed), not from --base",
            "github_output": "Also append deploy=/phase_changes=/bases= to $GITHUB_OUTPUT (the workflows' matrices)"})
def ci_plan(c, base="", head="HEAD", json=False, github_output=False, since_deployed=False):
    """Which stacks a diff touches, in promotion order, and which of them change phase."""
    import os

    from dualwrite import ci_plan as planner

    if bool(base) == bool(since_deployed):
        raise _fail("ci-plan needs exactly one of --base REF (a pull request) or --since-deployed (a deploy).")
    result = planner.plan_since_recorded(head, _this_machine()) if since_deployed else planner.plan(base, head)
    print(planner.render(result, as_json=json))
    if github_output:
        with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as out:
            out.write(planner.github_outputs(result))


@task(help={"stack": STACK_HELP, "gate": "Include the promotion gate of the declared phase (default: when it declares phase 1 or later)",
            "base": "The PR's base branch: the gate reads its thresholds there; changes to them head the comment"})
def pr_comment(c, stack="local", gate=None, base=""):
    """Markdown a reviewer approves from: changes, their SQL and locks, the gate (`> comment.md`)."""
    from dualwrite import pr_comment as comment

    rendered = comment.for_stack(stack, _this_machine(), gate=gate, base=base)
    if rendered.truncated:  # the posted comment says the whole of it is in the job log: here it is
        sys.stderr.write(rendered.full)
    sys.stdout.write(rendered.text)


@task(help={"stack": STACK_HELP, "file": "The markdown to post (from `invoke pr-comment`)"})
def post_comment(c, stack, file="comment.md"):
    """Create or update this PR's one comment for a stack (GitHub Actions: GITHUB_TOKEN, GITHUB_EVENT_PATH)."""
    from pathlib import Path

    from dualwrite import github

    if not Path(file).is_file():
        raise _fail(f"post-comment --file {file}: no such file. Write it first with `invoke pr-comment --stack {stack} "
                    f"> {file}`, or name the file with --file; nothing was posted.")
    print(github.upsert_pr_comment(stack, Path(file).read_text(encoding="utf-8")))


@task
def lint(c):
    """What the pull request lints: squawk on sql/, plpgsql_check, actionlint on .github/workflows, ruff and mypy (tests/lint)."""
    c.run(f"{sys.executable} -m pytest -q tests/lint", pty=False)


@task(help={"stack": STACK_HELP})
def policy(c, stack="local"):
    """Preview with the policy pack in policy/: a mandatory violation fails it with its reason."""
    from dualwrite.config import ROOT

    _engine(stack, ["preview", "--policy-pack", str(ROOT / "policy")])


# --- least privilege: the read-only roles a pull request's preview uses (issue 16) -----------


def _password_from_stdin(what: str) -> str:
    import getpass

    password = getpass.getpass(f"{what}: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(password) < 16:
        raise _fail(f"{what}: give a password of at least 16 characters on standard input "
                    "(`printf %s \"$PASSWORD\" | invoke ...`), never as an argument; nothing was changed.")
    return password


@task(help={"stack": STACK_HELP})
def preview_role(c, stack="local"):
    """Create or update the stack's read-only preview role (`<stack>_preview`), password from stdin.

    Store the same password as PREVIEW_DB_PASSWORD in the GitHub environment `preview-<stack>`."""
    from dualwrite import readonly, readonly_roles

    if readonly.active():
        raise _fail(readonly.refusal(stack, "invoke preview-role"))
    password = _password_from_stdin(f"password of {readonly.role(stack)}")
    _, name = _on_database(stack, lambda conn, _: readonly_roles.ensure_preview_role(conn, readonly.role(stack), password))
    print(f"role {name}: LOGIN, no write privilege, default_transaction_read_only = on")


@task(help={"role": "Name of the role (default pulumi_state_reader)", "table": "The backend's state table"})
def state_reader_role(c, role="pulumi_state_reader", table="pulumi_state"):
    """Create the team backend's state reader: a role that can only SELECT the state table.

    Run with PULUMI_BACKEND_URL as the backend's owner; password from standard input. Its URL is
    PULUMI_STATE_READONLY_URL of the plan job and of the preview environments."""
    import os

    from dualwrite import readonly_roles

    url = readonly_roles.team_backend_url(os.environ)  # refused here, before the password is read
    password = _password_from_stdin(f"password of {role}")
    readonly_roles.ensure_state_reader_in_backend(url, role, password, table)
    print(f"role {role}: SELECT on {table} only, default_transaction_read_only = on")


@task(help={"results": "`name=result` pairs of the jobs the summary job needs (success, failure, skipped, cancelled)"})
def ci_summary(c, results):
    """The workflow's one required check: exits non-zero unless every needed job succeeded or was not needed."""
    from dualwrite import ci_summary as summary

    failed = summary.failures(results)
    if failed:
        raise _fail("jobs that did not pass: " + "; ".join(failed))
    print(f"every job passed or was not needed: {results}")
