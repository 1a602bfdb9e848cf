"""What the database runs of dual write, next to what the stack declares: which rollback is in effect.

    state = read(conn, config)
    state.rollback            # the rollback level the database shows ("disable", "drop-trigger", "all") or None
    state.matches             # False: an emergency rollback (or a hand change) the stack file does not declare
    state.describe()          # one paragraph: what is in effect, and how to keep it or get back
    state.drift_not_applicable()  # why drift means nothing here, or None where a sync runs

Drift, the smoke test and monitor read it, so a stack in Phase 0, or with a rollback in
effect, declared or not, is judged by what it is meant to do there. Which phase the database
runs is read from its triggers, the archive and the sync body (`deployed_phase`); what each
phase syncs, and so where drift applies, is dualwrite/phases.py's.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from psycopg import sql

from dualwrite import phases
from dualwrite.catalog import SCHEMA, TRIGGER, SqlObject, by_name, objects_in
from dualwrite.config import StackConfig
from dualwrite.objects.trigger import trigger_states
from dualwrite.rollback import LEVELS
from dualwrite.stack_file import config_line

# pg_trigger.tgenabled: 'O' fires (origin and local), 'D' disabled; 'R'/'A' are set only by hand.
TRIGGER_STATE = {"O": "enabled", "D": "disabled", "R": "replica only", "A": "always"}


@dataclass(frozen=True)
class DualWriteState:
    stack: str
    stack_file: str
    declared_phase: int
    declared: str  # the stack's dual_write: enabled | disabled | absent | removed
    deployed_phase: str  # the phase the database runs: "0" .. "3", "retired", "absent" or "unknown ..."
    # The guide's trigger: enabled | disabled | absent (trigger dropped) | removed (013 gone) | replica only |
    # always; in a phase without it (3, retired) "enabled" means it is absent, as declared.
    in_database: str

    @property
    def rollback(self) -> str | None:
        """The `invoke rollback --level` whose result the database shows, None when dual write runs."""
        return {"disabled": "disable", "absent": "drop-trigger", "removed": "all"}.get(self.in_database)

    @property
    def matches(self) -> bool:
        return self.in_database == self.declared  # the states share the declared values' names

    @property
    def declared_stage(self) -> phases.Phase:
        return phases.at(self.declared_phase)

    @property
    def syncing(self) -> bool:
        """The declared phase is deployed and its sync runs (its triggers as the phase has them)."""
        return self.deployed_phase.split(" ")[0] == self.declared_stage.key and self.in_database == "enabled"

    def _rollback_words(self) -> str:
        chosen = LEVELS[self.rollback] if self.rollback else None
        return f"rollback {chosen.guide_option} (`invoke rollback --level {chosen.name}`)" if chosen else ""

    def describe(self) -> str:
        """What is in effect in the database, as one paragraph, with the way back when it differs."""
        line = f"{self.stack_file} declares habit-tracker-db:dual_write: {self.declared}"
        if self.matches:
            if self.rollback:
                return (f"{self._rollback_words()} is in effect, as declared ({line}). To end it: "
                        f"set `{config_line('dual_write', 'enabled')}`, then `invoke up --stack {self.stack}` "
                        "(it re-creates or enables the trigger and backfills the rows written meanwhile).")
            return f"dual write runs as declared ({line}, phase {self.declared_stage.key})."
        if self.rollback:
            keep = config_line("dual_write", LEVELS[self.rollback].dual_write)
            return (f"a rollback is in effect that the stack does not declare: the database shows "
                    f"{self._rollback_words()}, but {line}. To get back: `invoke up --stack {self.stack}` "
                    "(it puts the trigger back and backfills the rows written meanwhile). To keep the rollback: "
                    f"commit `{keep}` in {self.stack_file}.")
        return (f"the database differs from the stack: the trigger is {self.in_database}, but {line}. "
                f"`invoke up --stack {self.stack}` puts back what is declared.")

    def drift_not_applicable(self) -> str | None:
        """Why drift says nothing about this stack (one paragraph), or None where it applies:
        a phase that syncs (dualwrite/phases.py), declared with dual_write: enabled, and deployed."""
        stage = self.declared_stage
        if stage.drift == "none" and stage.order == 0:
            return (f"drift does not apply to stack '{self.stack}': it declares phase {stage.key}, where "
                    "the trigger only logs and the new schema is not kept in sync (drift grows with every app "
                    "write, by design). It applies once the stack runs phase 1 (`invoke phase 1`, then `invoke up`, "
                    "which backfills).")
        if stage.drift == "none":
            return (f"drift does not apply to stack '{self.stack}': it declares {stage.label}, where nothing is "
                    f"synced ({stage.meaning}).")
        if self.declared != "enabled" or self.rollback:
            return (f"drift does not apply to stack '{self.stack}' while the trigger does not sync: "
                    f"{self.describe()}")
        if not self.syncing:
            return (f"drift does not apply to stack '{self.stack}' yet: it declares phase {stage.key}, but the "
                    f"database runs the phase {self.deployed_phase} trigger function ({self.in_database} trigger). "
                    f"`invoke up --stack {self.stack}` deploys phase {stage.key}"
                    + (" and backfills." if stage.backfill else "."))
        return None


def trigger_in_database(conn: psycopg.Connection, stage: phases.Phase = phases.FIRST) -> str:
    """The guide's trigger as a dual_write state; in a phase without it (3, retired) its absence is
    "enabled" (dual write runs as that phase declares) and its presence "present (phase N has none)"."""
    has_013 = conn.execute("SELECT to_regclass('public.idempotency_log') IS NOT NULL").fetchone()[0]
    state = trigger_states(conn, [TRIGGER.name], TRIGGER.on_table, SCHEMA).get(TRIGGER.name)
    if TRIGGER.name not in stage.objects and has_013:
        return "enabled" if state is None else f"present ({stage.label} has no forward trigger)"
    if state is None:
        return "absent" if has_013 else "removed"
    return TRIGGER_STATE.get(state, state)


# What marks each phase after Phase 1 in the database: the triggers and the archive it adds (the
# objects it has that the phase before it has not), read from dualwrite/phases.py and the catalog.
def _markers(phase: phases.Phase) -> list[SqlObject]:
    before = phases.BY_KEY[phase.before].objects if phase.before is not None else frozenset()
    return [obj for obj in objects_in(phase.order) if obj.name not in before and obj.kind.kind in ("trigger", "archive")]


def _exists(conn: psycopg.Connection, obj: SqlObject) -> bool:
    if obj.kind.kind == "trigger":
        return obj.name in trigger_states(conn, [obj.name], obj.on_table, SCHEMA)
    query = sql.SQL("SELECT 1 WHERE to_regclass({}) IS NOT NULL").format(sql.Literal(f"{SCHEMA}.{obj.name}"))
    return conn.execute(query).fetchone() is not None


def deployed_phase(conn: psycopg.Connection) -> str:
    """Which phase the database runs, read from the database itself: the last phase after Phase 1 whose
    own triggers (or archive) are there; else which phase's body sync_old_to_new() runs."""
    for phase in reversed(phases.PATH[2:]):
        markers = _markers(phase)
        if markers and all(_exists(conn, obj) for obj in markers):
            return phase.key
    row = conn.execute("SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure('public.sync_old_to_new()')").fetchone()
    if row is None:
        return "absent"
    function = by_name("sync_old_to_new")
    body = row[0].strip()
    # Every body the project deploys: Phase 0 has one per `phase0_log` mode, Phase 1 one.
    variants = ((0, "notice", "0"), (0, "server", "0 (phase0_log: server)"), (1, "notice", "1"))
    for order, phase0_log, label in variants:
        if body and body in function.source(order, phase0_log):
            return label
    return "unknown body (edited by hand?)"


def read(conn: psycopg.Connection, config: StackConfig) -> DualWriteState:
    return DualWriteState(
        stack=config.stack, stack_file=config.stack_file, declared_phase=config.phase, declared=config.dual_write,
        deployed_phase=deployed_phase(conn), in_database=trigger_in_database(conn, config.stage),
    )
