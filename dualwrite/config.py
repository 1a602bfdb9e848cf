"""Stack configuration, parsed once into a typed object with every rule checked.

The same parser serves the Pulumi program (values from `pulumi.Config`) and the
invoke tasks (values read straight from `Pulumi.<stack>.yaml`), so a bad value is
reported the same way everywhere, before anything connects to a database.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from dualwrite import phases
from dualwrite.db import LOCK_TIMEOUT, STATEMENT_TIMEOUT
from dualwrite.drift import DEFAULT_THRESHOLD_PCT

PROJECT = "habit-tracker-db"
ROOT = Path(__file__).resolve().parent.parent

# Each phase's place on the path -> its title (the phases themselves: dualwrite/phases.py).
PHASES = {phase.order: phase.title for phase in phases.PATH}
# Every key of the project's namespace a stack file may set (db_password only as a secret).
KEYS = (
    "phase", "dual_write", "db_host", "db_port", "db_name", "db_user", "db_sslmode", "db_password",
    "lock_timeout", "statement_timeout", "drift_threshold", "cleanup_schedule", "backfill_batch_size",
    "promotes_from", "phase0_log",
    # The Phase 1 gate (dualwrite/gate.py): what this stack asks of the stack before it.
    "soak_hours", "max_dual_write_errors", "perf_max_mean_ms", "edge_function_waiver",
    # The trace of `invoke phase 1 --force --reason`: the deploy's re-check honors it (dualwrite/gate_inputs.py).
    "gate_override",
    # The Phase 3 gate: how long old clients must have written nothing to habit_tracker.
    "quiet_period_hours",
)
# The deployment guide's three rollback options, declared: `enabled` is normal operation,
# `disabled` = option 1 (trigger disabled), `absent` = option 2 (trigger dropped),
# `removed` = option 3 (every object of migration 013 dropped).
PHASE0_LOGS = ("notice", "server")
DUAL_WRITE_STATES = ("enabled", "disabled", "absent", "removed")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

TRANSACTION_POOLER_PORT = 6543
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_DURATION = re.compile(r"^[1-9][0-9]*(ms|s|min)$")
_CRON_FIELD = r"[0-9*,/\-]+"
_CRON = re.compile(rf"^({_CRON_FIELD}\s+){{4}}{_CRON_FIELD}$|^[1-5]?[0-9] seconds$")
_STACK = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


class ConfigError(ValueError):
    """A stack configuration value that is missing or not allowed."""


@dataclass(frozen=True)
class StackConfig:
    stack: str
    phase: int  # the phase's place on the path (dualwrite/phases.py); `stage` is its entry
    dual_write: str
    db_host: str
    db_port: int
    db_name: str
    db_user: str
    db_sslmode: str
    has_password: bool
    lock_timeout: str
    statement_timeout: str
    drift_threshold: float
    cleanup_schedule: str
    backfill_batch_size: int
    promotes_from: str | None
    # Where Phase 0's two messages go: `notice` (the guide's NOTICEs, to the client) or
    # `server` (RAISE LOG: the server log, Supabase Dashboard > Logs).
    phase0_log: str = "notice"
    # The Phase 1 gate, read from the stack entering Phase 1 (dualwrite/gate.py).
    soak_hours: float = 24.0
    max_dual_write_errors: int = 0
    perf_max_mean_ms: float = 5.0
    edge_function_waiver: str | None = None
    gate_override: str | None = None
    # The Phase 3 gate: hours without a write of an old client to habit_tracker (old_client_writes).
    quiet_period_hours: float = 168.0

    @property
    def stage(self) -> phases.Phase:
        """The declared phase's entry: what exists, syncs and is checked in it."""
        return phases.at(self.phase)

    @property
    def stack_file(self) -> str:
        return stack_file_name(self.stack)

    @property
    def through_transaction_pooler(self) -> bool:
        """Supavisor's transaction mode listens on 6543: server connections are shared per transaction."""
        return self.db_port == TRANSACTION_POOLER_PORT

    def deploy_refusal(self) -> str | None:
        """Why `pulumi up` must not run on this endpoint, or None."""
        if not self.through_transaction_pooler:
            return None
        return (f"Stack '{self.stack}' ({self.stack_file}): habit-tracker-db:db_port {self.db_port} is Supavisor's "
                "transaction pooler, where a deploy's index builds (CREATE INDEX CONCURRENTLY, which needs its "
                "own session) are not safe. Deploy through the direct connection (db.<ref>.supabase.co:5432) "
                "or the session pooler (port 5432 of the pooler host); tasks such as smoke-test, drift and "
                "monitor work through either. Nothing was changed.")

    @property
    def migration_present(self) -> bool:
        return self.dual_write != "removed"

    @property
    def trigger_present(self) -> bool:
        return self.dual_write in ("enabled", "disabled")

    @property
    def trigger_enabled(self) -> bool:
        return self.dual_write == "enabled"

    def conninfo(self, password: str | None = None) -> dict[str, Any]:
        """psycopg connection keywords; the password is passed in, never stored here."""
        info: dict[str, Any] = {
            "host": self.db_host,
            "port": self.db_port,
            "dbname": self.db_name,
            "user": self.db_user,
            "sslmode": self.db_sslmode,
            "application_name": f"{PROJECT}:{self.stack}",
            "connect_timeout": 10,
        }
        if password:
            info["password"] = password
        return info


