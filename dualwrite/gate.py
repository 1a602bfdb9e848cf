"""The deployment guide's Phase 1 Activation Checklist, one row each, with the evidence it read.

A stack S enters Phase 1 only when every row passes (dualwrite/promotion.py runs them):

| checklist item                 | what the row reads                                                      |
| ------------------------------ | ----------------------------------------------------------------------- |
| Edge Function deployed, tested | S's database: successful `idempotency_log` rows of the last 24 h (the    |
|                                | function writes them); or S's `edge_function_waiver`, printed            |
| 24-hour stability test passed  | the previous stack's `pulumi stack history --json`: when its current run |
|                                | of Phase 1 updates began, at least S's `soak_hours` (default 24) ago     |
| Drift < 0.1%                   | the previous stack's `dual_write_drift()`, under its `drift_threshold`   |
| Monitor logs for errors        | the previous stack's `dual_write_errors` of the last 24 h, at most S's  |
|                                | `max_dual_write_errors` (default 0)                                      |
| Performance baseline           | the previous stack's `pg_stat_user_functions` mean time of              |
|                                | `sync_old_to_new()` (track_functions = pl), else `pg_stat_statements`'s |
|                                | mean time of writes to habit_tracker; at most S's `perf_max_mean_ms`    |
| Team approval required         | `.github/CODEOWNERS`: owners named for S's stack file, whose review     |
|                                | branch protection then requires (README); the row checks that the owners |
|                                | are named, not the review itself: GitHub holds the merge until they approve |

In a pull request's read-only job (dualwrite/readonly.py) the history is read from the team
backend's rows through the SELECT-only state URL (dualwrite/state_history.py), the stack before
as its own preview role, and the rows RLS hides from that role (errors, drift, the Edge
Function's) through dual_write_gate_evidence() (dualwrite/gate_evidence.py).

Why the stack history for the soak: the engine writes it at every update, with the config
the update ran (phase, dual_write) and its end time, in the team backend every runner and
laptop shares; it needs no object of our own in the app's database and the app cannot
write it. The smoke-test row beside it proves the Phase 1 trigger body is still what runs.
"""

from __future__ import annotations

import fnmatch
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Sequence

import psycopg
from psycopg import sql

from dualwrite import drift as dr
from dualwrite import gate_evidence
from dualwrite import parsed_sql
from dualwrite.catalog import SCHEMA
from dualwrite.config import PROJECT, ROOT, ConfigError, StackConfig
from dualwrite.smoke import Check

WINDOW = timedelta(hours=24)
STEP = "checklist"
# The rows read from the previous stack's database, by name (promotion.py fails them by these
# names when that database cannot be reached or read).
DRIFT_ROW = "Drift detection shows at most {threshold:g}% drift"
PERFORMANCE_ROW = "Performance baseline acceptable"
ERRORS_ROW = "Logs monitored: no dual-write errors"
# The gates of Phase 3 and retirement (dualwrite/phases.py): both copies agree, exactly.
DRIFT_ZERO_ROW = "Drift old -> new is 0"
REVERSE_DRIFT_ZERO_ROW = "Drift new -> old is 0"
CODEOWNERS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")


def _last_day(conn: psycopg.Connection, table: str, time_column: str, where: sql.Composable,
              from_evidence: Callable[[Any], tuple[int, datetime | None]]) -> tuple[int, str, str]:
    """How many rows of `table` (matching `where`) the last 24 h hold, the text naming the latest,
    and the text naming where the count came from. A role that sees every row counts them; one that RLS would show
    no row (a gate passing by not seeing) reads them from dual_write_gate_evidence()."""
    if gate_evidence.sees_every_row(conn):
        count, last = conn.execute(sql.SQL("SELECT count(*), max({column}) FROM {table} WHERE {where} AND {column} > "
                                           "now() - {window}").format(
            column=sql.Identifier(time_column), table=sql.Identifier(SCHEMA, table), where=where,
            window=sql.Literal(WINDOW))).fetchone()
        via = ""
    else:
        count, last = from_evidence(gate_evidence.read(conn))
        via = f" ({gate_evidence.through()})"
    return count, (f", latest {last:%Y-%m-%d %H:%M:%S %Z}" if last else ""), via


