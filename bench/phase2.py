"""Figure 1c: what Phase 2 (both directions) costs the app's two releases, each against its floor
in the same interleaved rounds (bench/run.py's statistics: median of per-round TPS ratios).

The NEW client (the app release on the normalized schema) writes children/weeks/habits/
habit_records with the same key space and the same 40/40/20 mix as the old client's WRITE_MIX:
save a whole week (the week screen's save, one transaction), set one day, delete a week.

    new client, Phase 2          NEW_MIX; the reverse sync rebuilds habit_tracker once per
                                 transaction (sql/013/sync_new_to_old.sql and its triggers)
    new client writing both      NEW_BOTH_MIX, no trigger: the app keeps habit_tracker itself in
    copies itself (the floor)    the same transaction (upsert the sheet, jsonb_set one day, delete
                                 the sheet) - what the team would write without the reverse sync
    new client, no trigger       NEW_MIX with no trigger: habit_tracker not kept at all (the bare
                                 write, for scale)

The OLD client (WRITE_MIX, habit_tracker) in Phase 2, where its writes still flow forward and
the old_client_writes trigger records them, against Phase 1 and against no trigger; and, to say
where Phase 2's extra cost goes, against Phase 2 without that trigger (a diagnostic variant).

Both Phase 2 floors are checked to write what the sync writes: after every run of the app
writing both copies and of Phase 2, dual_write_drift() and dual_write_reverse_drift() must be 0.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Callable

import psycopg
from psycopg import sql

from bench import workload
from bench.workload import Pgbench
from dualwrite import migration

if TYPE_CHECKING:
    from bench.run import Bench

# The key (u, c, w) of WRITE_MIX, spelled out as APP_MIX does (2 children per user, the first Monday).
_USER = "('00000000-0000-4000-8000-' || lpad(to_hex(:u), 12, '0'))::uuid"
_CHILD = "'child ' || :c"
_WEEK = "DATE '2024-01-01' + 7 * :w"
# Save a whole week: its child, the week, 5 habits by position and their days (one transaction).
_SAVE_WEEK = f"""INSERT INTO public.children (user_id, name) VALUES ({_USER}, {_CHILD}) ON CONFLICT (user_id, name) DO NOTHING;
WITH week AS (
    INSERT INTO public.weeks AS w (child_id, week_start_date, week_period)
    SELECT c.id, {_WEEK}, ({_WEEK})::text || ' ~ ' || ({_WEEK} + 6)::text
    FROM public.children AS c WHERE c.user_id = {_USER} AND c.name = {_CHILD}
    ON CONFLICT (child_id, week_start_date) DO UPDATE SET week_period = EXCLUDED.week_period, updated_at = now()
    RETURNING w.id, w.week_start_date
),
want AS (
    SELECT (e.ord - 1)::integer AS pos, e.elem ->> 'name' AS name, e.elem -> 'times' AS times
    FROM public.bench_payload AS p CROSS JOIN LATERAL jsonb_array_elements(p.habits) WITH ORDINALITY AS e (elem, ord)
    WHERE p.n = :p
),
habit AS (
    INSERT INTO public.habits AS h (week_id, name, position)
    SELECT week.id, want.name, want.pos FROM week, want
    ON CONFLICT (week_id, position) DO UPDATE SET name = EXCLUDED.name
    RETURNING h.id, h.position
),
cleared AS (
    DELETE FROM public.habit_records AS rec
    USING habit JOIN want ON want.pos = habit.position, week
    WHERE rec.habit_id = habit.id
      AND coalesce(CASE WHEN rec.record_date - week.week_start_date BETWEEN 0 AND 6
                        THEN want.times ->> (rec.record_date - week.week_start_date) END, '') = ''
)
INSERT INTO public.habit_records AS rec (habit_id, record_date, status)
SELECT habit.id, week.week_start_date + d.i, want.times ->> d.i
FROM habit JOIN want ON want.pos = habit.position CROSS JOIN week CROSS JOIN generate_series(0, 6) AS d (i)
WHERE want.times ->> d.i <> ''
ON CONFLICT (habit_id, record_date) DO UPDATE SET status = EXCLUDED.status;
"""

# ... and the sheet in habit_tracker, by the app itself (the floor): upsert it, point the week at it.
_SAVE_SHEET = f"""WITH src AS (
    INSERT INTO public.habit_tracker AS t (user_id, child_name, week_start_date, week_period, habits)
    SELECT {_USER}, {_CHILD}, {_WEEK}, ({_WEEK})::text || ' ~ ' || ({_WEEK} + 6)::text, p.habits
    FROM public.bench_payload AS p WHERE p.n = :p
    ON CONFLICT (user_id, child_name, week_start_date)
    DO UPDATE SET habits = EXCLUDED.habits, week_period = EXCLUDED.week_period, updated_at = now()
    RETURNING t.id
)
UPDATE public.weeks AS w SET legacy_id = src.id
FROM src, public.children AS c
WHERE c.id = w.child_id AND c.user_id = {_USER} AND c.name = {_CHILD} AND w.week_start_date = {_WEEK}
  AND w.legacy_id IS DISTINCT FROM src.id;
