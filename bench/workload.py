"""What the benchmark writes and how it measures it: pgbench scripts, seed SQL, log parsing.

The app's key space is synthetic but shaped like the real one: users with two children
each, one sheet per child per week, 5 habits per sheet and about 60% of days filled.
pgbench picks a key uniformly, so upserts hit existing sheets about as often as the
seeded fill says, and updates/deletes of a missing sheet are no-ops (as in the app).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import psycopg
from psycopg import sql

PGBENCH = "/usr/bin/pgbench"
CHILDREN_PER_USER = 2
FIRST_MONDAY = "2024-01-01"  # a Monday
PAYLOADS = 1000  # distinct habits arrays the app "sends"

# 1000 habits arrays: 5 named habits, 7 days each, ~60% of days with a status.
# The inner subqueries reference the outer row so random() runs per element.
PAYLOAD_SQL = """
CREATE TABLE bench_payload AS
SELECT n, (
    SELECT jsonb_agg(jsonb_build_object(
        'name', (ARRAY['Brush teeth', 'Read 20 minutes', 'Tidy toys', 'Eat vegetables', 'Bed on time'])[i],
        'times', (SELECT jsonb_agg(CASE WHEN random() < 0.6
                                        THEN (ARRAY['green', 'yellow', 'red'])[1 + floor(random() * 3)::int]
                                        ELSE '' END ORDER BY d)
                  FROM generate_series(0, 6) AS d WHERE i > 0 AND n > 0)
    ) ORDER BY i)
    FROM generate_series(1, 5) AS i WHERE n > 0
) AS habits
FROM generate_series(1, {payloads}) AS n
"""

# The key (u, c, w) as the app's columns; pgbench substitutes :u, :c, :w textually.
_KEY = """('00000000-0000-4000-8000-' || lpad(to_hex(:u), 12, '0'))::uuid AS user_id,
          'child ' || :c AS child_name, DATE '{monday}' + 7 * :w AS week_start_date""".format(monday=FIRST_MONDAY)
_WHERE = ("user_id = ('00000000-0000-4000-8000-' || lpad(to_hex(:u), 12, '0'))::uuid "
          "AND child_name = 'child ' || :c AND week_start_date = DATE '{monday}' + 7 * :w").format(monday=FIRST_MONDAY)

# The app's writes: 40% save a whole sheet (upsert), 40% set one day, 20% delete a sheet.
WRITE_MIX = f"""\\set u random(1, :users)
\\set c random(1, {CHILDREN_PER_USER})
\\set w random(0, :weeks - 1)
\\set r random(1, 100)
\\if :r <= 40
\\set p random(1, {PAYLOADS})
INSERT INTO habit_tracker AS t (user_id, child_name, week_start_date, week_period, habits)
SELECT k.user_id, k.child_name, k.week_start_date,
       k.week_start_date::text || ' ~ ' || (k.week_start_date + 6)::text, p.habits
FROM (SELECT {_KEY}) AS k, bench_payload AS p WHERE p.n = :p
ON CONFLICT (user_id, child_name, week_start_date)
DO UPDATE SET habits = EXCLUDED.habits, week_period = EXCLUDED.week_period, updated_at = now();
\\elif :r <= 80
\\set h random(0, 4)
\\set d random(0, 6)
\\set s random(1, 4)
UPDATE habit_tracker
SET habits = jsonb_set(habits, ARRAY[:h::text, 'times', :d::text], to_jsonb((ARRAY['green', 'yellow', 'red', ''])[:s])),
    updated_at = now()
WHERE {_WHERE};
\\else
DELETE FROM habit_tracker WHERE {_WHERE};
\\endif
"""

# An Edge Function logging requests: 80% new keys, 20% a key seen before (deterministic
# keys, e.g. operation + week, come back after their log expired). A reused key whose
# expired row a cleanup is deleting waits for that delete's row lock.
IDEMPOTENCY_MIX = """\\set r random(1, 100)
\\if :r <= 20
\\set k random(1, :keys)
INSERT INTO idempotency_log (key, operation, request_data, response_data, status)
VALUES ('key-' || :k, 'create_week', '{"retry": true}', '{"ok": true}', 'success')
ON CONFLICT (key) DO UPDATE SET response_data = EXCLUDED.response_data, created_at = now(),
    expires_at = now() + interval '24 hours';