def stack_file_name(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


def _key(name: str) -> str:
    return f"{PROJECT}:{name}"


def password_hint(stack: str) -> str:
    """The one way this project tells people to store a password: never in plain text, never echoed."""
    return (f"run `invoke stack-init --stack {stack}`: it creates the stack if needed, asks for the password "
            "without echo (or reads it from stdin) and stores it as a Pulumi secret")


def _fail(stack: str, name: str, value: Any, allowed: str) -> ConfigError:
    shown = "missing" if value is None else f"{value!r}"
    fix = (f"To set it, {password_hint(stack)}" if name == "db_password" else
           f"Fix that line in {stack_file_name(stack)} (or, after `source scripts/activate`, run "
           f"`pulumi config set {_key(name)} <value> --stack {stack}`)")
    return ConfigError(
        f"Stack '{stack}' ({stack_file_name(stack)}): config key '{_key(name)}' is {shown}; "
        f"allowed: {allowed}. {fix}; nothing was deployed."
    )


def parse(stack: str, raw: Mapping[str, Any], *, has_password: bool) -> StackConfig:
    """Parse raw config values (keys without the project prefix) into a StackConfig.

    `raw` holds plain values only; secrets are never passed here, `has_password` says
    whether the stack sets `db_password`.
    """

    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, KEYS, n=1)
        hint = f"did you mean '{_key(close[0])}'? " if close else ""
        raise ConfigError(
            f"Stack '{stack}' ({stack_file_name(stack)}): config key '{_key(key)}' is not one this project reads; "
            f"{hint}known keys: {', '.join(KEYS)}. Fix that line in {stack_file_name(stack)}; nothing was deployed."
        )

    def text(name: str, default: str | None = None) -> str:
        value = raw.get(name, default)
        if value is None or str(value).strip() == "":
            raise _fail(stack, name, None, f"a non-empty value (see {stack_file_name('dev')} for an example)")
        return str(value).strip()

    def choice(name: str, options: tuple[str, ...], default: str) -> str:
        value = text(name, default)
        if value not in options:
            raise _fail(stack, name, value, " | ".join(options))
        return value

    def integer(name: str, default: int | None, low: int, high: int, what: str) -> int:
        value = raw.get(name, default)
        if isinstance(value, bool) or value is None:
            raise _fail(stack, name, value, what)
        try:
            number = int(str(value).strip())
        except ValueError:
            raise _fail(stack, name, value, what) from None
        if not low <= number <= high:
            raise _fail(stack, name, value, what)
        return number

    def identifier(name: str, default: str) -> str:
        value = text(name, default)
        if not _IDENTIFIER.match(value):
            raise _fail(stack, name, value, "a plain lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 chars)")
        return value

    def duration(name: str, default: str) -> str:
        value = text(name, default)
        if not _DURATION.match(value):
            raise _fail(stack, name, value, "a PostgreSQL duration such as 500ms, 3s or 1min")
        return value

    phase_value = raw.get("phase")
    stage = phases.parse(phase_value)
    if stage is None:
        raise _fail(stack, "phase", phase_value, phases.described())
    dual_write = choice("dual_write", DUAL_WRITE_STATES, "enabled")
    if dual_write not in stage.dual_write:
        raise ConfigError(
            f"Stack '{stack}' ({stack_file_name(stack)}): config key '{_key('dual_write')}' is {dual_write!r}, "
            f"which {stage.label} does not allow; allowed there: {' | '.join(stage.dual_write)}. The guide's "
            "rollback options (disabled, absent, removed) apply in phases 0 and 1, where its trigger is the only "
            f"sync; from phase 2 on, the rollback is one step back: `invoke phase {stage.before} --stack {stack}`, "
            f"then `invoke up` ({stage.step_back}). Fix that line in {stack_file_name(stack)}; nothing was deployed."
        )

    db_host = text("db_host")
    if not has_password and db_host not in ("127.0.0.1", "localhost", "::1") and not db_host.startswith("/"):
        raise _fail(
            stack,
            "db_password",
            None,
            "a Pulumi secret for every non-loopback host",
        )

    threshold_raw = raw.get("drift_threshold", DEFAULT_THRESHOLD_PCT)
    try:
        threshold = float(str(threshold_raw))
    except ValueError:
        raise _fail(stack, "drift_threshold", threshold_raw, "a percentage between 0 and 100, e.g. 0.1") from None
    if not 0 <= threshold <= 100:
        raise _fail(stack, "drift_threshold", threshold_raw, "a percentage between 0 and 100, e.g. 0.1")

    schedule = text("cleanup_schedule", "17 3 * * *")
    if not _CRON.match(schedule):
        raise _fail(stack, "cleanup_schedule", schedule, "a 5-field cron expression such as '17 3 * * *' (daily)")

    promotes_from = raw.get("promotes_from")
    if promotes_from is not None:
        promotes_from = str(promotes_from).strip()
        if not _STACK.match(promotes_from) or promotes_from == stack:
            raise _fail(stack, "promotes_from", promotes_from, "the name of the stack deployed before this one")

    def number(name: str, default: float, low: float, high: float, what: str) -> float:
        value = raw.get(name, default)
        try:
            parsed = float(str(value).strip())
        except ValueError:
            raise _fail(stack, name, value, what) from None
        if isinstance(value, bool) or not low <= parsed <= high:
            raise _fail(stack, name, value, what)
        return parsed

    waiver = raw.get("edge_function_waiver")
    if waiver is not None and len(str(waiver).strip()) < 10:
        raise _fail(stack, "edge_function_waiver", waiver,
                    "a reason of at least 10 characters that the gate prints (or no such line: the gate then "
                    "asks for successful idempotency_log rows of the last 24 h)")

    override = raw.get("gate_override")
    if override is not None and len(str(override).strip()) < 10:
        raise _fail(stack, "gate_override", override,
                    "the reason the promotion gate was overridden, at least 10 characters (`invoke phase 1 --force "
                    "--reason ...` writes it), or no such line")

    return StackConfig(
        stack=stack,
        phase=stage.order,
        dual_write=dual_write,
        db_host=db_host,
        db_port=integer("db_port", 5432, 1, 65535, "a TCP port 1-65535"),
        db_name=identifier("db_name", "postgres"),
        db_user=identifier("db_user", "postgres"),
        db_sslmode=choice("db_sslmode", SSLMODES, "require"),
        has_password=has_password,
        lock_timeout=duration("lock_timeout", LOCK_TIMEOUT),
        statement_timeout=duration("statement_timeout", STATEMENT_TIMEOUT),
        drift_threshold=threshold,
        cleanup_schedule=schedule,
        backfill_batch_size=integer("backfill_batch_size", 5000, 1, 1_000_000, "a whole number from 1 to 1000000"),
        promotes_from=promotes_from,
        phase0_log=choice("phase0_log", PHASE0_LOGS, "notice"),
        soak_hours=number("soak_hours", 24, 0, 720, "hours from 0 to 720 (decimals allowed), e.g. 24"),
        max_dual_write_errors=integer("max_dual_write_errors", 0, 0, 1_000_000,
                                      "a whole number of dual_write_errors rows from 0 to 1000000"),
        perf_max_mean_ms=number("perf_max_mean_ms", 5, 0.001, 60_000,
                                "milliseconds above 0 (decimals allowed), e.g. 5"),
        edge_function_waiver=None if waiver is None else str(waiver).strip(),
        gate_override=None if override is None else str(override).strip(),
        quiet_period_hours=number("quiet_period_hours", 168, 0, 8760,
                                  "hours from 0 to 8760 (decimals allowed) without an old client's write, e.g. 168"),
    )