"""

_DAY = f"""WITH day AS (
    SELECT hb.id AS habit_id, w.week_start_date + :d AS record_date, w.legacy_id,
           (ARRAY['green', 'yellow', 'red', ''])[:s] AS status
    FROM public.children AS c
    JOIN public.weeks AS w ON w.child_id = c.id AND w.week_start_date = {_WEEK}
    JOIN public.habits AS hb ON hb.week_id = w.id AND hb.position = :h
    WHERE c.user_id = {_USER} AND c.name = {_CHILD}
    -- the habit stays until this commits: a week deleted meanwhile is skipped, not an FK error (the app retries)
    FOR KEY SHARE OF hb
),
cleared AS (
    DELETE FROM public.habit_records AS rec USING day
    WHERE day.status = '' AND rec.habit_id = day.habit_id AND rec.record_date = day.record_date
)"""
_SET_DAY = f"""{_DAY}
INSERT INTO public.habit_records AS rec (habit_id, record_date, status)
SELECT day.habit_id, day.record_date, day.status FROM day WHERE day.status <> ''
ON CONFLICT (habit_id, record_date) DO UPDATE SET status = EXCLUDED.status;
"""
_SET_DAY_BOTH = f"""{_DAY},
written AS (
    INSERT INTO public.habit_records AS rec (habit_id, record_date, status)
    SELECT day.habit_id, day.record_date, day.status FROM day WHERE day.status <> ''
    ON CONFLICT (habit_id, record_date) DO UPDATE SET status = EXCLUDED.status
)
UPDATE public.habit_tracker AS t
SET habits = jsonb_set(t.habits, ARRAY[:h::text, 'times', :d::text], to_jsonb(day.status)), updated_at = now()
FROM day WHERE t.id = day.legacy_id;
"""

_DELETE_WEEK = f"""DELETE FROM public.weeks AS w USING public.children AS c
WHERE c.id = w.child_id AND c.user_id = {_USER} AND c.name = {_CHILD} AND w.week_start_date = {_WEEK};
"""
_DELETE_BOTH = f"""WITH gone AS (
    DELETE FROM public.weeks AS w USING public.children AS c
    WHERE c.id = w.child_id AND c.user_id = {_USER} AND c.name = {_CHILD} AND w.week_start_date = {_WEEK}
    RETURNING w.legacy_id
)
DELETE FROM public.habit_tracker AS t USING gone WHERE t.id = gone.legacy_id;
"""


def _mix(save: str, set_day: str, delete: str) -> str:
    return f"""\\set u random(1, :users)