\\else
INSERT INTO idempotency_log (key, operation, request_data, response_data, status)
VALUES ('new-' || gen_random_uuid(), 'update_habit_record', '{"day": 3}', '{"ok": true}', 'success');
\\endif
"""

SEED_TRACKER = f"""
INSERT INTO habit_tracker (user_id, child_name, week_start_date, week_period, habits)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(k.u), 12, '0'))::uuid, 'child ' || k.c,
       DATE '{FIRST_MONDAY}' + 7 * k.w,
       (DATE '{FIRST_MONDAY}' + 7 * k.w)::text || ' ~ ' || (DATE '{FIRST_MONDAY}' + 7 * k.w + 6)::text,
       p.habits
FROM (
    SELECT u, c, w, row_number() OVER () AS g
    FROM generate_series(1, %(users)s) AS u, generate_series(1, {CHILDREN_PER_USER}) AS c,
         generate_series(0, %(weeks)s - 1) AS w
    WHERE random() < %(fill)s
    LIMIT %(limit)s
) AS k
JOIN bench_payload AS p ON p.n = 1 + k.g %% {PAYLOADS}
"""

# The floor of the backfill: the same projection as four set-based INSERT ... SELECTs.
PROJECT_ALL = [
    """INSERT INTO children (user_id, name)
       SELECT DISTINCT h.user_id, h.child_name FROM habit_tracker AS h
       ON CONFLICT (user_id, name) DO NOTHING""",
    """INSERT INTO weeks (child_id, week_start_date, week_period, legacy_id)
       SELECT c.id, h.week_start_date, h.week_period, h.id
       FROM habit_tracker AS h JOIN children AS c ON c.user_id = h.user_id AND c.name = h.child_name""",
    """INSERT INTO habits (week_id, name, position)
       SELECT w.id, e.elem ->> 'name', (e.ord - 1)::integer
       FROM habit_tracker AS h JOIN weeks AS w ON w.legacy_id = h.id
       CROSS JOIN LATERAL jsonb_array_elements(h.habits) WITH ORDINALITY AS e (elem, ord)""",
    """INSERT INTO habit_records (habit_id, record_date, status)
       SELECT hb.id, h.week_start_date + d.i, h.habits -> hb.position -> 'times' ->> d.i
       FROM habit_tracker AS h JOIN weeks AS w ON w.legacy_id = h.id JOIN habits AS hb ON hb.week_id = w.id
       CROSS JOIN generate_series(0, 6) AS d (i)
       WHERE h.habits -> hb.position -> 'times' ->> d.i <> ''""",
]

# The floor of the drift check: one full read of the same tables, hashing every row.
HASH_READ = """
SELECT (SELECT bit_xor(hashtextextended(t::text, 0)) FROM habit_tracker AS t),
       (SELECT bit_xor(hashtextextended(t::text, 0)) FROM children AS t),
       (SELECT bit_xor(hashtextextended(t::text, 0)) FROM weeks AS t),
       (SELECT bit_xor(hashtextextended(t::text, 0)) FROM habits AS t),
       (SELECT bit_xor(hashtextextended(t::text, 0)) FROM habit_records AS t),
       (SELECT bit_xor(hashtextextended(t::text, 0)) FROM dual_write_errors AS t)
"""

SEED_IDEMPOTENCY = """
INSERT INTO idempotency_log (key, operation, request_data, response_data, status, created_at, expires_at)
SELECT 'key-' || g, (ARRAY['create_week', 'update_habit_record', 'delete_week'])[1 + g %% 3],
       jsonb_build_object('week', g), jsonb_build_object('ok', true),
       (ARRAY['success', 'success', 'failed', 'not_implemented'])[1 + g %% 4],
       ts, ts + interval '24 hours'
FROM generate_series(1, %(expired)s + %(live)s) AS g
CROSS JOIN LATERAL (SELECT CASE WHEN g <= %(expired)s
                                THEN now() - interval '48 hours' + (g::float8 / %(expired)s) * interval '23 hours'
                                ELSE now() - (g - %(expired)s) * interval '1 second' END AS ts) AS t