def _row(name: str, ok: bool, evidence: str) -> Check:
    return Check(STEP, name, ok, evidence)


# --- Edge Function deployed and tested (target stack) -------------------------------


def edge_function(conn: psycopg.Connection | None, config: StackConfig, reach_error: str | None = None) -> Check:
    name = "Edge Function deployed and tested"
    if config.edge_function_waiver:
        return _row(name, True, f"WAIVED by {config.stack_file} ({PROJECT}:edge_function_waiver): "
                                f"{config.edge_function_waiver}")
    if conn is None:
        return _row(name, False, f"could not read '{config.stack}': {reach_error}")
    if conn.execute(sql.SQL("SELECT to_regclass({})").format(sql.Literal(f"{SCHEMA}.idempotency_log"))).fetchone()[0] is None:
        return _row(name, False, f"'{config.stack}' has no idempotency_log: deploy Phase 0 there first")
    count, latest, via = _last_day(conn, "idempotency_log", "created_at", sql.SQL("status = 'success'"),
                                   lambda found: (found.edge_success_24h, found.edge_latest))
    evidence = f"idempotency_log on '{config.stack}': {count} successful request(s) in the last 24 h{latest}{via}"
    return _row(name, count > 0, evidence if count else evidence + " (deploy and call the Edge Function, or set "
                f"{PROJECT}:edge_function_waiver with a reason)")


# --- 24-hour stability (previous stack's history) ------------------------------------


def _when(value: Any) -> datetime:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _setting(entry: dict[str, Any], key: str, default: str) -> str:
    value = (entry.get("config") or {}).get(f"{PROJECT}:{key}")
    if isinstance(value, dict):
        value = value.get("value")
    return default if value is None else str(value).strip()


def phase_since(history: Sequence[dict[str, Any]], phase: str = "1") -> tuple[datetime | None, int | None]:
    """End time (and version) of the first update of the stack's current, unbroken run of
    successful updates in `phase` with dual_write enabled; (None, None) when it is not in one.
    Refreshes and previews do not deploy and neither start nor break a run."""
    deploys = [h for h in history if h.get("kind") in ("update", "destroy") and h.get("result") == "succeeded"]
    deploys.sort(key=lambda h: (_when(h.get("endTime") or h.get("startTime")), h.get("version", 0)), reverse=True)
    since: tuple[datetime | None, int | None] = (None, None)
    for entry in deploys:
        running = (entry["kind"] == "update" and _setting(entry, "phase", "") == phase
                   and _setting(entry, "dual_write", "enabled") == "enabled")
        if not running:
            break
        since = (_when(entry.get("endTime") or entry.get("startTime")), entry.get("version"))
    return since


def phase1_since(history: Sequence[dict[str, Any]]) -> tuple[datetime | None, int | None]:
    return phase_since(history, "1")


def soak(previous: str, history: Sequence[dict[str, Any]] | None, config: StackConfig, now: datetime,
         history_error: str | None = None, phase: str = "1", hours_wanted: float | None = None,
         name: str | None = None) -> Check:
    """`phase` "0": the first shared stack soaks its own Phase 0 (the trigger logging every write); a
    later phase: the stack read soaks that phase (dualwrite/phases.py `Gate.reads_phase`)."""
    hours_wanted = config.soak_hours if hours_wanted is None else hours_wanted
    name = name or (f"{hours_wanted:g}-hour stability test passed"
                    + {"1": "", "0": " (its own Phase 0)"}.get(phase, f" (phase {phase})"))
    if history is None:
        return _row(name, False, f"could not read `pulumi stack history` of '{previous}': {history_error}")
    since, version = phase_since(history, phase)
    if since is None:
        return _row(name, False, f"`pulumi stack history` of '{previous}' ({len(history)} entries): no successful "
                                 + ("Phase 1 update since its last Phase 0 (or rollback)" if phase == "1" else
                                    f"Phase {phase} update with dual_write enabled since its last change of phase"))
    hours = (now - since).total_seconds() / 3600
    if hours_wanted != config.soak_hours:  # a row of its own (the quiet period's): its own key
        return _row(name, hours >= hours_wanted,
                    f"`pulumi stack history` of '{previous}': Phase {phase} since update {version} at "
                    f"{since:%Y-%m-%d %H:%M:%S} UTC, {hours:.2f} h of the {hours_wanted:g} h asked")
    return _row(name, hours >= config.soak_hours,
                f"`pulumi stack history` of '{previous}': Phase {phase} since update {version} at "
                f"{since:%Y-%m-%d %H:%M:%S} UTC, {hours:.2f} h of the {config.soak_hours:g} h "
                f"{config.stack_file} asks ({PROJECT}:soak_hours)")


