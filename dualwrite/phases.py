"""The phases of migration 013, one entry each: the whole path from the guide's Phase 0 to retirement.

    phase = phases.parse("2")       # the stack file's value -> its entry (None if not a phase)
    phase.objects                   # names of the catalog objects that exist in it
    phase.body("sync_old_to_new")   # which body (file variant) an object runs here
    phase.syncs, phase.drift        # which direction(s) sync, what drift means
    phase.gate                      # what the promotion gate reads to enter it (dualwrite/promotion.py)
    phase.before, phase.step_back   # the phase one step down, and what stepping back does

Everything that used to compare `phase == 1` reads an entry instead: the catalog (which
objects exist where: dualwrite/catalog.py), the program (infra/components.py), config, the
smoke test, monitor, drift, rollback, CI's plan, the PR comment and the policy pack. Adding a
phase is one entry below (what it adds to and drops from the phase before it) plus its SQL
files. Stack files spell a phase by `key` ("0" .. "3", "retired"); `order` is its place on
the path, and a step moves exactly one place up or down.

This module names objects by name only (it imports nothing of the project), so every other
module can read it without a cycle; tests/unit/test_phases.py checks each name is in the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

# Directions of sync, and what drift measures where they run.
NONE = "none"
FORWARD = "old->new"  # habit_tracker -> children, weeks, habits, habit_records
BOTH = "both"
REVERSE = "new->old"


@dataclass(frozen=True)
class Gate:
    """What the promotion gate reads before a stack enters a phase (dualwrite/promotion.py runs it).

    `reads_phase`: the phase the evidence comes from. The stack before in the promotion order
    (promotes_from) must already run the phase being entered and pass its smoke test; the
    first shared stack reads itself, in the phase it runs now (`reads_phase`).
    `rows`: the rows besides those two, each a function of dualwrite/gate.py:
      checklist      the guide's Phase 1 Activation Checklist, exactly as before (gate.py's table)
      soak           `soak_hours` of updates in `reads_phase` (the engine's stack history)
      drift_forward  dual_write_drift() under the threshold (`drift_threshold`)
      drift_reverse  dual_write_reverse_drift() at zero
      drift_zero     dual_write_drift() at zero
      errors         no unhandled dual_write_errors rows in the last day (`max_dual_write_errors`)
      quiet_period   zero old_client_writes rows over `quiet_period_hours`, on the stack itself
      approval       CODEOWNERS names the stack file's reviewers
    """

    reads_phase: str
    rows: tuple[str, ...]
    summary: str


@dataclass(frozen=True)
class Phase:
    key: str  # how the stack file spells it: habit-tracker-db:phase: <key>
    order: int  # its place on the path (0 = the guide's Phase 0); steps are one apart
    title: str
    meaning: str  # one line: what the app and the database do in it
    objects: frozenset[str]  # catalog objects that exist in it (by name)
    bodies: Mapping[str, str]  # object -> the body (file variant) it runs here, for objects with several
    syncs: str  # NONE | FORWARD | BOTH | REVERSE
    backfill: bool  # the forward catch-up (the Phase 1 backfill resource) runs at `up`
    reverse_backfill: bool  # the reverse catch-up (backfill_new_to_old) runs at `up` where sheets are behind
    cleanup_job: bool  # the pg_cron job cleanup_idempotency_log is scheduled
    smoke_checks: tuple[str, ...]  # check ids dualwrite/smoke.py runs, in order (its CHECKS)
    drift: str  # which drift applies: "forward" | "both ways" | "reverse" | "none"
    gate: Gate | None  # what entering it reads; None: nothing to enter (the first phase)
    step_back: str  # what `invoke phase <before>` then `invoke up` does (empty for the first phase)
    # The guide's rollback options (dual_write: disabled | absent | removed) exist only where its
    # trigger is the sync; later, stepping back one phase is the rollback.
    dual_write: tuple[str, ...] = ("enabled",)
    before: str | None = None  # key of the phase one step down
    # habit_tracker is kept as habit_tracker_archive (retirement): the syncs stop first (objects/retirement.py).
    archives: bool = False

    def body(self, name: str) -> str:
        return self.bodies.get(name, "")

    @property
    def label(self) -> str:
        return f"phase {self.key} ({self.title})"

    @property
    def forward_sync(self) -> bool:
        return self.syncs in (FORWARD, BOTH)

    @property
    def reverse_sync(self) -> bool:
        return self.syncs in (BOTH, REVERSE)


# Phase 1's forward sync once per statement, beside the guide's trigger (issue 19). Phase 0 has none
# of it: its statement triggers keep transition tables (a copy of every row a statement writes) and
# fire once per statement, a cost Phase 0, which only logs, has no use for. Entering Phase 1 creates
# them (CREATE TRIGGER waits for the writes in flight; the backfill that follows catches up), stepping
# back to Phase 0 drops them.
_STATEMENT_SYNC = frozenset({
    "sync_habit_tracker_rows", "sync_one_habit_tracker_row", "sync_old_to_new_statement",
    "trigger_habit_tracker_dual_write_insert", "trigger_habit_tracker_dual_write_update",
    "trigger_habit_tracker_dual_write_delete",
})
# What Phase 0 creates: every object of the guide plus this project's helpers (errors, drift, backfill).
_GUIDE = frozenset({
    "idempotency_log", "idx_idempotency_key", "idx_idempotency_expires", "idx_idempotency_status",
    "idx_idempotency_created", "cleanup_idempotency_log", "cleanup_idempotency_log_batch", "dual_write_errors",
    "habit_tracker_row_error", "sync_old_to_new", "trigger_habit_tracker_dual_write", "dual_write_diff",
    "dual_write_drift", "dual_write_gate_evidence", "backfill_habit_tracker",
    # dual_write_errors' index (Phase 1's sync probes it), created with its table (objects/table.py).
    "idx_dual_write_errors_tracker_id",
})
# Phase 2 adds the reverse sync and the evidence the Phase 3 gate reads (old clients' writes).
_REVERSE = frozenset({
    "habit_tracker_from_week", "sync_new_to_old", "trigger_children_reverse_lock", "trigger_children_reverse_sync",
    "trigger_weeks_reverse_lock", "trigger_weeks_reverse_sync", "trigger_habits_reverse_lock",
    "trigger_habits_reverse_sync", "trigger_habit_records_reverse_lock", "trigger_habit_records_reverse_sync",
    "old_client_writes",
    "record_old_client_write", "trigger_habit_tracker_old_client_writes", "dual_write_reverse_drift",
    "backfill_new_to_old",
})
_READ_ONLY = frozenset({"habit_tracker_read_only", "trigger_habit_tracker_read_only"})
# Retirement keeps what serves the Edge Function (idempotency_log, its indexes, its cleanup), the
# tables that hold rows (errors, old clients' writes) and the archive; every trigger and sync
# function goes.
_RETIRED = frozenset({
    "idempotency_log", "idx_idempotency_key", "idx_idempotency_expires", "idx_idempotency_status",
    "idx_idempotency_created", "cleanup_idempotency_log", "cleanup_idempotency_log_batch", "dual_write_errors",
    "idx_dual_write_errors_tracker_id", "old_client_writes", "habit_tracker_archive",
})

_SMOKE_GUIDE = ("state", "columns", "indexes", "guide_trigger")

PATH: tuple[Phase, ...] = (
    Phase(
        key="0", order=0, title="log only",
        meaning="the guide's trigger logs every write to habit_tracker (NOTICE or server log); nothing is synced",
        objects=_GUIDE, bodies={"sync_old_to_new": "0"},
        syncs=NONE, backfill=False, reverse_backfill=False,
        cleanup_job=False,
        smoke_checks=(*_SMOKE_GUIDE, "test_row", "security", "cleanup_job"),
        drift="none", gate=None, step_back="",
        dual_write=("enabled", "disabled", "absent", "removed"),
    ),
    Phase(
        key="1", order=1, title="sync old to new",
        meaning="writes to habit_tracker are projected into children, weeks, habits and habit_records; "
                "existing rows are backfilled",
        objects=_GUIDE | _STATEMENT_SYNC, bodies={"sync_old_to_new": "1", "sync_old_to_new_statement": "1"},
        syncs=FORWARD, backfill=True, reverse_backfill=False,
        cleanup_job=True,
        smoke_checks=(*_SMOKE_GUIDE, "test_row", "security", "cleanup_job", "drift"),
        drift="forward",
        gate=Gate("1", ("checklist",), "the guide's Phase 1 Activation Checklist: the stack before soaked Phase 1, "
                                       "drift under its threshold, no dual-write errors, performance baseline, "
                                       "Edge Function, approval"),
        step_back="the trigger goes back to the Phase 0 body (log only), the statement triggers of the sync and "
                  "their functions are dropped, and the cleanup job is unscheduled; the new tables keep their rows",
        dual_write=("enabled", "disabled", "absent", "removed"), before="0",
    ),
    Phase(
        key="2", order=2, title="both directions",
        meaning="the new app writes the normalized tables and a reverse sync rebuilds each touched habit_tracker "
                "row once per transaction; old clients' writes still flow forward",
        objects=_GUIDE | _STATEMENT_SYNC | _REVERSE, bodies={"sync_old_to_new": "1", "sync_old_to_new_statement": "1"},
        syncs=BOTH, backfill=True, reverse_backfill=True,
        cleanup_job=True,
        smoke_checks=(*_SMOKE_GUIDE, "phase_triggers", "test_row", "security", "cleanup_job", "drift"),
        drift="both ways",
        gate=Gate("1", ("soak", "drift_forward", "errors", "approval"),
                  "Phase 1's evidence read in Phase 1: soak, forward drift under the threshold, no unhandled "
                  "dual_write_errors"),
        step_back="the reverse sync stops (its triggers and functions are dropped; old_client_writes keeps its "
                  "rows); every write made through the new schema is already in habit_tracker, and Phase 1 "
                  "syncs forward as before",
        before="1",
    ),
    Phase(
        key="3", order=3, title="contract",
        meaning="forward sync is off and habit_tracker is read-only for the API roles (an old client's write "
                "gets a clear error); the reverse sync keeps it current for old readers",
        objects=(_GUIDE | _REVERSE | _READ_ONLY) - {"trigger_habit_tracker_dual_write", "sync_old_to_new"},
        bodies={}, syncs=REVERSE, backfill=False, reverse_backfill=True, cleanup_job=True,
        smoke_checks=(*_SMOKE_GUIDE, "phase_triggers", "read_only", "security", "cleanup_job", "drift"),
        drift="reverse",
        gate=Gate("2", ("quiet_period", "drift_zero", "drift_reverse", "approval"),
                  "old clients stopped writing: zero old_client_writes over quiet_period_hours, drift 0 both ways"),
        step_back="old clients may write habit_tracker again (the read-only trigger is dropped) and the forward "
                  "sync (sync_old_to_new with the Phase 1 body, and its trigger) is created again; `up` backfills "
                  "whatever the new schema lacks",
        before="2",
    ),
    Phase(
        key="retired", order=4, title="retired",
        meaning="every trigger and sync function is gone; habit_tracker is kept, renamed habit_tracker_archive, "
                "readable by no API role; idempotency_log and its cleanup stay for the Edge Function",
        objects=_RETIRED, bodies={}, syncs=NONE, backfill=False, reverse_backfill=False, cleanup_job=True,
        smoke_checks=("state", "columns", "indexes", "no_triggers", "archive", "security", "cleanup_job"),
        drift="none",
        gate=Gate("3", ("soak", "drift_zero", "drift_reverse", "approval"),
                  "Phase 3 soaked (soak_hours) and drift 0 both ways"),
        step_back="habit_tracker_archive is renamed back to habit_tracker with its privileges as they were, the "
                  "Phase 3 triggers and functions are created again, and backfill_new_to_old brings over the rows "
                  "written to the new schema meanwhile",
        before="3", archives=True,
    ),
)

BY_KEY: dict[str, Phase] = {phase.key: phase for phase in PATH}
KEYS: tuple[str, ...] = tuple(BY_KEY)
FIRST = PATH[0]


def parse(value: object) -> Phase | None:
    """The entry a stack file's value names (`2`, "2", `retired`), None when it names none."""
    if isinstance(value, bool) or value is None:
        return None
    return BY_KEY.get(str(value).strip())


def at(order: int) -> Phase:
    """The entry at a place on the path (StackConfig.phase holds the place)."""
    return PATH[order]


def one_step(current: Phase, target: Phase) -> str | None:
    """Why a move from `current` to `target` is not one step, or None when it is one (or no move)."""
    if abs(target.order - current.order) <= 1:
        return None
    path = " -> ".join(p.key for p in PATH)
    return (f"phase {current.key} -> {target.key} skips a step: a stack moves one phase at a time along {path}, "
            f"each through its own pull request, gate and deploy (next up: "
            f"{up(current).key if up(current) else 'none, it is the last'}; one step back: "
            f"{current.before if current.before is not None else 'none, it is the first'})")


def up(phase: Phase) -> Phase | None:
    return PATH[phase.order + 1] if phase.order + 1 < len(PATH) else None


def described() -> str:
    """Every allowed value, for error messages: `0 (log only) | 1 (sync old to new) | ...`."""
    return " | ".join(p.key if p.key == p.title else f"{p.key} ({p.title})" for p in PATH)

