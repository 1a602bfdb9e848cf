"""Short, bounded database transactions.

Every change this project makes goes through `change()`: one transaction with
`lock_timeout` and `statement_timeout` set locally, retried with backoff when it
could not get a lock in time, so a deploy never queues behind (or in front of) the
app's writes for long, and a failure leaves nothing half-applied.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

import psycopg
from psycopg import sql

from dualwrite import lock_waits

T = TypeVar("T")

LOCK_RETRIES = 5
# The defaults of every bounded change (a stack may set its own: lock_timeout, statement_timeout).
LOCK_TIMEOUT = "3s"
STATEMENT_TIMEOUT = "30s"


def connect(conninfo: dict[str, Any], **kwargs: Any) -> psycopg.Connection:
    """A connection that is safe through a transaction-mode pooler (Supavisor's port 6543,
    PgBouncer): no server-side prepared statements, which another client sharing the server
    connection would collide with (DuplicatePreparedStatement)."""
    return psycopg.connect(**conninfo, prepare_threshold=None, **kwargs)


@contextmanager
def bounded_transaction(
    conn: psycopg.Connection, lock_timeout: str, statement_timeout: str,
    blockers: dict[int, lock_waits.Blocker] | None = None,
) -> Iterator[psycopg.Connection]:
    """A transaction whose locks and statements are bounded; SET LOCAL ends with it. The sessions
    it waits for meanwhile are added to `blockers` (lock_waits.py). The backend pid is read inside
    the transaction: through a transaction pooler that is the server connection of this
    transaction, not the one the client first met."""
    with conn.transaction():
        pid = conn.execute(
            sql.SQL("SELECT set_config('lock_timeout', {}, true), set_config('statement_timeout', {}, true), "
                    "pg_backend_pid()").format(sql.Literal(lock_timeout), sql.Literal(statement_timeout))
        ).fetchone()[2]  # type: ignore[index]
        watch = lock_waits.BlockerWatch(lock_waits.conninfo_of(conn), pid if blockers is not None else None)
        try:
            with watch:
                yield conn
        finally:
            if blockers is not None:  # after the watch has stopped: no sample is being added
                blockers.update(watch.seen)


def lock_in_turn(conn: psycopg.Connection, tables: Sequence[sql.Composable]) -> None:
    """Lock `tables` ACCESS EXCLUSIVE one after another, inside the caller's bounded transaction. The first may wait the
    whole lock_timeout: nothing is held yet. Each next one waits at most half of deadlock_timeout:
    an app transaction that holds it and then asks for a table already locked here would close a
    cycle, and PostgreSQL's deadlock check (run by a session after deadlock_timeout of waiting)
    cancels the session that has not checked yet, the app's, when the deploy has waited longer. No
    single order of the tables avoids that: the new app's writes take them in more than one order
    (a week screen's save reads habits, writes habit_records, and its reverse sync reads children
    at commit). Timing out first, the deploy lets go of everything and `run_bounded` retries it."""
    statements = [statement for table in tables for statement in lock_sql([table])]
    if not statements:
        return
    conn.execute(statements[0])
    if len(statements) == 1:
        return
    settings: dict[str, int] = dict(conn.execute(
        "SELECT name, setting::bigint FROM pg_settings WHERE name IN ('lock_timeout', 'deadlock_timeout')").fetchall())
    held_ms, deadlock_ms = settings["lock_timeout"], settings["deadlock_timeout"]
    next_ms = max(1, deadlock_ms // 2 if held_ms == 0 else min(held_ms, deadlock_ms // 2))
    conn.execute(sql.SQL("SELECT set_config('lock_timeout', {}, true)").format(sql.Literal(f"{next_ms}ms")))
    for statement in statements[1:]:
        conn.execute(statement)
    conn.execute(sql.SQL("SELECT set_config('lock_timeout', {}, true)").format(sql.Literal(f"{held_ms}ms")))


def existing_tables(conn: psycopg.Connection, names: Sequence[str]) -> list[sql.Identifier]:
    """Those of `names` (`table` in public, or `schema.table`) the database has, in the given order."""
    tables = [table_identifier(name) for name in names]
    existing = conn.execute(
        "SELECT position FROM unnest(%s::text[]) WITH ORDINALITY AS given(name, position) "
        "WHERE to_regclass(name) IS NOT NULL ORDER BY position", ([table.as_string(conn) for table in tables],)
    ).fetchall()
    return [tables[row[0] - 1] for row in existing]


def table_identifier(name: str) -> sql.Identifier:
    """`table` (in public) or `schema.table`, as an identifier."""
    schema, _, table = name.rpartition(".")
    return sql.Identifier(schema or "public", table)


def lock_sql(tables: Sequence[sql.Composable]) -> list[sql.Composed]:
    """What lock_in_turn takes, as one statement for the operator to read (none for no table)."""
    return [sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.SQL(", ").join(tables))] if tables else []


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: give the app's transactions room to finish."""
    return min(8.0, 0.25 * 2**attempt) * (0.5 + random.random())


