"""The database objects of migration 013, in the order they are created.

One entry per object; each names the `sql/013/` file that creates it. The Pulumi
program declares one resource per entry, tests apply the same list straight
through psycopg, and `destroy` drops them in reverse order. Nothing else in the
project lists these objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"

# Schema of the app's tables (Supabase puts them in `public`).
SCHEMA = "public"
# The pg_cron job of Phase 1; fixed, because monitoring, smoke tests and rollback look it up by name.
CLEANUP_JOB = "cleanup_idempotency_log"


@dataclass(frozen=True)
class SqlObject:
    """One object of the migration: what it is, what it is called, where its SQL lives."""

    kind: str  # table | index | function | procedure | trigger
    name: str  # unqualified name in SCHEMA
    file: str  # path below sql/, may contain "{phase}"
    signature: str = ""  # functions and procedures: argument types, e.g. "()" or "(bigint, integer)"
    on_table: str = ""  # triggers: the table they sit on
    phase_specific: bool = False  # True when the file differs per phase

    def path(self, phase: int) -> Path:
        return SQL_DIR / self.file.format(phase=phase)

    def source(self, phase: int) -> str:
        return self.path(phase).read_text(encoding="utf-8")

    def checksum(self, phase: int) -> str:
        """Hash of the source SQL: the provider diffs on this, never on what Postgres stores."""
        return sha256(self.source(phase).encode("utf-8")).hexdigest()

    def drop_sql(self) -> sql.Composed:
        return drop_statement(self.kind, self.name, signature=self.signature, on_table=self.on_table)


def drop_statement(
    kind: str, name: str, *, signature: str = "", on_table: str = "", schema: str = SCHEMA
) -> sql.Composed:
    """DROP ... IF EXISTS for one object (IF EXISTS: a drop also cleans up half states).

    The one place that knows how each kind is dropped: the Pulumi provider's delete,
    `migration.drop` and `invoke rollback` all use it.
    """
    qualified = sql.Identifier(schema, name)
    if kind in ("function", "procedure"):
        # The signature is a constant of the catalog (argument types), never user input.
        return sql.SQL("DROP {} IF EXISTS {}{}").format(sql.SQL(kind.upper()), qualified, sql.SQL(signature))  # type: ignore[arg-type]
    if kind in ("table", "index"):
        return sql.SQL("DROP {} IF EXISTS {}").format(sql.SQL(kind.upper()), qualified)  # type: ignore[arg-type]
    if kind == "trigger":
        return sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(name), sql.Identifier(schema, on_table))
    if kind == "cron_job":
        return sql.SQL("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = {}").format(sql.Literal(name))
    raise ValueError(f"no DROP for kind {kind!r} of {name}")


def set_trigger_enabled(name: str, on_table: str, enabled: bool, *, schema: str = SCHEMA) -> sql.Composed:
    """The guide's rollback option 1 (DISABLE) and its way back (ENABLE)."""
    return sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(
        sql.Identifier(schema, on_table), sql.SQL("ENABLE" if enabled else "DISABLE"), sql.Identifier(name)
    )


MIGRATION_013: tuple[SqlObject, ...] = (
    SqlObject("table", "idempotency_log", "013/idempotency_log.sql"),
    SqlObject("index", "idx_idempotency_key", "013/idx_idempotency_key.sql"),
    SqlObject("index", "idx_idempotency_expires", "013/idx_idempotency_expires.sql"),
    SqlObject("index", "idx_idempotency_status", "013/idx_idempotency_status.sql"),
    SqlObject("index", "idx_idempotency_created", "013/idx_idempotency_created.sql"),
    SqlObject("function", "cleanup_idempotency_log", "013/cleanup_idempotency_log.sql", signature="()"),
    # The scheduled cleanup: the same deletes, committed batch by batch (pg_cron CALLs it).
    SqlObject(
        "procedure",
        "cleanup_idempotency_log_in_batches",
        "013/cleanup_idempotency_log_in_batches.sql",
        signature="(integer)",
    ),
    SqlObject("table", "dual_write_errors", "013/dual_write_errors.sql"),
    # The malformed-row test shared by the Phase 1 trigger and the backfill.
    SqlObject(
        "function", "habit_tracker_row_error", "013/habit_tracker_row_error.sql", signature="(jsonb, date)"
    ),
    SqlObject(
        "function",
        "sync_old_to_new",
        "013/sync_old_to_new.phase{phase}.sql",
        signature="()",
        phase_specific=True,
    ),
    SqlObject(
        "trigger",
        "trigger_habit_tracker_dual_write",
        "013/trigger_habit_tracker_dual_write.sql",
        on_table="habit_tracker",
    ),
    # Drift: the per-row diff, then its counts (dual_write_drift calls dual_write_diff).
    SqlObject("function", "dual_write_diff", "013/dual_write_diff.sql", signature="()"),
    SqlObject("function", "dual_write_drift", "013/dual_write_drift.sql", signature="()"),
    SqlObject(
        "function", "backfill_habit_tracker", "013/backfill_habit_tracker.sql", signature="(bigint, integer)"
    ),
)


def by_name(name: str) -> SqlObject:
    for obj in MIGRATION_013:
        if obj.name == name:
            return obj
    raise KeyError(f"no object {name!r} in migration 013; known: {', '.join(o.name for o in MIGRATION_013)}")
