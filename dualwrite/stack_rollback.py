"""`invoke rollback` on a stack: the guide's emergency options (dualwrite/rollback.py), planned first,
then run.

`plan` reads the stack and renders the statements as they will run, changing nothing, so the
task can show them and ask for the stack's name; `run` executes them in one bounded transaction
and returns the line the stack file must then say, so that the next `up` keeps the rollback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dualwrite import connection, lock_waits, rollback
from dualwrite import config as stack_config
from dualwrite.config import PROJECT, ConfigError, StackConfig
from dualwrite.objects.ownership import OwnedElsewhere
from dualwrite.stack_engine import StackEngine


class RollbackNotRun(RuntimeError):
    """The rollback was refused or ran out of lock retries; its transaction changed nothing (one paragraph)."""


@dataclass(frozen=True)
class RollbackPlan:
    config: StackConfig
    level: rollback.RollbackLevel
    statements: list[str]
    conninfo: dict[str, Any]


def plan(stack: str, level: str, engine: StackEngine) -> RollbackPlan:
    config = stack_config.load(stack)
    try:
        chosen = rollback.level(level)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if refusal := rollback.refusal(config, level):  # from Phase 2 on, the rollback is one step back
        raise ConfigError(refusal)
    _, conn = connection.connect(stack, engine=engine)
    _, info = connection.conninfo(stack, engine=engine)
    with conn:
        statements = rollback.render(conn, level)
    return RollbackPlan(config, chosen, statements, info)


def run(planned: RollbackPlan) -> str:
    """Run the planned rollback; the stack file's line that keeps it."""
    config, name = planned.config, planned.level.name
    try:
        rollback.execute(planned.conninfo, name, lock_timeout=config.lock_timeout,
                         statement_timeout=config.statement_timeout, owner=f"{PROJECT}/{config.stack}")
    except (lock_waits.LockWaitExhausted, OwnedElsewhere) as error:
        raise RollbackNotRun(f"rollback of stack '{config.stack}' did not run: {error}") from None
    return rollback.follow_up_line(name)