def read_stack_file(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The raw `config:` mapping of Pulumi.<stack>.yaml, keys without the project prefix."""
    path = root / stack_file_name(stack)
    if not path.is_file():
        existing = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise ConfigError(
            f"Stack '{stack}': {path.name} does not exist; stacks with a config file here: "
            f"{', '.join(existing) or 'none'}."
        )
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(
            f"Stack '{stack}': {path.name} is not valid YAML{line} ({problem}). Fix the file (each config line "
            f"reads `  {PROJECT}:<key>: <value>`, two spaces in); nothing was deployed."
        ) from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(f"Stack '{stack}': {path.name} has no `config:` mapping of {PROJECT}:<key>: <value> "
                          "lines; nothing was deployed.")
    prefix = f"{PROJECT}:"
    return {key[len(prefix) :]: value for key, value in config.items() if key.startswith(prefix)}


def _raw_without_password(stack: str, root: Path) -> tuple[dict[str, Any], bool]:
    raw = read_stack_file(stack, root)
    password = raw.pop("db_password", None)
    if password is not None and not (isinstance(password, dict) and "secure" in password):
        raise ConfigError(
            f"Stack '{stack}' ({stack_file_name(stack)}): config key '{_key('db_password')}' is stored in "
            f"plain text; allowed: a Pulumi secret only. Remove the line, change that password (it is in the "
            f"file's history), and {password_hint(stack)}."
        )
    return raw, password is not None


def load(stack: str, root: Path = ROOT) -> StackConfig:
    """Parse a stack's config file without the engine (used by tasks)."""
    raw, has_password = _raw_without_password(stack, root)
    return parse(stack, raw, has_password=has_password)


def check_file(stack: str, root: Path = ROOT) -> None:
    """Every rule of load() but one: the password may still be missing (`invoke stack-init` and
    `invoke phase` read a stack file that may not have it yet)."""
    raw, _ = _raw_without_password(stack, root)
    parse(stack, raw, has_password=True)