"""

NEW_SCHEMA = ("children", "weeks", "habits", "habit_records")


def create_payloads(conn: psycopg.Connection) -> None:
    conn.execute(sql.SQL(PAYLOAD_SQL).format(payloads=sql.Literal(PAYLOADS)))
    conn.execute("ALTER TABLE bench_payload ADD PRIMARY KEY (n)")


def seed_tracker(conn: psycopg.Connection, users: int, weeks: int, fill: float, limit: int | None = None) -> int:
    """Insert sheets without firing triggers (as if written before the migration); rows inserted."""
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        cur = conn.execute(SEED_TRACKER, {"users": users, "weeks": weeks, "fill": fill, "limit": limit or 2**62})
        return cur.rowcount


def project_all(conn: psycopg.Connection, *, check_foreign_keys: bool = True) -> None:
    """The projection as set-based INSERT ... SELECTs: the backfill's floor (foreign keys
    checked, as the backfill's are). Seeding a run before it starts skips the checks (the rows
    are consistent by construction), which makes it about a third faster."""
    with conn.transaction():
        if not check_foreign_keys:
            conn.execute("SET LOCAL session_replication_role = replica")
        for statement in PROJECT_ALL:
            conn.execute(statement)


def new_schema_writes(conn: psycopg.Connection) -> int:
    """Rows inserted + updated + deleted so far in the new schema's tables (cumulative stats)."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
        "WHERE relname = ANY (%s)", (list(NEW_SCHEMA),)
    ).fetchone()
    return int(row[0])


@dataclass
class PgbenchResult:
    tps: float
    transactions: int
    latencies_ms: list[float] = field(repr=False)
    finished_at: list[float] = field(repr=False)  # epoch seconds of each transaction's end
    failed: int = 0

    def _during(self, overlapping: tuple[float, float] | None) -> list[float]:
        """Latencies of the transactions that ran at some point inside (start, end) epoch seconds."""
        if overlapping is None:
            return list(self.latencies_ms)
        start, end = overlapping
        return [lat for lat, at in zip(self.latencies_ms, self.finished_at) if at >= start and at - lat / 1000 <= end]

    def percentile(self, q: float, overlapping: tuple[float, float] | None = None) -> float:
        return percentile(self._during(overlapping), q)

    def count(self, overlapping: tuple[float, float] | None = None) -> int:
        return len(self._during(overlapping))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


class Pgbench:
    """One pgbench run with per-transaction logs (-l), started in the background."""

    def __init__(self, conn_args: Sequence[str], script: str, *, clients: int, seconds: float,
                 variables: dict[str, int], rate: float | None = None, pgoptions: str | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="bench-pgbench-")
        folder = Path(self._dir.name)
        script_file = folder / "script.sql"
        script_file.write_text(script, encoding="utf-8")
        self.command = [PGBENCH, "-n", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(int(seconds)),
                        "-f", str(script_file), "-l", "--log-prefix", str(folder / "tx"), *conn_args]
        for key, value in variables.items():
            self.command += ["-D", f"{key}={value}"]
        if rate:
            self.command += ["-R", str(rate)]
        self._stderr = (folder / "stderr.txt").open("w")
        self.started = time.time()
        env = None if pgoptions is None else {**os.environ, "PGOPTIONS": pgoptions}
        self._proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
                                      cwd=folder, env=env)

    def stop(self) -> PgbenchResult:
        """End the run now (SIGTERM) and read its transaction logs. pgbench buffers each log, so
        the last second or two of transactions may be missing, and there is no summary (tps 0):
        for a writer that only has to outlast an operation by a few seconds."""
        self._proc.terminate()
        return self.wait(stopped=True)

    def wait(self, stopped: bool = False) -> PgbenchResult:
        stdout, _ = self._proc.communicate()
        self._stderr.close()
        folder = Path(self._dir.name)
        if self._proc.returncode != 0 and not (stopped and self._proc.returncode == -signal.SIGTERM):
            tail = (folder / "stderr.txt").read_text(errors="replace")[-1500:]
            self._dir.cleanup()
            raise RuntimeError(f"pgbench failed (exit {self._proc.returncode}): {tail}\n{stdout[-1500:]}")
        tps_match = re.search(r"^tps = ([0-9.]+)", stdout, re.MULTILINE)
        failed_match = re.search(r"number of failed transactions: (\d+)", stdout)
        latencies, finished = [], []
        for log in folder.glob("tx.*"):
            for line in log.read_text().splitlines():
                parts = line.split()
                # client_id transaction_no time script_no time_epoch time_us [schedule_lag]
                if len(parts) >= 6 and parts[2] not in ("skipped", "failed"):
                    latencies.append(int(parts[2]) / 1000.0)
                    finished.append(int(parts[4]) + int(parts[5]) / 1e6)
        self._dir.cleanup()
        return PgbenchResult(tps=float(tps_match.group(1)) if tps_match else 0.0, transactions=len(latencies),
                             latencies_ms=latencies, finished_at=finished,
                             failed=int(failed_match.group(1)) if failed_match else 0)