# --- previous stack's database ------------------------------------------------------


def drift(conn: psycopg.Connection, before: StackConfig) -> Check:
    report = dr.drift_report(conn)
    return _row(DRIFT_ROW.format(threshold=before.drift_threshold), report.within(before.drift_threshold),
                f"dual_write_drift() on '{before.stack}': {report.drift_pct}% ({report.drifted} of "
                f"{report.source_rows} rows drifted: {report.missing} missing, {report.mismatched} mismatched, "
                f"{report.orphaned} orphaned), threshold {before.drift_threshold:g}% ({before.stack_file})")


def drift_zero(conn: psycopg.Connection, stack: str) -> Check:
    """Forward drift at exactly 0 (the gates of Phase 3 and retirement: both copies agree)."""
    report = dr.drift_report(conn)
    return _row(DRIFT_ZERO_ROW, report.drifted == 0,
                f"dual_write_drift() on '{stack}': {report.drifted} of {report.source_rows} rows drifted "
                f"({report.missing} missing, {report.mismatched} mismatched, {report.orphaned} orphaned)")


def reverse_drift_zero(conn: psycopg.Connection, stack: str) -> Check:
    """Reverse drift (new -> old) at exactly 0: habit_tracker agrees with every week."""
    report = dr.reverse_drift_report(conn)
    return _row(REVERSE_DRIFT_ZERO_ROW, report.drifted == 0,
                f"dual_write_reverse_drift() on '{stack}': {report.drifted} of {report.source_rows} weeks drifted "
                f"({report.missing} missing, {report.mismatched} mismatched, {report.orphaned} orphaned)")


QUIET_ROW = "Old clients stopped writing habit_tracker"


def old_client_writes(conn: psycopg.Connection, config: StackConfig, now: datetime) -> Check:
    """The Phase 3 gate's evidence, on the stack itself (its own old clients): writes to habit_tracker
    the reverse sync did not make (old_client_writes), none over `quiet_period_hours`."""
    hours = config.quiet_period_hours
    # One row per day and backend (sql/013/old_client_writes.sql): statements counted, the last one's time.
    count, latest, roles = conn.execute(sql.SQL(
        "SELECT coalesce(sum(statements), 0), max(last_at), string_agg(DISTINCT login_role, ', ') FROM {} "
        "WHERE last_at > {}::timestamptz - {}").format(
            sql.Identifier(SCHEMA, "old_client_writes"), sql.Literal(now), sql.Literal(timedelta(hours=hours)))
    ).fetchone()
    last = f", the latest at {latest:%Y-%m-%d %H:%M:%S %Z} (logged in as {roles})" if latest else ""
    return _row(QUIET_ROW, count == 0,
                f"old_client_writes on '{config.stack}': {count} statement(s) writing habit_tracker not made by the "
                f"reverse sync in the last {hours:g} h{last} ({config.stack_file}, {PROJECT}:quiet_period_hours)")


def errors(conn: psycopg.Connection, before: StackConfig, config: StackConfig) -> Check:
    count, latest, via = _last_day(conn, "dual_write_errors", "occurred_at", sql.SQL("true"),
                                   lambda found: (found.errors_24h, found.errors_latest))
    return _row(ERRORS_ROW, count <= config.max_dual_write_errors,
                f"dual_write_errors on '{before.stack}': {count} row(s) in the last 24 h{latest}; "
                f"{config.stack_file} allows {config.max_dual_write_errors} ({PROJECT}:max_dual_write_errors){via}")