\\set c random(1, 2)
\\set w random(0, :weeks - 1)
\\set r random(1, 100)
\\if :r <= 40
\\set p random(1, 1000)
BEGIN;
{save}COMMIT;
\\elif :r <= 80
\\set h random(0, 4)
\\set d random(0, 6)
\\set s random(1, 4)
{set_day}\\else
{delete}\\endif
"""


NEW_MIX = _mix(_SAVE_WEEK, _SET_DAY, _DELETE_WEEK)
NEW_BOTH_MIX = _mix(_SAVE_WEEK + _SAVE_SHEET, _SET_DAY_BOTH, _DELETE_BOTH)
assert workload.CHILDREN_PER_USER == 2 and workload.PAYLOADS == 1000 and workload.FIRST_MONDAY == "2024-01-01"

# (key, label, pgbench script, what is installed)
VARIANTS = (
    ("old_none", "old client, no trigger", workload.WRITE_MIX, "none"),
    ("old_phase1", "old client, Phase 1", workload.WRITE_MIX, "phase1"),
    ("old_phase2", "old client, Phase 2", workload.WRITE_MIX, "phase2"),
    ("old_phase2_uncounted", "old client, Phase 2 without the old_client_writes count", workload.WRITE_MIX,
     "phase2_uncounted"),
    ("new_none", "new client, no trigger (habit_tracker not kept)", NEW_MIX, "none"),
    ("new_both", "new client writing both copies itself, no trigger", NEW_BOTH_MIX, "phase2_no_triggers"),
    ("new_phase2", "new client, Phase 2 (reverse sync)", NEW_MIX, "phase2"),
)
APP_TABLES = ("habit_tracker", "children", "weeks", "habits", "habit_records")
DRIFT_CHECKED = ("new_both", "new_phase2", "old_phase2")


def install(conn: psycopg.Connection, what: str) -> None:
    migration.drop(conn)
    if what == "phase1":
        migration.apply(conn, 1)
    elif what in ("phase2", "phase2_no_triggers", "phase2_uncounted"):
        migration.apply(conn, 2)
    if what == "phase2_uncounted":  # diagnostic: what the Phase 3 gate's evidence costs each old-client write
        conn.execute("DROP TRIGGER trigger_habit_tracker_old_client_writes ON public.habit_tracker")
    if what == "phase2_no_triggers":
        # The floor keeps the drift functions (its check) but no trigger of any kind on the app's tables.
        for trigger, table in conn.execute(
                "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal "
                "AND tgrelid = ANY (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                "AND relname = ANY (%s))", (list(APP_TABLES),)).fetchall():
            conn.execute(sql.SQL("DROP TRIGGER {} ON {}").format(sql.Identifier(trigger), sql.SQL(table)))


def drift(conn: psycopg.Connection) -> tuple[float, float]:
    """(forward, reverse) drift_pct after a run."""
    forward = float(conn.execute("SELECT drift_pct FROM public.dual_write_drift()").fetchone()[0])
    reverse = float(conn.execute("SELECT drift_pct FROM public.dual_write_reverse_drift()").fetchone()[0])
    return forward, reverse


def figure_phase2(bench: "Bench") -> None:
    from bench.run import Row, console, spread, spread_text

    s = bench.sizes
    console.rule(f"1c. Phase 2 writes (pgbench, {s.write_clients} clients, {s.write_rounds} interleaved rounds x "
                 f"{s.write_seconds} s per variant)")
    tps: dict[str, list[float]] = {key: [] for key, *_ in VARIANTS}
    p99: dict[str, list[float]] = {key: [] for key, *_ in VARIANTS}
    latencies: dict[str, list[float]] = {key: [] for key, *_ in VARIANTS}
    failed: dict[str, int] = dict.fromkeys(tps, 0)
    drifts: dict[str, list[tuple[float, float]]] = {key: [] for key in DRIFT_CHECKED}
    for number in range(s.write_rounds):
        order = VARIANTS if number % 2 == 0 else VARIANTS[::-1]
        for key, _label, script, what in order:
            install(bench.conn, what)
            bench.reset()
            # Every variant starts from the same synced sheets (the key space's fill, projected).
            workload.seed_tracker(bench.conn, s.write_users, s.write_weeks, s.write_fill)
            workload.project_all(bench.conn, check_foreign_keys=False)
            bench.settle(*APP_TABLES)
            result = Pgbench(bench.pgbench_conn, script, clients=s.write_clients, seconds=s.write_seconds,
                             variables={"users": s.write_users, "weeks": s.write_weeks}).wait()
            tps[key].append(result.tps)
            p99[key].append(result.percentile(99))
            latencies[key] += result.latencies_ms
            failed[key] += result.failed
            if key in drifts:
                drifts[key].append(drift(bench.conn))
        console.print(f"  round {number + 1}/{s.write_rounds}: "
                      + ", ".join(f"{key} {tps[key][-1]:,.0f}" for key, *_ in VARIANTS) + " TPS")
    migration.drop(bench.conn)
    labels = {key: label for key, label, *_ in VARIANTS}

    def add(key: str, floor: str, target: str, check: Callable[[float], bool] | None = None, note: str = "") -> None:
        stats = spread([a / b for a, b in zip(tps[key], tps[floor])])
        status = "info" if check is None else ("PASS" if check(stats["ratio"]) else "MISS")
        parts = ["TPS per round: " + ", ".join(f"{t:,.0f}" for t in tps[key]),
                 f"floor's: {', '.join(f'{t:,.0f}' for t in tps[floor])}"]
        if key in drifts:
            parts.append("drift after each run (forward/reverse): "
                         + ", ".join(f"{f:g}%/{r:g}%" for f, r in drifts[key]))
        if failed[key]:
            parts.append(f"{failed[key]} failed transactions")
        if note:
            parts.append(note)
        p50_ms, p99_ms = workload.percentile(latencies[key], 50), workload.percentile(latencies[key], 99)
        # The keys figure 1's rows have: report.plot draws each variant's TPS and latency from them.
        values = {"label": labels[key], "tps": statistics.median(tps[key]), "tps_rounds": tps[key],
                  "p50_ms": p50_ms, "p99_ms": p99_ms, "p99_rounds": p99[key], "failed": failed[key],
                  "floor": floor, "floor_tps_rounds": tps[floor]}
        if key in drifts:
            values["drift_pct_after"] = drifts[key]
        bench.add(Row("1. write", f"Phase 2: {labels[key]} vs {labels[floor]}",
                      f"{statistics.median(tps[key]):,.0f} TPS, p50 {p50_ms:.2f} ms, p99 {p99_ms:.2f} ms",
                      f"{labels[floor]}: {statistics.median(tps[floor]):,.0f} TPS", stats["ratio"], target, status,
                      "; ".join(parts), values, stats["ratio_min"], stats["ratio_max"], stats["rounds"]))

    add("new_phase2", "new_both", "(issue 18: the new client's cost vs writing both copies itself)")
    bare = spread([a / b for a, b in zip(tps["new_both"], tps["new_none"])])
    add("new_phase2", "new_none", "(for scale: the bare write, habit_tracker not kept)",
        note=f"the app writing both copies itself runs at {spread_text(bare)} of the bare write")
    add("old_phase2", "old_phase1", "(issue 18: the old client's cost in Phase 2 vs Phase 1)")
    add("old_phase2", "old_none", "(the old client in Phase 2 vs no trigger)")
    add("old_phase1", "old_none", "(Phase 1 in the same rounds, for comparison)")
    add("old_phase2", "old_phase2_uncounted", "(diagnostic: the old_client_writes count, one upsert per statement)")
