"""`invoke smoke-test`: the deployment guide's verification steps 1-4, plus the security notes.

It checks the state the stack declares, rollbacks included: its first row says which
rollback is in effect in the database and whether the stack file declares it (if not: how
to get back, and the line that keeps it); the drift rows apply only where the phase syncs.
Which checks run, in which order, is the phase's list (dualwrite/phases.py `smoke_checks`,
ids of CHECKS below): Phase 2 adds its triggers, Phase 3 the refused write, retirement the
archive that no API role can read.

Read-only except step 4, which writes a test row inside a transaction that is always
rolled back (psycopg's force_rollback), so it leaves no row behind even when a check
fails half-way. NOTICEs are captured from the connection itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable

import psycopg
from psycopg import sql


from dualwrite import parsed_sql
from dualwrite.catalog import FORWARD_TRIGGERS, MIGRATION_013, SCHEMA, TRIGGERS, objects_in
from dualwrite.objects import Function
from dualwrite.objects.privileges import API_ROLES, SERVICE_ROLE
from dualwrite.objects.trigger import trigger_states
from dualwrite.config import StackConfig
from dualwrite.dual_write_state import read as read_state

COLUMNS = ["id", "key", "operation", "request_data", "response_data", "status", "created_at", "expires_at"]
INDEXES = [
    "idempotency_log_pkey",
    "idx_idempotency_created",
    "idx_idempotency_expires",
    "idx_idempotency_key",
    "idx_idempotency_status",
]
TRIGGER = "trigger_habit_tracker_dual_write"
TEST_CHILD = "Trigger Test"
TEST_WEEK = "2025-10-14"  # the guide's date
TEST_MONDAY = "2025-10-13"
TEST_PERIOD = "2025년 10월 14일 ~ 2025년 10월 20일"
TEST_HABITS = '[{"name": "Brush teeth", "times": ["green", "", "yellow", "red", "", "", "green"]}]'


@dataclass(frozen=True)
class Check:
    step: str
    name: str
    ok: bool
    detail: str


# Tables and functions of migration 013 that anon or authenticated can use: none, ever.
API_ROLE_ACCESS = """
SELECT c.relname FROM pg_class c, unnest(%(roles)s::text[]) r
WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%(names)s) AND c.relkind = 'r'
  AND has_table_privilege(r, c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE')
UNION
SELECT p.proname FROM pg_proc p, unnest(%(roles)s::text[]) r
WHERE p.pronamespace = 'public'::regnamespace AND p.proname = ANY(%(names)s)
  AND has_function_privilege(r, p.oid, 'EXECUTE')
"""


def api_role_access(conn: psycopg.Connection) -> list[str]:
    """Names of the 013 tables and functions anon or authenticated can use (should be empty)."""
    names = [obj.name for obj in MIGRATION_013]
    return sorted(row[0] for row in conn.execute(API_ROLE_ACCESS, {"roles": list(API_ROLES), "names": names}))


def _one(conn: psycopg.Connection, query: str | sql.SQL | sql.Composed, *params: object) -> Any:
    row = conn.execute(query, params or None).fetchone()
    return None if row is None else row[0]


def step1_columns(conn: psycopg.Connection, _config: StackConfig) -> list[Check]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'idempotency_log' ORDER BY ordinal_position",
        (SCHEMA,),
    ).fetchall()
    names = [r[0] for r in rows]
    return [Check("1", "idempotency_log has the 8 columns", names == COLUMNS, ", ".join(names) or "table missing")]


def step2_indexes(conn: psycopg.Connection, _config: StackConfig) -> list[Check]:
    rows = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'idempotency_log' ORDER BY indexname",
        (SCHEMA,),
    ).fetchall()
    names = [r[0] for r in rows]
    unique_key = _one(
        conn, "SELECT indisunique FROM pg_index WHERE indexrelid = to_regclass(%s)", f"{SCHEMA}.idx_idempotency_key"
    )
    return [
        Check("2", "5 indexes (pkey + 4 custom)", names == INDEXES, ", ".join(names) or "none"),
        Check("2", "idx_idempotency_key is the unique index on key", unique_key is True, f"unique={unique_key}"),
    ]


def step3_trigger(conn: psycopg.Connection, config: StackConfig) -> list[Check]:
    """The guide's trigger, and each statement trigger of Phase 1's sync beside it (FORWARD_TRIGGERS)."""
    checks = []
    for trigger in FORWARD_TRIGGERS:
        row = conn.execute(
            "SELECT tgrelid::regclass::text, tgenabled FROM pg_trigger WHERE tgname = %s", (trigger.name,)
        ).fetchone()
        name = "trigger" if trigger.name == TRIGGER else trigger.name
        if trigger.name not in config.stage.objects:
            checks.append(Check("3", f"{name} absent ({config.stage.label}: forward sync off)", row is None, str(row)))
            continue
        if not config.trigger_present:
            checks.append(Check("3", f"{name} absent (dual_write: {config.dual_write})", row is None, str(row)))
            continue
        expected = "O" if config.trigger_enabled else "D"
        ok = row is not None and row[0] == "habit_tracker" and row[1] == expected
        checks.append(Check("3", f"{name} on habit_tracker, enabled = {expected}", ok,
                            "missing" if row is None else f"{row[0]}, {row[1]}"))
    return checks


def _new_schema_counts(conn: psycopg.Connection, user_id: str) -> tuple[int, int]:
    children = _one(conn, "SELECT count(*) FROM public.children WHERE user_id = %s AND name = %s", user_id, TEST_CHILD)
    weeks = _one(
        conn,
        "SELECT count(*) FROM public.weeks WHERE child_id IN "
        "(SELECT id FROM public.children WHERE user_id = %s AND name = %s)",
        user_id,
        TEST_CHILD,
    )
    return int(children), int(weeks)  # type: ignore[arg-type]


def _insert_test_row(conn: psycopg.Connection, week_start_date: str, user_id: str) -> object:
    """The guide's Step 4 row (child 'Trigger Test'), for a user no real row belongs to."""
    return _one(
        conn,
        "INSERT INTO public.habit_tracker (child_name, week_start_date, week_period, habits, user_id) "
        "VALUES (%s, %s, %s, %s::jsonb, %s) RETURNING id",
        TEST_CHILD, week_start_date, TEST_PERIOD, TEST_HABITS, user_id,
    )


def _phase1_sync(conn: psycopg.Connection, user_id: str, guide_row: object, phase: str) -> list[Check]:
    """Phases that sync forward: the guide's test row, then a well-formed one, inside the same rolled-back
    transaction."""
    # The guide calls 2025-10-14 a Monday; it is a Tuesday, so Phase 1 must record the row as
    # malformed (the app's write still succeeds) instead of inventing a week.
    errors = _one(conn, "SELECT count(*) FROM public.dual_write_errors WHERE tracker_id = %s", guide_row)
    checks = [Check("4", "guide's row (not a Monday) goes to dual_write_errors", errors == 1, f"error rows={errors}")]
    row_id = _insert_test_row(conn, TEST_MONDAY, user_id)
    children, weeks = _new_schema_counts(conn, user_id)
    records = _one(
        conn,
        "SELECT count(*) FROM public.habit_records r JOIN public.habits h ON h.id = r.habit_id "
        "JOIN public.weeks w ON w.id = h.week_id WHERE w.legacy_id = %s",
        row_id,
    )
    checks.append(Check("4", f"phase {phase} syncs child, week and 4 records", (children, weeks, records) == (1, 1, 4),
                        f"children={children}, weeks={weeks}, records={records}"))
    conn.execute("DELETE FROM public.habit_tracker WHERE id = %s", (row_id,))
    children, weeks = _new_schema_counts(conn, user_id)
    checks.append(Check("4", "phase 1 DELETE removes the week, keeps the child", (children, weeks) == (1, 0),
                        f"children={children}, weeks={weeks}"))
    return checks


def step4_test_trigger(conn: psycopg.Connection, config: StackConfig) -> list[Check]:
    if not config.trigger_enabled:
        return [Check("4", "test trigger", True, f"skipped: trigger is {config.dual_write}")]
    # Phase 0 with `phase0_log: server` raises the two lines as LOG (for the server log); this
    # session asks for them too (client_min_messages = log), and checks they came as LOG.
    server_log = config.phase == 0 and config.phase0_log == "server"
    level = "LOG" if server_log else "NOTICE"
    notices: list[str] = []
    handler = lambda diag: notices.append(diag.message_primary or "") if (  # noqa: E731
        diag.severity_nonlocalized == level) else None
    conn.add_notice_handler(handler)
    user_id = str(uuid.uuid4())  # a user no real row belongs to
    checks: list[Check] = []
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(sql.SQL("SET LOCAL client_min_messages = {}").format(sql.SQL(level.lower())))
            conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(config.statement_timeout)))
            row_id = _insert_test_row(conn, TEST_WEEK, user_id)
            fired = f"Dual-write trigger fired: table=habit_tracker, operation=INSERT, id={row_id}"
            details = f"Trigger details: child_name={TEST_CHILD}, week_start_date={TEST_WEEK}"
            checks.append(Check("4", f"INSERT {level}: trigger fired", fired in notices, fired))
            checks.append(Check("4", f"INSERT {level}: trigger details", details in notices, details))
            children, weeks = _new_schema_counts(conn, user_id)
            if not config.stage.forward_sync:
                checks.append(
                    Check("4", "phase 0 writes nothing to the new schema", (children, weeks) == (0, 0),
                          f"children={children}, weeks={weeks}")
                )
            else:
                checks.extend(_phase1_sync(conn, user_id, row_id, config.stage.key))
    except psycopg.Error as error:
        checks.append(Check("4", "test trigger ran", False, f"{type(error).__name__}: {error}".strip()))
    finally:
        conn.remove_notice_handler(handler)
    left = _one(conn, "SELECT count(*) FROM public.habit_tracker WHERE user_id = %s", user_id)
    checks.append(Check("4", "test row rolled back", left == 0, f"rows left={left}"))
    return checks


