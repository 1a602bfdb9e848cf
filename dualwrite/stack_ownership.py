"""`invoke take-ownership --stack S --from OTHER`: move migration 013 in S's database from stack OTHER
to S, the only way it moves (dualwrite/objects/ownership.py records the owner in the database).
"""

from __future__ import annotations

from dualwrite import connection, db
from dualwrite.config import PROJECT, ConfigError
from dualwrite.objects.ownership import Owner, take_over
from dualwrite.stack_engine import StackEngine


def take_ownership(stack: str, from_stack: str, engine: StackEngine) -> Owner:
    """The previous owner; OwnedElsewhere (nothing changed) unless `from_stack` owns it now."""
    if not from_stack:
        raise ConfigError("take-ownership needs --from STACK: the stack that owns migration 013 in this database now")
    config, info = connection.conninfo(stack, engine=engine)
    connection.check_reachable(stack, engine)
    return db.change(info, lambda conn: take_over(conn, Owner(PROJECT, stack), from_stack),
                     lock_timeout=config.lock_timeout, statement_timeout=config.statement_timeout)
