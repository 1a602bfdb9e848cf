"""The database objects of migration 013, in the order they are created.

One entry per object: its kind (a class of dualwrite/objects/), its name and the
`sql/013/` file that creates it. Which phases each object exists in, and which body it runs
there, is dualwrite/phases.py's (`SqlObject.phases`, `objects_in(phase)`). The Pulumi program
declares one resource per object of the stack's phase, tests apply the same list through the
same per-object operations (dualwrite/migration.py), and the rollback drops them in reverse
order. Nothing else in the project lists these objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from psycopg import sql

from dualwrite import db, phases
from dualwrite.objects import Archive, Function, Index, ObjectKind, Procedure, Table, Trigger

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"

# Schema of the app's tables (Supabase puts them in `public`).
SCHEMA = "public"
# The app's old table, which retirement keeps as habit_tracker_archive.
ARCHIVED_TABLE = "habit_tracker"
# The guide's trigger: the only one with rollback states (dual_write: disabled | absent).
GUIDE_TRIGGER = "trigger_habit_tracker_dual_write"
# The pg_cron job of Phase 1; fixed, because monitoring, smoke tests and rollback look it up by name.
CLEANUP_JOB = "cleanup_idempotency_log"
# A DO block that calls cleanup_idempotency_log_batch() and commits after each batch (row locks
# released as it goes); the function cleanup_idempotency_log() stays for manual use
# (`invoke cleanup --one-transaction`). See sql/013/cleanup_idempotency_log_job.sql.
CLEANUP_COMMAND = (SQL_DIR / "013" / "cleanup_idempotency_log_job.sql").read_text(encoding="utf-8")
# The batch the job and `invoke cleanup` call in a loop, committing after each call.
CLEANUP_BATCH = "cleanup_idempotency_log_batch"
# The Edge Function uses idempotency_log as service_role; monitoring calls the drift function.
SERVICE_ROLE_TABLE = (("service_role", ("SELECT", "INSERT", "UPDATE", "DELETE")),)
SERVICE_ROLE_EXECUTE = (("service_role", ("EXECUTE",)),)
# The gate's evidence (counts and times), for the read-only preview roles of pull requests
# (members of pg_read_all_data, issue 16) and for monitoring; anon and authenticated are not members.
READ_ALL_DATA = "pg_read_all_data"
GATE_EVIDENCE_EXECUTE = ((READ_ALL_DATA, ("EXECUTE",)), ("service_role", ("EXECUTE",)))
IDEMPOTENCY_LOG_COLUMNS = (  # the guide's 8 columns
    ("id", "uuid"), ("key", "text"), ("operation", "text"), ("request_data", "jsonb"), ("response_data", "jsonb"),
    ("status", "text"), ("created_at", "timestamp with time zone"), ("expires_at", "timestamp with time zone"),
)
DUAL_WRITE_ERRORS_COLUMNS = (
    ("id", "bigint"), ("tracker_id", "bigint"), ("operation", "text"), ("error", "text"),
    ("occurred_at", "timestamp with time zone"),
)

OLD_CLIENT_WRITES_COLUMNS = (  # one row per day and backend that wrote habit_tracker (Phase 2 on)
    ("day", "date"), ("backend_pid", "integer"), ("login_role", "text"), ("statements", "bigint"),
    ("first_at", "timestamp with time zone"), ("last_at", "timestamp with time zone"),
)
# The new schema's tables, whose writes the reverse sync copies into habit_tracker (Phase 2 and 3).
REVERSE_SYNCED = ("children", "weeks", "habits", "habit_records")


@dataclass(frozen=True)
class SqlObject:
    """One object of the migration: what kind it is, what it is called, where its SQL lives."""

    kind: type[ObjectKind]
    name: str  # unqualified name in SCHEMA
    file: str  # path below sql/; "{phase}" stands for the body the phase picks (phases.Phase.bodies)
    signature: str = ""  # functions and procedures: argument types, e.g. "()" or "(bigint, integer)"
    on_table: str = ""  # triggers and indexes: the table they sit on
    # Tables: the columns an existing table must have to be adopted, (name, format_type()).
    columns: tuple[tuple[str, str], ...] = ()
    # Tables and functions: what each role keeps; everyone else keeps nothing (objects/privileges.py).
    privileges: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def phase_specific(self) -> bool:
        """True when the phase picks the body (the file differs per phase)."""
        return "{phase}" in self.file

    @property
    def phases(self) -> tuple[str, ...]:
        """The phases (stack-file keys) this object exists in, read from dualwrite/phases.py."""
        return tuple(phase.key for phase in phases.PATH if self.name in phase.objects)

    @property
    def forward_trigger(self) -> bool:
        """The guide's trigger or one of Phase 1's statement triggers beside it (FORWARD_TRIGGERS)."""
        return self.kind.kind == "trigger" and (self.name == GUIDE_TRIGGER or self.name.startswith(GUIDE_TRIGGER + "_"))

    @property
    def droppable(self) -> bool:
        """False for the archive: only an explicit, separate, reviewed change drops it (never option 3)."""
        return self.kind.kind != "archive"

    def path(self, phase: int, phase0_log: str = "notice") -> Path:
        variant = phases.at(phase).body(self.name)
        if self.phase_specific and not variant:
            raise ValueError(f"{self.name} has no body in {phases.at(phase).label}; it exists in phases "
                             f"{', '.join(self.phases)}")
        # Phase 0's server-log body is a file of its own: sync_old_to_new.phase0_server.sql.
        if variant == "0" and phase0_log == "server" and (SQL_DIR / self.file.format(phase="0_server")).is_file():
            variant = "0_server"
        return SQL_DIR / self.file.format(phase=variant)

    def source(self, phase: int, phase0_log: str = "notice") -> str:
        return self.path(phase, phase0_log).read_text(encoding="utf-8")

    def checksum(self, phase: int, phase0_log: str = "notice") -> str:
        """Hash of the source SQL: the provider diffs on this, never on what Postgres stores."""
        return sha256(self.source(phase, phase0_log).encode("utf-8")).hexdigest()

    def props(self, phase: int, *, trigger_enabled: bool = True, phase0_log: str = "notice") -> dict[str, Any]:
        """What the Pulumi program declares for this object (and what the engine keeps in state)."""
        props: dict[str, Any] = {
            "kind": self.kind.kind,
            "name": self.name,
            "schema": SCHEMA,
            # The archive has no file: its kind says what it runs (objects/archive.py).
            "sql": self.source(phase, phase0_log) if self.file else "",
            "checksum": self.checksum(phase, phase0_log) if self.file else "",
        }
        if self.kind is Archive:
            props.update({"source": ARCHIVED_TABLE, "archived": True})
        if self.signature:
            props["signature"] = self.signature
        if self.on_table and self.kind is Trigger:
            props["on_table"] = self.on_table
            # Only the guide's trigger has rollback states (dual_write: disabled); the others always fire.
            props["enabled"] = trigger_enabled if self.forward_trigger else True
        if self.kind is Table:
            # A new table is created with its indexes in one transaction (objects/table.py).
            props["indexes"] = [obj.source(phase, phase0_log) for obj in MIGRATION_013
                                if obj.kind is Index and obj.on_table == self.name]
        if self.columns:
            props["columns"] = [list(c) for c in self.columns]
        if self.kind in (Table, Function, Procedure):
            props["privileges"] = {role: list(granted) for role, granted in self.privileges}
        return props

    def operations(self, phase: int = 0, *, trigger_enabled: bool = True, phase0_log: str = "notice") -> ObjectKind:
        """The kind's operations on this object (create, diff, fingerprint, drop)."""
        return self.kind(self.props(phase, trigger_enabled=trigger_enabled, phase0_log=phase0_log))

    def drop_sql(self) -> sql.SQL | sql.Composed:
        # What names the object is enough; a retired object (RETIRED) has no file any more.
        return self.kind({"kind": self.kind.kind, "name": self.name, "schema": SCHEMA, "signature": self.signature,
                          "on_table": self.on_table}).drop_sql()