# --- Floors of the write rows -------------------------------------------------------------

# Empty triggers: the cost of firing a row-level PL/pgSQL trigger at all, and of raising the
# guide's two messages from one (same texts and arguments as sql/013/sync_old_to_new.phase0*.sql),
# with nothing else. Plain functions: what Phase 0 adds over them is its own body and shape.
FLOOR_TRIGGER_NAME = "bench_floor"
FLOOR_FUNCTION_NAME = "bench_floor_trigger"
FLOOR_BODIES = {
    "empty": "BEGIN RETURN NULL; END",
    "notice": """BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE NOTICE 'Dual-write trigger fired: table=%, operation=%, id=%', TG_TABLE_NAME, TG_OP, OLD.id;
        RAISE NOTICE 'Trigger details: child_name=%, week_start_date=%',
            OLD.child_name, to_char(OLD.week_start_date, 'YYYY-MM-DD');
    ELSE
        RAISE NOTICE 'Dual-write trigger fired: table=%, operation=%, id=%', TG_TABLE_NAME, TG_OP, NEW.id;
        RAISE NOTICE 'Trigger details: child_name=%, week_start_date=%',
            NEW.child_name, to_char(NEW.week_start_date, 'YYYY-MM-DD');
    END IF;
    RETURN NULL;
END""",
    "log": """BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE LOG 'Dual-write trigger fired: table=%, operation=%, id=%', TG_TABLE_NAME, TG_OP, OLD.id;
        RAISE LOG 'Trigger details: child_name=%, week_start_date=%',
            OLD.child_name, to_char(OLD.week_start_date, 'YYYY-MM-DD');
    ELSE
        RAISE LOG 'Dual-write trigger fired: table=%, operation=%, id=%', TG_TABLE_NAME, TG_OP, NEW.id;
        RAISE LOG 'Trigger details: child_name=%, week_start_date=%',
            NEW.child_name, to_char(NEW.week_start_date, 'YYYY-MM-DD');
    END IF;
    RETURN NULL;
END""",
}

# Diagnostic variant of sql/013/sync_old_to_new.phase0_server.sql: ONE server-log entry per
# row, the second line as its DETAIL (same texts; the entry reads "LOG: Dual-write trigger
# fired: ..." then "DETAIL: Trigger details: ...").
PHASE0_SERVER_ONE_MESSAGE = """
CREATE OR REPLACE FUNCTION public.sync_old_to_new()
RETURNS trigger
LANGUAGE plpgsql
SECURITY INVOKER
SET search_path = ''
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE LOG 'Dual-write trigger fired: table=%, operation=%, id=%', TG_TABLE_NAME, TG_OP, OLD.id
            USING DETAIL = 'Trigger details: child_name=' || OLD.child_name
                           || ', week_start_date=' || to_char(OLD.week_start_date, 'YYYY-MM-DD');
    ELSE
        RAISE LOG 'Dual-write trigger fired: table=%, operation=%, id=%', TG_TABLE_NAME, TG_OP, NEW.id
            USING DETAIL = 'Trigger details: child_name=' || NEW.child_name
                           || ', week_start_date=' || to_char(NEW.week_start_date, 'YYYY-MM-DD');
    END IF;
    RETURN NULL;
END;
$$
"""


def create_floor_trigger(conn: psycopg.Connection, body: str, *, pinned: bool = False) -> None:
    """A row-level AFTER trigger on habit_tracker running one of FLOOR_BODIES; `pinned`: with the
    shape Phase 0's function had until issue 19 (SET search_path = '': a per-call GUC switch)."""
    shape = sql.SQL("SET search_path = '' " if pinned else "")
    conn.execute(sql.SQL(
        "CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql {shape}AS {body}; "
        "CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON public.habit_tracker "
        "FOR EACH ROW EXECUTE FUNCTION {function}()"
    ).format(function=sql.Identifier(FLOOR_FUNCTION_NAME), trigger=sql.Identifier(FLOOR_TRIGGER_NAME),
             shape=shape, body=sql.Literal(FLOOR_BODIES[body])))