def security(conn: psycopg.Connection, config: StackConfig) -> list[Check]:
    checks: list[Check] = []
    rls = _one(conn, "SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass(%s)", f"{SCHEMA}.idempotency_log")
    checks.append(Check("security", "RLS enabled on idempotency_log", rls is True, f"relrowsecurity={rls}"))
    table = f"{SCHEMA}.idempotency_log"
    for role in API_ROLES:
        any_privilege = _one(
            conn,
            "SELECT bool_or(has_table_privilege(%s, %s, p)) FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE']) p",
            role,
            table,
        )
        checks.append(Check("security", f"{role} has no access to idempotency_log", any_privilege is False,
                            f"any privilege={any_privilege}"))
    service = _one(
        conn,
        "SELECT bool_and(has_table_privilege(%s, %s, p)) FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE']) p",
        SERVICE_ROLE,
        table,
    )
    checks.append(Check("security", f"{SERVICE_ROLE} can use idempotency_log", service is True, f"all={service}"))
    cleanup = f"{SCHEMA}.cleanup_idempotency_log()"
    for role in API_ROLES:
        allowed = _one(conn, "SELECT has_function_privilege(%s, %s::regprocedure, 'EXECUTE')", role, cleanup)
        checks.append(Check("security", f"{role} cannot EXECUTE cleanup_idempotency_log()", allowed is False,
                            f"execute={allowed}"))
    # PUBLIC is no role has_function_privilege() takes: read the ACL (grantee 0 is PUBLIC).
    public = _one(
        conn,
        "SELECT EXISTS (SELECT 1 FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a "
        "WHERE p.oid = %s::regprocedure AND a.grantee = 0 AND a.privilege_type = 'EXECUTE')",
        cleanup,
    )
    checks.append(Check("security", "PUBLIC cannot EXECUTE cleanup_idempotency_log()", public is False,
                        f"execute={public}"))
    for obj in (o for o in objects_in(config.phase) if o.kind is Function):
        row = conn.execute(
            "SELECT prosecdef, coalesce(array_to_string(proconfig, ','), ''), "
            "       has_function_privilege('anon', oid, 'EXECUTE') OR has_function_privilege('authenticated', oid,"
            "       'EXECUTE') FROM pg_proc WHERE oid = to_regprocedure(%s)",
            (f"{SCHEMA}.{obj.name}{obj.signature}",),
        ).fetchone()
        if row is None:
            checks.append(Check("security", f"{obj.name}: present", False, "missing"))
            continue
        definer, settings, api_execute = row
        # Supabase lints 0011 (mutable search_path) and 0028/0029 (API roles can run a definer function).
        # Every function pins as its file declares. One file leaves it out, an invoker's (Phase 0's row function,
        # once per written row: its SQL file says why); a definer must pin whatever its file says (the policy
        # pack's rule), so one made SECURITY DEFINER by hand fails here.
        declared = parsed_sql.function_attributes(obj.source(config.phase, config.phase0_log), obj.file)
        if definer or any(f.search_path is not None for f in declared):
            checks.append(Check("security", f"{obj.name}: search_path pinned", "search_path=" in settings,
                                settings or "no settings"))
        if definer:
            checks.append(Check("security", f"{obj.name}: SECURITY DEFINER, and anon/authenticated cannot run it",
                                api_execute is False, f"API roles execute={api_execute}"))
    return checks


