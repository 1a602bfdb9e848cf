"""The deployment guide's rollback plan as an emergency action (`invoke rollback`).

Three levels, exactly the guide's options: `disable` (option 1), `drop-trigger`
(option 2) and `all` (option 3, which also loses the idempotency logs). One bounded
transaction either does all of it or none of it. Afterwards the stack file should
declare the same state, or the next `pulumi up` would undo the rollback: `config_line`
is the line to commit.

The three options exist where the guide's trigger is the sync (phases 0 and 1); from Phase 2
on, the rollback is one step back (`refusal` says so; dualwrite/phases.py says what each step
back does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection

import psycopg
from psycopg import sql

from dualwrite import db, locks
from dualwrite.catalog import CLEANUP_JOB, FORWARD_TRIGGERS, MIGRATION_013, RETIRED, SCHEMA, TRIGGER
from dualwrite.config import StackConfig
from dualwrite.objects.cron_job import has_pg_cron, unschedule_sql
from dualwrite.objects.ownership import refuse_unless_owner
from dualwrite.objects.trigger import set_enabled_sql, trigger_states
from dualwrite.stack_file import config_line


@dataclass(frozen=True)
class RollbackLevel:
    name: str
    guide_option: str
    dual_write: str  # the declared state that keeps this rollback on the next `pulumi up`
    impact: str


LEVELS = {
    "disable": RollbackLevel("disable", "Option 1: Disable Trigger (recommended)", "disabled",
                             "the trigger stops firing; every object stays; reversible with ENABLE TRIGGER"),
    "drop-trigger": RollbackLevel("drop-trigger", "Option 2: Drop Trigger", "absent",
                                  "the trigger is removed; functions and idempotency_log stay"),
    "all": RollbackLevel("all", "Option 3: Drop Everything", "removed",
                         "every object of migration 013 is dropped; THE IDEMPOTENCY LOGS ARE LOST"),
}


def level(name: str) -> RollbackLevel:
    if name not in LEVELS:
        raise ValueError(f"rollback level {name!r} is not one of: {', '.join(LEVELS)}")
    return LEVELS[name]


def refusal(config: StackConfig, name: str) -> str | None:
    """Why the guide's rollback `name` does not apply to the stack's phase (one paragraph), or None."""
    stage = config.stage
    if level(name).dual_write in stage.dual_write:
        return None
    return (f"Stack '{config.stack}' ({config.stack_file}) declares {stage.label}, where the guide's rollback "
            f"options (`invoke rollback --level disable|drop-trigger|all`) do not apply: they stop the guide's "
            f"trigger, which is not the only sync there. The rollback from {stage.label} is one step back: "
            f"`invoke phase {stage.before} --stack {config.stack}`, commit, then `invoke up` ({stage.step_back}). "
            "Nothing changed.")


def statements(name: str, present: Collection[str] | None = None) -> list[sql.SQL | sql.Composed]:
    """What the rollback runs, in order; shown to the operator before it runs. `present`: the forward
    triggers the database has (forward_triggers_present); None stands for all of them."""
    chosen = level(name)
    # The guide's statement alone stops every sync (Phase 1's statement triggers check its
    # trigger); the rollback leaves none of the forward sync's triggers behind, the guide's first.
    # Phase 0 has no statement triggers (dualwrite/phases.py), and DISABLE TRIGGER fails on one that
    # is not there: option 1 disables those the database has, whatever phase the stack file says
    # (an emergency must not fail because a deploy has not run yet).
    if chosen.name == "disable":
        return [set_enabled_sql(t.name, t.on_table, False, SCHEMA) for t in FORWARD_TRIGGERS
                if present is None or t.name == TRIGGER.name or t.name in present]
    if chosen.name == "drop-trigger":  # IF EXISTS: each one, whether the database has it or not
        return [t.drop_sql() for t in FORWARD_TRIGGERS]
    # A scheduled cleanup would fail once its function is gone: unschedule it first.
    # Every object of every phase (what is absent is skipped: IF EXISTS), then the objects an
    # earlier release created and this one no longer declares. Tables go with their rows: the
    # option is declared for exactly that.
    return [unschedule_sql(CLEANUP_JOB), *(obj.drop_sql() for obj in reversed(MIGRATION_013) if obj.droppable),
            *(obj.drop_sql() for obj in RETIRED)]


def forward_triggers_present(conn: psycopg.Connection) -> set[str]:
    """Names of the forward sync's triggers (catalog.FORWARD_TRIGGERS) the database has."""
    return set(trigger_states(conn, [t.name for t in FORWARD_TRIGGERS], TRIGGER.on_table, SCHEMA))


def render(conn: psycopg.Connection, name: str) -> list[str]:
    """What `run` runs, as the operator reads it: the tables it locks first, then its statements."""
    chosen = [statement.as_string(conn) for statement in statements(name, forward_triggers_present(conn))]
    return [lock.as_string(conn) for lock in db.lock_sql(tables_to_lock(conn, chosen))] + chosen


def tables_to_lock(conn: psycopg.Connection, chosen: list[str]) -> list[sql.Identifier]:
    """Every table the statements take ACCESS EXCLUSIVE, locked before the first of them runs (db.lock_in_turn):
    option 3 drops on habit_tracker, then the new tables, then idempotency_log, and waiting in the middle
    of that, holding habit_tracker, could deadlock an app transaction that wrote idempotency_log first."""
    return db.existing_tables(conn, locks.exclusive_tables(chosen, "the rollback's SQL"))


def run(conn: psycopg.Connection, name: str) -> None:
    """The level's statements, inside the caller's transaction (without pg_cron there is no job to unschedule)."""
    chosen = statements(name, forward_triggers_present(conn))
    if name == "all" and not has_pg_cron(conn):
        chosen = chosen[1:]
    db.lock_in_turn(conn, tables_to_lock(conn, [statement.as_string(conn) for statement in chosen]))
    for statement in chosen:
        conn.execute(statement)


def removal_props() -> dict[str, Any]:
    """What the program declares for `dual_write: removed` (objects/removal.py runs it): option 3's
    statements, as text a reviewer reads in the PR comment."""
    drops = [statement.as_string(None) for statement in statements("all")[1:]]
    return {"kind": "removal", "checksum": "", "cron_job": CLEANUP_JOB, "statements": drops,
            "lock": locks.exclusive_tables(drops, "the removal's SQL")}


def execute(
    conninfo: dict[str, Any], name: str, *, lock_timeout: str, statement_timeout: str, retries: int = db.LOCK_RETRIES,
    owner: str | None = None,
) -> None:
    """The level's statements in one bounded transaction; with `owner` ("project/stack"), refused
    (OwnedElsewhere, nothing changed) when the database records another stack as 013's owner."""

    def work(conn: psycopg.Connection) -> None:
        refuse_unless_owner(conn, owner, f"migration 013 (rollback {name})",
                            hint="Run the rollback with the owning stack (--stack), or move ownership first "
                                 "(`invoke take-ownership`).")
        run(conn, name)

    db.change(conninfo, work, lock_timeout=lock_timeout, statement_timeout=statement_timeout, retries=retries)


def follow_up_line(name: str) -> str:
    return config_line("dual_write", level(name).dual_write)