def drop_floor_trigger(conn: psycopg.Connection) -> None:
    conn.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON public.habit_tracker; DROP FUNCTION IF EXISTS {}()").format(
        sql.Identifier(FLOOR_TRIGGER_NAME), sql.Identifier(FLOOR_FUNCTION_NAME)))


# Backend CPU per single-row UPDATE (the Phase 0 rows judged at 3%): one session updates the first
# `bench.cpu_updates` sheets one statement each, so each row trigger fires once per statement as
# the app's writes fire it, and nothing but this session's own work lands in its CPU time.
CPU_UPDATES = """\
DO $$
DECLARE
    sheet record;
BEGIN
    FOR sheet IN SELECT id FROM public.habit_tracker ORDER BY id
                 LIMIT pg_catalog.current_setting('bench.cpu_updates')::int LOOP
        UPDATE public.habit_tracker SET updated_at = pg_catalog.now() WHERE id = sheet.id;
    END LOOP;
END
$$"""


def backend_cpu_ns(pid: int) -> int:
    """A backend's time on a CPU so far, user and system, in nanoseconds (/proc/<pid>/schedstat's
    first field: the scheduler's own count, finer than the clock ticks of /proc/<pid>/stat). The
    bench's clusters run on this machine; another's backend has no such file here."""
    path = Path(f"/proc/{pid}/schedstat")
    if not path.exists():
        raise RuntimeError(f"bench: {path} does not exist: the backend CPU rows need the cluster's server "
                           "on this machine (the bench's own `bench` instance or a test's cluster).")
    return int(path.read_text().split()[0])


# APP_MIX spells out the constants of WRITE_MIX's key space (2 children per user, 1000
# payloads, the first Monday) instead of formatting them into the SQL.
assert (CHILDREN_PER_USER, PAYLOADS, FIRST_MONDAY) == (2, 1000, "2024-01-01")