def ownership_props(project: str, stack: str) -> dict[str, Any]:
    """The record of which project and stack own migration 013 in the database (objects/ownership.py)."""
    source = (SQL_DIR / "013" / "migration_owner.sql").read_text(encoding="utf-8")
    return {"kind": "ownership", "name": "migration_013", "schema": "habit_tracker_db", "project": project,
            "stack": stack, "sql": source, "checksum": sha256(source.encode("utf-8")).hexdigest()}


# The tables the phases' triggers sit on, in the order a new client's first save locks them.
RETIREMENT_LOCK_ORDER = ("children", "weeks", "habits", "habit_records", "habit_tracker")


def retirement_props() -> dict[str, Any]:
    """What retirement stops before it archives habit_tracker (objects/retirement.py): every trigger, then
    every function, of the phase before it that it does not keep, newest first; `lock`, the tables
    those triggers sit on, locked first."""
    retired = phases.BY_KEY["retired"]
    before = phases.BY_KEY[retired.before or ""]
    leaving = [obj for obj in reversed(objects_in(before.order)) if obj.name not in retired.objects]
    drops = [obj for obj in leaving if obj.kind is Trigger] + [obj for obj in leaving if obj.kind is Function]
    # Every table those triggers sit on is locked before the first drop: dropping them one by one took
    # the tables newest first and deadlocked a new client's write (the walk saw it). The locks are taken
    # one at a time (db.lock_in_turn): no order of them suits every write of the new app.
    tables = [table for table in RETIREMENT_LOCK_ORDER if any(obj.on_table == table for obj in drops)]
    lock = db.lock_sql([sql.Identifier(SCHEMA, table) for table in tables])
    statements = [obj.drop_sql().as_string(None) for obj in drops]
    # The checksum is of what a reviewer reads (objects/retirement.py `statements`), as in the release
    # before: a stack retired by it sees no change to apply (its tables are gone from `public`).
    return {"kind": "retirement", "name": "migration_013_syncs", "schema": SCHEMA, "lock": tables,
            "statements": statements, "triggers": [obj.name for obj in drops if obj.kind is Trigger],
            "checksum": sha256(repr([*(s.as_string(None) for s in lock), *statements]).encode("utf-8")).hexdigest()}