def dual_write_state(conn: psycopg.Connection, config: StackConfig) -> list[Check]:
    """Which rollback, if any, is in effect, and whether it is the one the stack declares."""
    state = read_state(conn, config)
    return [Check("state", f"dual write as declared (dual_write: {config.dual_write})", state.matches,
                  state.describe())]


def state_notes(checks: list[Check]) -> list[str]:
    """The state row's paragraph when a rollback is in effect or the database differs from the stack."""
    return [c.detail for c in checks if c.step == "state" and (not c.ok or "rollback" in c.detail)]


def drift_check(conn: psycopg.Connection, config: StackConfig) -> list[Check]:
    """Drift within the threshold where the phase syncs (forward, reverse, or both: dualwrite/phases.py);
    where it does not, why drift does not apply. Above it, what the drift is made of and the command
    that fixes each part."""
    from dualwrite.drift import drift_report, drift_split, reverse_drift_report

    step = f"phase {config.stage.key}"
    name = f"drift at most {config.drift_threshold}%"
    reason = read_state(conn, config).drift_not_applicable()
    if reason is not None:
        return [Check(step, name, True, f"skipped: {reason}")]
    checks = []
    if config.stage.drift in ("forward", "both ways"):
        checks.append(_forward_drift(conn, config, step, name, drift_report, drift_split))
    if config.stage.drift in ("reverse", "both ways"):
        reverse = reverse_drift_report(conn)
        checks.append(Check(step, f"reverse drift (new -> old) at most {config.drift_threshold}%",
                            reverse.within(config.drift_threshold),
                            f"drift={reverse.drift_pct}% ({reverse.missing} missing, {reverse.mismatched} mismatched, "
                            f"{reverse.orphaned} orphaned of {reverse.source_rows})"))
    return checks