def performance(conn: psycopg.Connection, before: StackConfig, config: StackConfig) -> Check:
    name = PERFORMANCE_ROW
    bound = f"bound {config.perf_max_mean_ms:g} ms ({config.stack_file}, {PROJECT}:perf_max_mean_ms)"
    row = conn.execute(
        sql.SQL("SELECT calls, total_time, self_time FROM pg_stat_user_functions "
                "WHERE schemaname = {} AND funcname = 'sync_old_to_new'").format(sql.Literal(SCHEMA))
    ).fetchone()
    if row is not None and row[0] > 0:
        mean = Decimal(str(row[1])) / row[0]
        return _row(name, mean <= Decimal(str(config.perf_max_mean_ms)),
                    f"pg_stat_user_functions on '{before.stack}': sync_old_to_new() mean {mean:.3f} ms over "
                    f"{row[0]} call(s) since the statistics were last reset; {bound}")
    has_statements = conn.execute("SELECT to_regclass('pg_stat_statements') IS NOT NULL").fetchone()[0]
    if has_statements:
        # Which statements write habit_tracker: PostgreSQL's parser reads each one (dualwrite/parsed_sql.py).
        writes = [(calls, total) for query, calls, total in conn.execute(
            "SELECT query, calls, total_exec_time FROM pg_stat_statements WHERE calls > 0").fetchall()
            if parsed_sql.writes_to(query, SCHEMA, "habit_tracker")]
        found = (sum(c for c, _ in writes), sum(Decimal(str(t)) for _, t in writes))
        if found[0]:
            mean = found[1] / found[0]
            return _row(name, mean <= Decimal(str(config.perf_max_mean_ms)),
                        f"pg_stat_statements on '{before.stack}': writes to habit_tracker mean {mean:.3f} ms over "
                        f"{found[0]} call(s); {bound}")
    tracked = conn.execute("SELECT current_setting('track_functions')").fetchone()[0]
    return _row(name, False, f"nothing measured on '{before.stack}': pg_stat_user_functions has no calls of "
                             f"sync_old_to_new() (track_functions = {tracked}; set it to 'pl') and "
                             "pg_stat_statements has no writes to habit_tracker")


# --- team approval (the repository) --------------------------------------------------


def _codeowners_match(pattern: str, path: str) -> bool:
    anchored = pattern.startswith("/")
    pattern = pattern.strip("/")
    if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern + "/*"):
        return True
    return not anchored and "/" not in pattern and fnmatch.fnmatchcase(Path(path).name, pattern)


def approval(config: StackConfig, root: Path = ROOT) -> Check:
    name = "Team approval required: CODEOWNERS names the stack file's reviewers"
    path = config.stack_file
    for candidate in CODEOWNERS:
        file = root / candidate
        if not file.is_file():
            continue
        owners: list[str] = []
        line_no = 0
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            parts = line.split("#", 1)[0].split()
            if parts and _codeowners_match(parts[0], path):
                owners, line_no = parts[1:], number  # the last matching line wins, as on GitHub
        if owners:
            return _row(name, True, f"{candidate} line {line_no}: {path} needs a review by {' '.join(owners)}; "
                                    "branch protection on main requires code-owner review (README), so GitHub "
                                    "holds the merge until one of them approves. This row reads the ownership "
                                    "line; it does not see the review")
        return _row(name, False, f"{candidate} names no owner for {path}: add a line such as `/{path} @org/team`")
    return _row(name, False, f"no CODEOWNERS file ({', '.join(CODEOWNERS)}): nobody is required to approve {path}")


# --- the stack history ---------------------------------------------------------------


def read_history(stack: str, run: Callable[..., Any] | None = None) -> list[dict[str, Any]]:
    """`pulumi stack history --json` of a stack (the engine's own record, in the shared backend).

    In a read-only job (a pull request's: no passphrase, no read-write backend URL) the same
    entries are read from the backend's history rows through the SELECT-only state URL
    (dualwrite/state_history.py)."""
    import os

    from dualwrite import readonly, state_history

    if run is None and readonly.previous_as_preview():
        # A read-only job, or a deploy job reading the stack before its own (whose passphrase it
        # does not hold): the same entries, from the backend's rows.
        url = os.environ.get(readonly.STATE_URL)
        if not url:
            raise ConfigError(f"a read-only job needs {readonly.STATE_URL} (the team backend as a role that can "
                              f"only SELECT its state) to read the update history of '{stack}'")
        return state_history.read(url, stack)
    if run is None:
        from devenv import engine

        run = engine.run
    result = run(stack, ["stack", "history", "--json"], capture=True)
    return json.loads(result.stdout or "[]")