# Phase 1's floor: no trigger; the app writes habit_tracker AND the new schema itself, in the
# same transaction and one statement per request (writable CTEs, one round trip). Same key
# choice, same mix and same payloads as WRITE_MIX, and the same new-schema rows as the Phase 1
# trigger writes (bench/run.py checks dual_write_drift() = 0 after every run of it). The app
# knows what it sends, so it writes its habits and days without diffing them first.
APP_MIX = """\\set u random(1, :users)
\\set c random(1, 2)
\\set w random(0, :weeks - 1)
\\set r random(1, 100)
\\if :r <= 40
\\set p random(1, 1000)
WITH src AS (
    INSERT INTO habit_tracker AS t (user_id, child_name, week_start_date, week_period, habits)
    SELECT k.user_id, k.child_name, k.week_start_date,
           k.week_start_date::text || ' ~ ' || (k.week_start_date + 6)::text, p.habits
    FROM (SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(:u), 12, '0'))::uuid AS user_id,
                 'child ' || :c AS child_name, DATE '2024-01-01' + 7 * :w AS week_start_date) AS k,
         bench_payload AS p
    WHERE p.n = :p
    ON CONFLICT (user_id, child_name, week_start_date)
    DO UPDATE SET habits = EXCLUDED.habits, week_period = EXCLUDED.week_period, updated_at = now()
    RETURNING t.id, t.user_id, t.child_name, t.week_start_date, t.week_period, t.habits
),
new_child AS (
    INSERT INTO children (user_id, name) SELECT src.user_id, src.child_name FROM src
    ON CONFLICT (user_id, name) DO NOTHING
    RETURNING id
),
child AS (
    SELECT id FROM new_child
    UNION ALL
    SELECT c.id FROM children AS c JOIN src ON c.user_id = src.user_id AND c.name = src.child_name
    LIMIT 1
),
week AS (
    INSERT INTO weeks AS w (child_id, week_start_date, week_period, legacy_id)
    SELECT child.id, src.week_start_date, src.week_period, src.id FROM child, src
    ON CONFLICT (child_id, week_start_date) DO UPDATE
        SET week_period = EXCLUDED.week_period, legacy_id = EXCLUDED.legacy_id, updated_at = now()
    RETURNING w.id
),
want AS (
    SELECT (e.ord - 1)::integer AS pos, e.elem ->> 'name' AS name, e.elem -> 'times' AS times
    FROM src CROSS JOIN LATERAL jsonb_array_elements(src.habits) WITH ORDINALITY AS e (elem, ord)
),
dropped AS (
    DELETE FROM habits AS h USING week
    WHERE h.week_id = week.id AND h.position >= (SELECT count(*) FROM want)
),
habit AS (
    INSERT INTO habits AS h (week_id, name, position)
    SELECT week.id, want.name, want.pos FROM week, want
    ON CONFLICT (week_id, position) DO UPDATE SET name = EXCLUDED.name
    RETURNING h.id, h.position
),
cleared AS (
    DELETE FROM habit_records AS rec
    USING habit JOIN want ON want.pos = habit.position, src
    WHERE rec.habit_id = habit.id
      AND coalesce(CASE WHEN rec.record_date - src.week_start_date BETWEEN 0 AND 6
                        THEN want.times ->> (rec.record_date - src.week_start_date) END, '') = ''
)
INSERT INTO habit_records AS rec (habit_id, record_date, status)
SELECT habit.id, src.week_start_date + d.i, want.times ->> d.i
FROM habit JOIN want ON want.pos = habit.position CROSS JOIN src CROSS JOIN generate_series(0, 6) AS d (i)
WHERE want.times ->> d.i <> ''
ON CONFLICT (habit_id, record_date) DO UPDATE SET status = EXCLUDED.status;
\\elif :r <= 80
\\set h random(0, 4)
\\set d random(0, 6)
\\set s random(1, 4)
WITH src AS (
    UPDATE habit_tracker
    SET habits = jsonb_set(habits, ARRAY[:h::text, 'times', :d::text], to_jsonb((ARRAY['green', 'yellow', 'red', ''])[:s])),
        updated_at = now()
    WHERE user_id = ('00000000-0000-4000-8000-' || lpad(to_hex(:u), 12, '0'))::uuid
      AND child_name = 'child ' || :c AND week_start_date = DATE '2024-01-01' + 7 * :w
    RETURNING id, week_start_date
),
day AS (
    SELECT hb.id AS habit_id, src.week_start_date + :d AS record_date,
           (ARRAY['green', 'yellow', 'red', ''])[:s] AS status
    FROM src JOIN weeks AS w ON w.legacy_id = src.id JOIN habits AS hb ON hb.week_id = w.id AND hb.position = :h
),
cleared AS (
    DELETE FROM habit_records AS rec USING day
    WHERE day.status = '' AND rec.habit_id = day.habit_id AND rec.record_date = day.record_date
)
INSERT INTO habit_records AS rec (habit_id, record_date, status)
SELECT day.habit_id, day.record_date, day.status FROM day WHERE day.status <> ''
ON CONFLICT (habit_id, record_date) DO UPDATE SET status = EXCLUDED.status;
\\else
WITH src AS (
    DELETE FROM habit_tracker
    WHERE user_id = ('00000000-0000-4000-8000-' || lpad(to_hex(:u), 12, '0'))::uuid
      AND child_name = 'child ' || :c AND week_start_date = DATE '2024-01-01' + 7 * :w
    RETURNING id
)
DELETE FROM weeks AS w USING src WHERE w.legacy_id = src.id;
\\endif
"""

# Bulk write: one UPDATE of every habit_tracker row (BULK_ROWS of them) in one transaction,
# setting day 0 of habit 0 to a status that differs from the previous bulk run's, so every
# run changes data the trigger must project.
BULK_ROWS = 10_000
BULK_UPDATE = ("UPDATE habit_tracker SET habits = jsonb_set(habits, '{0,times,0}', to_jsonb(%(status)s::text)), "
               "updated_at = now()")
# The same bulk write with no trigger, the app updating both copies itself in one statement: it
# knows it set day 0 of habit 0 (a status, never ''), so it writes that record and diffs nothing.
# The least the new schema's copy can cost a set-based writer: the floor of Phase 1's bulk path.
BULK_APP_SIDE = """
WITH src AS (
    UPDATE habit_tracker SET habits = jsonb_set(habits, '{0,times,0}', to_jsonb(%(status)s::text)), updated_at = now()
    RETURNING id, week_start_date
)
INSERT INTO habit_records AS rec (habit_id, record_date, status)
SELECT hb.id, src.week_start_date, %(status)s
FROM src JOIN weeks AS w ON w.legacy_id = src.id JOIN habits AS hb ON hb.week_id = w.id AND hb.position = 0
ON CONFLICT (habit_id, record_date) DO UPDATE SET status = EXCLUDED.status
"""