def grants_props(objects: list[str] | None = None) -> dict[str, Any]:
    """The Security component's watch over the privileges of `objects` (default: every table,
    function and procedure of Phase 0): each one's REVOKE/GRANT, applied again, and their ACLs read back."""
    if objects is None:
        objects = [obj.name for obj in objects_in(phases.FIRST.order)]
    chosen = [obj for obj in MIGRATION_013 if obj.kind in (Table, Function, Procedure) and obj.name in objects]
    declared = [{"kind": obj.kind.kind, "name": obj.name, "schema": SCHEMA, "signature": obj.signature,
                 "privileges": {role: list(granted) for role, granted in obj.privileges}} for obj in chosen]
    return {"kind": "grants", "name": "migration_013_privileges", "schema": SCHEMA, "declared": declared,
            "checksum": sha256(repr(declared).encode("utf-8")).hexdigest(), "objects": [o.name for o in chosen]}


MIGRATION_013: tuple[SqlObject, ...] = (
    SqlObject(Table, "idempotency_log", "013/idempotency_log.sql", columns=IDEMPOTENCY_LOG_COLUMNS,
              privileges=SERVICE_ROLE_TABLE),
    SqlObject(Index, "idx_idempotency_key", "013/idx_idempotency_key.sql", on_table="idempotency_log"),
    SqlObject(Index, "idx_idempotency_expires", "013/idx_idempotency_expires.sql", on_table="idempotency_log"),
    SqlObject(Index, "idx_idempotency_status", "013/idx_idempotency_status.sql", on_table="idempotency_log"),
    SqlObject(Index, "idx_idempotency_created", "013/idx_idempotency_created.sql", on_table="idempotency_log"),
    SqlObject(Function, "cleanup_idempotency_log", "013/cleanup_idempotency_log.sql", signature="()",
              privileges=SERVICE_ROLE_EXECUTE),
    # The scheduled cleanup's batch: the same deletes, one batch per call; its callers commit
    # after each (the pg_cron job's DO block, `invoke cleanup`).
    SqlObject(Function, CLEANUP_BATCH, "013/cleanup_idempotency_log_batch.sql",
              signature="(timestamp with time zone, timestamp with time zone, integer)"),
    # Error texts quote user data: the owner, and service_role (BYPASSRLS) for monitoring, read them.
    SqlObject(Table, "dual_write_errors", "013/dual_write_errors.sql", columns=DUAL_WRITE_ERRORS_COLUMNS,
              privileges=(("service_role", ("SELECT",)),)),
    SqlObject(Index, "idx_dual_write_errors_tracker_id", "013/idx_dual_write_errors_tracker_id.sql",
              on_table="dual_write_errors"),
    # The malformed-row test shared by the Phase 1 trigger and the backfill.
    SqlObject(Function, "habit_tracker_row_error", "013/habit_tracker_row_error.sql", signature="(jsonb, date)"),
    SqlObject(Function, "sync_old_to_new", "013/sync_old_to_new.phase{phase}.sql", signature="()"),
    SqlObject(Trigger, "trigger_habit_tracker_dual_write", "013/trigger_habit_tracker_dual_write.sql",
              on_table="habit_tracker"),
    # Phase 1's sync, once per statement with its rows (transition tables: one trigger per event),
    # from Phase 1 on only (dualwrite/phases.py). The guide's trigger above stays the switch:
    # disabled or dropped, these sync nothing.
    SqlObject(Function, "sync_habit_tracker_rows", "013/sync_habit_tracker_rows.sql",
              signature="(text, bigint[], uuid[], text[], date[], text[], jsonb[], bigint[], jsonb[])"),
    SqlObject(Function, "sync_one_habit_tracker_row", "013/sync_one_habit_tracker_row.sql",
              signature="(text, public.habit_tracker, public.habit_tracker)"),
    SqlObject(Function, "sync_old_to_new_statement", "013/sync_old_to_new_statement.phase{phase}.sql",
              signature="()"),
    # Created one after another in this order (each its own transaction) by the step to Phase 1:
    # delete, update, then insert. Between two of them a write can only leave a row unsynced,
    # which the backfill that follows the triggers projects; in the other order a row inserted
    # and synced could be deleted or updated before its trigger exists, leaving a week the
    # backfill never revisits (it walks habit_tracker's rows, and a deleted row has none).
    SqlObject(Trigger, "trigger_habit_tracker_dual_write_delete", "013/trigger_habit_tracker_dual_write_delete.sql",
              on_table="habit_tracker"),
    SqlObject(Trigger, "trigger_habit_tracker_dual_write_update", "013/trigger_habit_tracker_dual_write_update.sql",
              on_table="habit_tracker"),
    SqlObject(Trigger, "trigger_habit_tracker_dual_write_insert", "013/trigger_habit_tracker_dual_write_insert.sql",
              on_table="habit_tracker"),
    # Drift: the per-row diff, then its counts (dual_write_drift calls dual_write_diff).
    SqlObject(Function, "dual_write_diff", "013/dual_write_diff.sql", signature="()",
              privileges=SERVICE_ROLE_EXECUTE),
    SqlObject(Function, "dual_write_drift", "013/dual_write_drift.sql", signature="()",
              privileges=SERVICE_ROLE_EXECUTE),
    # The gate's rows for a role that cannot see past RLS (a pull request's): its SQL file says why definer.
    SqlObject(Function, "dual_write_gate_evidence", "013/dual_write_gate_evidence.sql", signature="()",
              privileges=GATE_EVIDENCE_EXECUTE),
    SqlObject(Function, "backfill_habit_tracker", "013/backfill_habit_tracker.sql", signature="(bigint, integer)"),
    # Phase 2: the evidence the Phase 3 gate reads, writes to habit_tracker the reverse sync did not make.
    SqlObject(Table, "old_client_writes", "013/old_client_writes.sql", columns=OLD_CLIENT_WRITES_COLUMNS,
              privileges=(("service_role", ("SELECT",)),)),
    SqlObject(Function, "record_old_client_write", "013/record_old_client_write.sql", signature="()"),
    SqlObject(Trigger, "trigger_habit_tracker_old_client_writes", "013/trigger_habit_tracker_old_client_writes.sql",
              on_table="habit_tracker"),
    # Phase 2: the reverse sync, one rebuild of a sheet's habit_tracker row per transaction.
    SqlObject(Function, "habit_tracker_from_week", "013/habit_tracker_from_week.sql", signature="(uuid)"),
    SqlObject(Function, "sync_new_to_old", "013/sync_new_to_old.sql", signature="()"),
    # Per table: a BEFORE row trigger that locks the sheet's habit_tracker row first and queues its week, and
    # a deferred constraint trigger that rebuilds each queued week once at commit (sync_new_to_old.sql).
    *(SqlObject(Trigger, f"trigger_{table}_reverse_{role}", f"013/trigger_{table}_reverse_{role}.sql", on_table=table)
      for table in REVERSE_SYNCED for role in ("lock", "sync")),
    SqlObject(Function, "dual_write_reverse_drift", "013/dual_write_reverse_drift.sql", signature="()",
              privileges=SERVICE_ROLE_EXECUTE),
    SqlObject(Function, "backfill_new_to_old", "013/backfill_new_to_old.sql", signature="(uuid, integer)"),
    # Phase 3: habit_tracker read-only for every writer but the reverse sync.
    SqlObject(Function, "habit_tracker_read_only", "013/habit_tracker_read_only.sql", signature="()"),
    SqlObject(Trigger, "trigger_habit_tracker_read_only", "013/trigger_habit_tracker_read_only.sql",
              on_table="habit_tracker"),
    # Retirement: habit_tracker kept as this archive, that no API role can use; never dropped by a phase.
    SqlObject(Archive, "habit_tracker_archive", ""),
)