def _forward_drift(conn: psycopg.Connection, config: StackConfig, step: str, name: str,
                   drift_report: Callable[..., Any], drift_split: Callable[..., Any]) -> Check:
    report = drift_report(conn)
    if report.within(config.drift_threshold):
        return Check(step, name, True, f"drift={report.drift_pct}%")
    from dualwrite import gate_evidence

    if not gate_evidence.sees_every_row(conn):  # a read-only role: the split reads rows RLS may hide
        return Check(step, name, False, f"drift={report.drift_pct}% (what it is made of: `invoke drift "
                                        f"--stack {config.stack}` with the deploy role)")
    return Check(step, name, False, f"drift={report.drift_pct}%: {drift_split(conn).advice(config.stack)}")


def _sees_every_cron_job(conn: psycopg.Connection) -> bool:
    """pg_cron's cron.job has row-level security (a role sees its own jobs): the deploy role bypasses it
    (BYPASSRLS on Supabase), a read-only preview role does not, and cannot be given it (PostgreSQL 15:
    only a superuser grants BYPASSRLS)."""
    from dualwrite import gate_evidence

    return gate_evidence.sees_every_row(conn)


CRON_UNREADABLE = ("not readable by {role}: cron.job shows a role only its own jobs (row-level security), and a "
                   "read-only role cannot bypass it; the deploy's gate re-check and smoke test read it")


def cleanup_job_check(conn: psycopg.Connection, config: StackConfig) -> list[Check]:
    """The pg_cron cleanup job scheduled where the phase has it (Phase 1 on), absent in Phase 0."""
    from dualwrite.monitor import cleanup_job

    step = f"phase {config.stage.key}"
    wanted = config.stage.cleanup_job
    name = "pg_cron job cleanup_idempotency_log scheduled" if wanted else "no cleanup job scheduled"
    job = cleanup_job(conn)
    if job is None and not _sees_every_cron_job(conn):
        return [Check(step, name, True, CRON_UNREADABLE.format(role=_one(conn, "SELECT current_user")))]
    if wanted:
        return [Check(step, name, job is not None and job[0] == config.cleanup_schedule and job[1] is True,
                      "missing" if job is None else f"schedule={job[0]}, active={job[1]}")]
    return [Check(step, name, job is None, "none" if job is None else f"{job}")]


def phase_triggers(conn: psycopg.Connection, config: StackConfig) -> list[Check]:
    """Every trigger the phase adds to the guide's (the reverse sync's, old clients' writes, read-only)."""
    wanted = [obj for obj in objects_in(config.phase) if obj in TRIGGERS and obj not in FORWARD_TRIGGERS]
    found = trigger_states(conn, [obj.name for obj in TRIGGERS])
    wrong = [f"{obj.name} on {obj.on_table}: {'missing' if obj.name not in found else 'disabled'}"
             for obj in wanted if found.get(obj.name) not in ("O", "A")]
    return [Check(f"phase {config.stage.key}", f"{len(wanted)} triggers of {config.stage.label} present and enabled",
                  not wrong, "; ".join(wrong) or ", ".join(obj.name for obj in wanted))]


