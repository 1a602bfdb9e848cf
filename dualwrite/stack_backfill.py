"""`invoke backfill` on a stack: its database reached (or one paragraph), then the batched,
resumable backfill of dualwrite/backfill.py with the stack's batch size and timeouts.
"""

from __future__ import annotations

from dualwrite import backfill, connection
from dualwrite.stack_engine import StackEngine


def run(stack: str, engine: StackEngine, batch_size: int | None = None) -> backfill.BackfillResult:
    """`batch_size`: rows per batch (default: the stack's backfill_batch_size), already checked by the caller."""
    connection.check_reachable(stack, engine)
    config, info = connection.conninfo(stack, engine=engine)
    return backfill.run(info, batch_size=batch_size or config.backfill_batch_size, lock_timeout=config.lock_timeout,
                        statement_timeout=config.statement_timeout, show_progress=True)