# Objects earlier releases created that this one no longer declares (they hold no data):
# `pulumi up` drops them as their resources leave the program, and the rollback's option 3
# drops them too, for a database an earlier release deployed. The procedure committed per
# batch, so it could carry no `SET search_path` (Supabase lint 0011): replaced by
# cleanup_idempotency_log_batch() and the job's DO block.
RETIRED: tuple[SqlObject, ...] = (
    SqlObject(Procedure, "cleanup_idempotency_log_in_batches", "", signature="(integer)"),
)

TRIGGER = next(obj for obj in MIGRATION_013 if obj.name == GUIDE_TRIGGER)
# Every trigger of the forward sync (old -> new): the guide's, then Phase 1's statement triggers, which
# sync nothing while the guide's is disabled or dropped. What the smoke test, monitor, rollback,
# destroy and adoption treat as "the trigger".
FORWARD_TRIGGERS = tuple(obj for obj in MIGRATION_013 if obj.forward_trigger)
TABLES = tuple(obj for obj in MIGRATION_013 if obj.kind is Table)
FUNCTIONS = tuple(obj for obj in MIGRATION_013 if obj.kind is Function)
TRIGGERS = tuple(obj for obj in MIGRATION_013 if obj.kind is Trigger)


def objects_in(phase: int) -> tuple[SqlObject, ...]:
    """The objects of a phase (its place on the path), in creation order."""
    names = phases.at(phase).objects
    return tuple(obj for obj in MIGRATION_013 if obj.name in names)


def by_name(name: str) -> SqlObject:
    for obj in MIGRATION_013:
        if obj.name == name:
            return obj
    raise KeyError(f"no object {name!r} in migration 013; known: {', '.join(o.name for o in MIGRATION_013)}")