def no_triggers(conn: psycopg.Connection, config: StackConfig) -> list[Check]:
    """Retired: every trigger of migration 013 is gone, from the archive and the new tables alike."""
    left = sorted(trigger_states(conn, [obj.name for obj in TRIGGERS]))
    return [Check(f"phase {config.stage.key}", "no trigger of migration 013 left", not left,
                  ", ".join(left) or "none")]


def archive(conn: psycopg.Connection, config: StackConfig) -> list[Check]:
    """Retired: habit_tracker kept as habit_tracker_archive, with its rows, and no API role can read it."""
    step = f"phase {config.stage.key}"
    archived = _one(conn, "SELECT to_regclass('public.habit_tracker_archive') IS NOT NULL")
    old = _one(conn, "SELECT to_regclass('public.habit_tracker') IS NOT NULL")
    checks = [Check(step, "habit_tracker kept as habit_tracker_archive", archived is True and old is False,
                    f"habit_tracker_archive={archived}, habit_tracker={old}")]
    if archived:
        readers = [role for role in (*API_ROLES, SERVICE_ROLE) if _one(
            conn, "SELECT bool_or(has_table_privilege(%s, 'public.habit_tracker_archive', p)) "
                  "FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE']) p", role)]
        checks.append(Check(step, "no API role can use habit_tracker_archive", not readers,
                            ", ".join(readers) or "none of " + ", ".join((*API_ROLES, SERVICE_ROLE))))
    return checks


def read_only(conn: psycopg.Connection, config: StackConfig) -> list[Check]:
    """Phase 3: an old client's write to habit_tracker is refused (42501), in a transaction always rolled back."""
    step = f"phase {config.stage.key}"
    name = "habit_tracker refuses an old client's write (42501)"
    user_id = str(uuid.uuid4())
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(config.statement_timeout)))
            _insert_test_row(conn, TEST_MONDAY, user_id)
        check = Check(step, name, False, "the INSERT went through (rolled back)")
    except psycopg.Error as error:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        check = Check(step, name, error.sqlstate == "42501",
                      f"{error.sqlstate}: {(error.diag.message_primary or '').strip()}")
    left = _one(conn, "SELECT count(*) FROM public.habit_tracker WHERE user_id = %s", user_id)
    return [check, Check(step, "test row rolled back", left == 0, f"rows left={left}")]


# Every check a phase may list (dualwrite/phases.py `smoke_checks`), by id.
CHECKS: dict[str, Callable[[psycopg.Connection, StackConfig], list[Check]]] = {
    "state": dual_write_state,
    "columns": step1_columns,
    "indexes": step2_indexes,
    "guide_trigger": step3_trigger,
    "phase_triggers": phase_triggers,
    "test_row": step4_test_trigger,
    "read_only": read_only,
    "security": security,
    "no_triggers": no_triggers,
    "archive": archive,
    "cleanup_job": cleanup_job_check,
    "drift": drift_check,
}
# The checks that write (a test row, always rolled back): not run by a read-only role.
WRITES = ("test_row", "read_only")


READ_ONLY_SKIP = ("not run: it writes a test row (rolled back), which a read-only role cannot; the deploy job's "
                  "gate re-check and smoke test run it")


def run_smoke_test(conn: psycopg.Connection, config: StackConfig, *, writes: bool = True) -> list[Check]:
    """Every check of the stack's phase, in its order; a failing step does not stop the others.
    `writes` False (a read-only role, e.g. a pull request's gate): the checks that write are not run."""
    if not config.migration_present:
        present = _one(conn, "SELECT to_regclass('public.idempotency_log') IS NOT NULL")
        return [Check("removed", "migration 013 fully removed (dual_write: removed)", present is False, f"table={present}")]
    checks: list[Check] = []
    for check_id in config.stage.smoke_checks:
        step = CHECKS[check_id]
        if check_id in WRITES and not writes:
            checks.append(Check("4", "test trigger", True, READ_ONLY_SKIP))
            continue
        try:
            checks.extend(step(conn, config))
        except psycopg.Error as error:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            checks.append(Check("error", getattr(step, "__name__", check_id), False,
                                f"{type(error).__name__}: {error}".strip()))
    return checks
