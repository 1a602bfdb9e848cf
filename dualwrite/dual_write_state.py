"""What the database runs of dual write, next to what the stack declares: which rollback is in effect.

    state = read(conn, config)
    state.rollback            # the rollback level the database shows ("disable", "drop-trigger", "all") or None
    state.matches             # False: an emergency rollback (or a hand change) the stack file does not declare
    state.describe()          # one paragraph: what is in effect, and how to keep it or get back
    state.drift_not_applicable()  # why drift means nothing here, or None where Phase 1 syncs

Drift, the smoke test and monitor read it, so a stack in Phase 0, or with a rollback in
effect, declared or not, is judged by what it is meant to do there.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from dualwrite.catalog import TRIGGER, by_name
from dualwrite.config import StackConfig
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
    deployed_phase: str  # sync_old_to_new()'s body: "0", "1", "absent" or "unknown ..."
    in_database: str  # enabled | disabled | absent (trigger dropped) | removed (013 gone) | replica only | always

    @property
    def rollback(self) -> str | None:
        """The `invoke rollback --level` whose result the database shows, None when dual write runs."""
        return {"disabled": "disable", "absent": "drop-trigger", "removed": "all"}.get(self.in_database)

    @property
    def matches(self) -> bool:
        return self.in_database == self.declared  # the states share the declared values' names

    @property
    def syncing(self) -> bool:
        """Phase 1 is deployed and its trigger fires: the new schema is kept in sync."""
        return self.deployed_phase == "1" and self.in_database == "enabled"

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
            return f"dual write runs as declared ({line}, phase {self.declared_phase})."
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
        Phase 1 declared with dual_write: enabled, and deployed with its trigger firing."""
        if self.declared_phase != 1:
            return (f"drift does not apply to stack '{self.stack}': it declares phase {self.declared_phase}, where "
                    "the trigger only logs and the new schema is not kept in sync (drift grows with every app "
                    "write, by design). It applies once the stack runs phase 1 (`invoke phase 1`, then `invoke up`, "
                    "which backfills).")
        if self.declared != "enabled" or self.rollback:
            return (f"drift does not apply to stack '{self.stack}' while the trigger does not sync: "
                    f"{self.describe()}")
        if not self.syncing:
            return (f"drift does not apply to stack '{self.stack}' yet: it declares phase 1, but the database runs "
                    f"the phase {self.deployed_phase} trigger function ({self.in_database} trigger). "
                    f"`invoke up --stack {self.stack}` deploys phase 1 and backfills.")
        return None


def trigger_in_database(conn: psycopg.Connection) -> str:
    has_013 = conn.execute("SELECT to_regclass('public.idempotency_log') IS NOT NULL").fetchone()[0]
    row = conn.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = %s AND tgrelid = to_regclass(%s)",
                       (TRIGGER.name, "public.habit_tracker")).fetchone()
    if row is None:
        return "absent" if has_013 else "removed"
    return TRIGGER_STATE.get(row[0], row[0])


def deployed_phase(conn: psycopg.Connection) -> str:
    """Which phase's body sync_old_to_new() runs now, read from the database itself."""
    row = conn.execute("SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure('public.sync_old_to_new()')").fetchone()
    if row is None:
        return "absent"
    function = by_name("sync_old_to_new")
    body = row[0].strip()
    # Every body the project deploys: Phase 0 has one per `phase0_log` mode, Phase 1 one.
    variants = ((0, "notice", "0"), (0, "server", "0 (phase0_log: server)"), (1, "notice", "1"))
    for phase, phase0_log, label in variants:
        if body and body in function.source(phase, phase0_log):
            return label
    return "unknown body (edited by hand?)"


def read(conn: psycopg.Connection, config: StackConfig) -> DualWriteState:
    return DualWriteState(
        stack=config.stack, stack_file=config.stack_file, declared_phase=config.phase, declared=config.dual_write,
        deployed_phase=deployed_phase(conn), in_database=trigger_in_database(conn),
    )