def run_bounded(
    conn: psycopg.Connection,
    work: Callable[[psycopg.Connection], T],
    *,
    lock_timeout: str,
    statement_timeout: str,
    retries: int = LOCK_RETRIES,
    sleep: Callable[[float], None] = time.sleep,
    retry_on: tuple[type[Exception], ...] = (psycopg.errors.LockNotAvailable,),
) -> T:
    """Run `work` in one bounded transaction on `conn`; retry the whole of it on lock timeouts
    (or on whatever `retry_on` names). Out of retries on a lock timeout, it raises
    `LockWaitExhausted`, naming the sessions the attempts waited for."""
    attempt = 0
    blockers: dict[int, lock_waits.Blocker] = {}
    while True:
        try:
            with bounded_transaction(conn, lock_timeout, statement_timeout, blockers):
                return work(conn)
        except retry_on as error:
            attempt += 1
            if attempt > retries:
                if isinstance(error, psycopg.errors.LockNotAvailable):
                    raise lock_waits.exhausted(error, attempt, lock_timeout, blockers) from error
                raise
            sleep(backoff(attempt))


def change(
    conninfo: dict[str, Any],
    work: Callable[[psycopg.Connection], T],
    *,
    lock_timeout: str,
    statement_timeout: str,
    retries: int = LOCK_RETRIES,
) -> T:
    """`run_bounded` on a connection of its own (what the providers and tasks use)."""
    with connect(conninfo, autocommit=True) as conn:
        return run_bounded(conn, work, lock_timeout=lock_timeout, statement_timeout=statement_timeout, retries=retries)


@dataclass(frozen=True)
class Session:
    """Where and how bounded changes run: a stack's connection settings and timeouts.

    With `conn`, every change runs on that open connection (tests, tasks holding one);
    without, each change opens a connection of its own (the Pulumi provider).
    """

    conninfo: dict[str, Any]
    lock_timeout: str = LOCK_TIMEOUT
    statement_timeout: str = STATEMENT_TIMEOUT
    conn: psycopg.Connection | None = None
    retries: int = LOCK_RETRIES

    def change(self, work: Callable[[psycopg.Connection], T]) -> T:
        if self.conn is not None:
            return run_bounded(self.conn, work, lock_timeout=self.lock_timeout,
                               statement_timeout=self.statement_timeout, retries=self.retries)
        return change(self.conninfo, work, lock_timeout=self.lock_timeout, statement_timeout=self.statement_timeout,
                      retries=self.retries)

    def outside_transaction(self, statement: sql.SQL | sql.Composed,
                            before_each: Callable[[], None] | None = None) -> None:
        """One statement that cannot run in a transaction block (CREATE INDEX CONCURRENTLY), bounded
        by the same timeouts, retried on lock timeouts, `before_each` run before every attempt (a
        timed-out CONCURRENTLY build leaves an invalid index the next attempt must drop first). On a
        connection of its own when this session opens them, so the session-level timeouts end with it.
        Out of retries, `LockWaitExhausted` names the sessions it waited for."""
        settings = sql.SQL("SELECT set_config('lock_timeout', {}, false), set_config('statement_timeout', {}, false), "
                           "pg_backend_pid()").format(sql.Literal(self.lock_timeout), sql.Literal(self.statement_timeout))
        reset = sql.SQL("RESET lock_timeout; RESET statement_timeout")
        attempt = 0
        blockers: dict[int, lock_waits.Blocker] = {}

        def run(conn: psycopg.Connection) -> None:
            pid = conn.execute(settings).fetchone()[2]  # type: ignore[index]
            watch = lock_waits.BlockerWatch(lock_waits.conninfo_of(conn), pid)
            try:
                with watch:
                    conn.execute(statement)
            finally:
                blockers.update(watch.seen)

        while True:
            if before_each is not None:
                before_each()
            try:
                if self.conn is not None:
                    try:
                        run(self.conn)
                    finally:
                        self.conn.execute(reset)
                else:
                    with connect(self.conninfo, autocommit=True) as conn:
                        run(conn)
                return
            except psycopg.errors.LockNotAvailable as error:
                attempt += 1
                if attempt > self.retries:
                    raise lock_waits.exhausted(error, attempt, self.lock_timeout, blockers) from error
                time.sleep(backoff(attempt))

    @staticmethod
    def on(conn: psycopg.Connection, lock_timeout: str = LOCK_TIMEOUT, statement_timeout: str = STATEMENT_TIMEOUT,
           retries: int = LOCK_RETRIES) -> "Session":
        return Session({}, lock_timeout, statement_timeout, conn, retries)
