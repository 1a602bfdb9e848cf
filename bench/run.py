"""`invoke bench [--quick] [--full]`: migration 013's costs, each against a floor from the same run.

`--full` runs figures 2 and 3 only (backfill, its writer's p99, drift) at 1M rows: the others
do not depend on the backfill's size and are the default run's.

Runs on the embedded PostgreSQL (devenv/localdb.py) in its own cluster instance `bench`
(port 54339, same settings and pg_cron preload as stack local's), in a database `bench`
dropped and recreated every run. Its own instance because the local stack's cluster is
stopped and restarted by tasks and tests while a benchmark may be running; the local
stack's `habit_tracker` database is never touched. A run that had to start the instance
stops it at the end (CI leaves no server behind); one that found it running leaves it running.
Writes bench/results/results.md (table), results.png (plot) and results.json; a quick run
writes them under bench/results/quick/ (not committed), a full run under bench/results/full/.

Statistics: every row but the deploy rows runs in interleaved rounds, each round running the
floor and its variants in turn (reversed every other round; a writer's p99 row: the writer
alone, then during the operation). A row's ratio
is the median of its per-round ratios, printed with their min and max; PASS or MISS is judged
on the median. Default mode: 5 rounds; quick mode (CI): 2, and the table says so. A row's
note says only what this run measured; diagnostics it does not re-measure are in bench/NOTES.md.

    1. write cost per phase (pgbench, mixed INSERT/UPDATE/DELETE), each against its floor:
       Phase 0 (NOTICE) vs an empty trigger raising the same two NOTICEs, Phase 0 server log
       (RAISE LOG) vs an empty trigger raising the same two LOG lines, Phase 1 vs the app
       writing the same new-schema rows itself (no trigger), all vs no trigger;
       Phase 0's two 3% targets judged by the writing backend's own CPU per single-row UPDATE
       (100 rounds; pgbench's TPS cannot resolve 3% on a shared machine);
       and one UPDATE of 10,000 rows in one transaction, Phase 1 vs no trigger;
       Phase 2 (bench/phase2.py): the new client's writes with the reverse sync vs the app
       writing both copies itself, the old client's in Phase 2 vs Phase 1 and no trigger
    2. backfill rows/s vs one set-based INSERT ... SELECT; writer p99 while it runs
    3. dual_write_drift() vs one hashed read of the same tables
    4. idempotency_log cleanup vs one plain DELETE; writer p99 during each
    5. deploy (pulumi up / no-op preview / smoke-test) vs the engine's floor
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import psycopg
from psycopg import sql
from rich.console import Console

from bench import deploy, phase2, report, workload
from bench.workload import Pgbench
from devenv import localdb
from dualwrite import backfill, migration
from dualwrite.catalog import CLEANUP_COMMAND, GUIDE_TRIGGER, SQL_DIR

BENCH_DB = "bench"
BENCH_CLUSTER = localdb.LocalCluster(name="bench", port=54339, dbname="postgres")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# The scheduled job: a DO block committing after each cleanup_idempotency_log_batch() (sql/013/cleanup_idempotency_log_job.sql).
SCHEDULED = "the scheduled job"
console = Console()


PHASE0_SERVER_FILE = SQL_DIR / "013" / "sync_old_to_new.phase0_server.sql"
SEEDED_TABLES = ("habit_tracker", "children", "weeks", "habits", "habit_records")
WRITER_AFTER = 5.0  # seconds the backfill's writer runs on after it, before it is stopped
SUBXID_CACHE = 64  # PGPROC_MAX_CACHED_SUBXIDS: more subtransaction XIDs than this overflow a backend's cache


@dataclass(frozen=True)
class Sizes:
    mode: str
    write_seconds: int  # pgbench -T per write variant and round
    write_rounds: int  # rounds; each runs every variant in turn (machine noise hits all alike)
    write_clients: int
    write_users: int  # key space: users x 2 children x weeks
    write_weeks: int
    write_fill: float  # share of the key space seeded before each write run
    backfill_rows: int
    backfill_rounds: int  # backfill and its floor, alternating
    writer_rate: int  # tps of the concurrent writer (backfill, cleanup)
    writer_alone_seconds: int
    cleanup_rows: int  # expired idempotency_log rows
    drift_rounds: int  # drift check and its floor, alternating
    writer_rounds: int  # an operation run while the writer runs (backfill under load, each cleanup)
    fixed_batches: bool  # diagnostic: the backfill also in fixed-size batches, in every backfill round
    cpu_rounds: int  # Phase 0's backend CPU rows: rounds of its floor, Phase 0 and no trigger in turn
    cpu_updates: int  # single-row UPDATEs per trigger and round

    @staticmethod
    def for_mode(quick: bool, full: bool) -> "Sizes":
        if quick:
            # The cleanup rows and writer rate are large enough that writer transactions overlap
            # even the fastest (plain DELETE) operation: 50k rows at 100 tps once saw none (p99 nan).
            return Sizes("quick", 3, 2, 4, 100, 52, 0.6, 10_000, 2, 400, 3, 200_000, 2, 2, True, 4, 500)
        if full:
            # Only what the backfill's size changes: the backfill, its writer's p99 and drift
            # (see main()). A 1M-row round (floor + backfill) takes about 19 minutes here, and
            # each backfill under load with its writer about 11: 2 rounds of the first, 3 of the
            # second (its p99 sits near the target and moves with the machine's disk: a median of
            # 2 is their mean, one stalled round decides it), no fixed-batch diagnostic (the
            # default mode measures it); about 75 minutes in all.
            return Sizes("full", 8, 5, 4, 200, 52, 0.6, 1_000_000, 2, 100, 10, 1_000_000, 5, 3, False, 100, 2_000)
        # Backfill: 3 rounds (each runs the 100k-row floor and backfill twice: about 2 minutes).
        return Sizes("default", 8, 5, 4, 200, 52, 0.6, 100_000, 3, 100, 10, 1_000_000, 5, 5, True, 100, 2_000)


@dataclass
class Row:
    figure: str
    case: str
    result: str  # absolute numbers of the case
    floor: str  # the floor's name and absolute numbers
    ratio: float  # case / floor: the median of the per-round ratios
    target: str
    status: str  # PASS | MISS (judged on the median) | info (no target)
    note: str = ""
    values: dict | None = None  # raw numbers for results.json and the plot
    ratio_min: float | None = None  # spread of the per-round ratios (None: measured once)
    ratio_max: float | None = None
    rounds: int = 1


@dataclass
class Overlap:
    """A writer's pgbench run and the time window of the operation it ran against."""
    during: workload.PgbenchResult
    t0: float
    t1: float


def spread(ratios: list[float]) -> dict:
    """Median, min and max of per-round ratios."""
    return {"ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "rounds": len(ratios)}


def _x(value: float) -> str:
    return f"{value:.2f}x"


def spread_text(s: dict) -> str:
    return f"{_x(s['ratio'])} (min {_x(s['ratio_min'])}, max {_x(s['ratio_max'])}, {s['rounds']} rounds)"


class Bench:
    def __init__(self, sizes: Sizes, cluster: localdb.LocalCluster) -> None:
        self.sizes = sizes
        self.cluster = cluster
        # The cluster's admin, not the deploy role: the benchmark seeds with triggers off, checkpoints
        # between runs and sets diagnostic server parameters, none of which `postgres` may do on
        # Supabase. What it measures is what the SQL costs; privileges are tested in tests/.
        self.url = self.cluster.admin_url(BENCH_DB)
        self.pgbench_conn = ["-h", "127.0.0.1", "-p", str(self.cluster.port), "-U", localdb.ADMIN_ROLE, BENCH_DB]
        self.rows: list[Row] = []
        self.conn: psycopg.Connection
        self.started_cluster = False  # True if prepare() started the server (then main() stops it)

    # --- setup ------------------------------------------------------------------------

    def prepare(self) -> None:
        self.started_cluster = self.cluster.status() != "running"
        self.cluster.start()
        self.cluster.drop_database(BENCH_DB)
        self.cluster.create_database(BENCH_DB)
        self.cluster.ensure_app_schema(BENCH_DB)
        self.conn = psycopg.connect(self.url, autocommit=True)
        self.conn.add_notice_handler(lambda _diag: None)
        workload.create_payloads(self.conn)
        self.log_settings: dict[str, str] = dict(self.conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('log_line_prefix', 'logging_collector', 'log_destination', 'log_min_messages')").fetchall())

    def machine(self) -> dict:
        model = "unknown"
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.lower().startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        mem_gb = None
        try:
            kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
            mem_gb = round(kb / 1024 / 1024, 1)
        except (OSError, IndexError, ValueError):
            pass
        pg = self.conn.execute("SELECT version()").fetchone()[0]
        settings: dict[str, str] = dict(self.conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('shared_buffers', 'synchronous_commit', 'fsync', 'max_wal_size', 'work_mem')").fetchall())
        def git(*args: str) -> str:
            done = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent.parent, text=True,
                                  capture_output=True)
            return done.stdout.rstrip() if done.returncode == 0 else "unknown"

        source = {"commit": git("rev-parse", "--short", "HEAD").strip(),
                  "uncommitted_sql": git("status", "--porcelain", "--", "sql/").splitlines()}
        return {"source": source, "cores": os.cpu_count(), "cpu": model, "memory_gb": mem_gb, "os": platform.platform(),
                "postgres": pg, "settings": settings, "load_average_at_start": os.getloadavg(), "mode": self.sizes.mode, "sizes": asdict(self.sizes)}

    def reset(self) -> None:
        tables = ["habit_tracker", "children", "weeks", "habits", "habit_records"]
        if self.conn.execute("SELECT to_regclass('public.dual_write_errors')").fetchone()[0]:
            tables.append("dual_write_errors")
        self.conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(
            sql.SQL(", ").join(sql.Identifier("public", t) for t in tables)))

    def settle(self, *tables: str) -> None:
        """Stats and a checkpoint, so that no run pays for the previous one's dirty pages."""
        self.conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.SQL(", ").join(sql.Identifier(t) for t in tables))
                          if tables else sql.SQL("VACUUM ANALYZE"))
        self.conn.execute("CHECKPOINT")

    def add(self, row: Row) -> None:
        self.rows.append(row)
        style = {"PASS": "green", "MISS": "bold red"}.get(row.status, "yellow")
        console.print(f"  [{style}]{row.status:>4}[/] {row.case}: {row.result}  (floor {row.floor}; "
                      f"{row.ratio:.2f}x; target {row.target})")

    # --- 1. write cost per phase --------------------------------------------------------

    # Every variant of the write rows: (key, label, app script, new schema projected first).
    # Each round runs all of them once, in this order (even rounds) or reversed (odd rounds), so
    # each floor runs next to its variants and drift in the machine's load hits both alike.
    WRITE_VARIANTS = (
        ("none", "no trigger", "app", False),
        ("empty", "empty trigger", "app", False),
        ("notice", "empty trigger + the two NOTICEs", "app", False),
        ("notice_pinned", "empty trigger + the two NOTICEs, SET search_path = ''", "app", False),
        ("phase0", "Phase 0 (NOTICE)", "app", False),
        ("log", "empty trigger + the two LOG lines", "app", False),
        ("phase0_server", "Phase 0 server log (RAISE LOG)", "app", False),
        ("phase0_server_one", "Phase 0 server log, one LOG + DETAIL per row", "app", False),
        ("phase0_server_nostmt", "Phase 0 server log, sessions with log_min_error_statement = panic", "app", False),
        ("app_side", "app-side dual write, no trigger", "app_side", True),
        ("phase1", "Phase 1", "app", True),
    )

    def _install(self, key: str) -> None:
        """Leave exactly the trigger of variant `key` on habit_tracker."""
        workload.drop_floor_trigger(self.conn)
        migration.drop(self.conn)
        if key in ("empty", "notice", "log"):
            workload.create_floor_trigger(self.conn, key)
        elif key == "notice_pinned":
            workload.create_floor_trigger(self.conn, "notice", pinned=True)
        elif key in ("phase0", "phase0_server", "phase0_server_one", "phase0_server_nostmt"):
            migration.apply(self.conn, 0)
            if key in ("phase0_server", "phase0_server_nostmt"):
                self.conn.execute(sql.SQL(PHASE0_SERVER_FILE.read_text(encoding="utf-8")))  # type: ignore[arg-type]
            elif key == "phase0_server_one":
                self.conn.execute(sql.SQL(workload.PHASE0_SERVER_ONE_MESSAGE))  # type: ignore[arg-type]
        elif key == "phase1":
            migration.apply(self.conn, 1)
        elif key == "app_side":
            # The app's own writes need the tables of migration 013 (drift check) but no trigger.
            migration.apply(self.conn, 1)
            self.conn.execute("DROP TRIGGER trigger_habit_tracker_dual_write ON public.habit_tracker")

    # Diagnostic: the app's sessions skip the STATEMENT line that log_min_error_statement
    # (default error, which ranks below LOG for the server log) adds to every LOG entry.
    PGOPTIONS = {"phase0_server_nostmt": "-c log_min_error_statement=panic"}

    def _write_run(self, script: str, pgoptions: str | None = None) -> tuple[workload.PgbenchResult, int, int]:
        """One pgbench run: (result, new-schema rows written, server-log bytes written)."""
        s = self.sizes
        before = workload.new_schema_writes(self.conn)
        log = self.cluster.log_file
        log_before = log.stat().st_size if log.exists() else 0
        result = Pgbench(self.pgbench_conn, workload.APP_MIX if script == "app_side" else workload.WRITE_MIX,
                         clients=s.write_clients, seconds=s.write_seconds,
                         variables={"users": s.write_users, "weeks": s.write_weeks}, pgoptions=pgoptions).wait()
        time.sleep(0.2)  # pgbench's backends have exited; their stats are flushed at exit
        log_bytes = (log.stat().st_size if log.exists() else 0) - log_before
        self._trim_server_log()
        return result, workload.new_schema_writes(self.conn) - before, log_bytes

    def _trim_server_log(self) -> None:
        """RAISE LOG runs: keep the bench cluster's log from filling the disk."""
        log = self.cluster.log_file
        if log.exists() and log.stat().st_size > 50_000_000:
            os.truncate(log, 0)  # opened by pg_ctl -l in append mode, so the server keeps appending at 0

    def _seed_write(self, project: bool) -> None:
        s = self.sizes
        self.reset()
        workload.seed_tracker(self.conn, s.write_users, s.write_weeks, s.write_fill)
        if project:
            workload.project_all(self.conn, check_foreign_keys=False)
        self.settle(*SEEDED_TABLES)

    def figure_write(self) -> dict[str, dict]:
        s = self.sizes
        console.rule(f"1. write cost per phase (pgbench, {s.write_clients} clients, {s.write_rounds} interleaved "
                     f"rounds x {s.write_seconds} s per variant)")
        variants = self.WRITE_VARIANTS
        rounds: dict[str, list[tuple[workload.PgbenchResult, int, int]]] = {key: [] for key, *_ in variants}
        drift_after: dict[str, list[float]] = {"app_side": [], "phase1": []}
        for number in range(s.write_rounds):
            order = variants if number % 2 == 0 else variants[::-1]
            for key, _label, script, project in order:
                self._install(key)
                self._seed_write(project)
                rounds[key].append(self._write_run(script, self.PGOPTIONS.get(key)))
                if key in drift_after:  # both write the same new-schema rows: drift must stay 0
                    drift_after[key].append(float(
                        self.conn.execute("SELECT drift_pct FROM public.dual_write_drift()").fetchone()[0]))
            console.print(f"  round {number + 1}/{s.write_rounds}: " + ", ".join(
                f"{key} {rounds[key][-1][0].tps:,.0f}" for key, *_ in variants) + " TPS")
        self._install("none")

        runs: dict[str, dict] = {}
        for key, label, _, _ in variants:
            results = rounds[key]
            latencies = [lat for result, _, _ in results for lat in result.latencies_ms]
            transactions = sum(r.transactions for r, _, _ in results)
            runs[key] = {"label": label, "tps": statistics.median(r.tps for r, _, _ in results),
                         "tps_rounds": [r.tps for r, _, _ in results],
                         "transactions": len(latencies), "failed": sum(r.failed for r, _, _ in results),
                         "p50_ms": workload.percentile(latencies, 50), "p99_ms": workload.percentile(latencies, 99),
                         "p99_rounds": [r.percentile(99) for r, _, _ in results],
                         "new_rows_per_s": sum(w for _, w, _ in results) / (s.write_seconds * len(results)),
                         "log_bytes_per_tx": sum(b for _, _, b in results) / max(transactions, 1)}
            if key in drift_after:
                runs[key]["drift_pct_after"] = drift_after[key]

        def ratios(key: str, floor: str) -> dict:
            return spread([a / b for a, b in zip(runs[key]["tps_rounds"], runs[floor]["tps_rounds"])])

        r = {key: {"none": ratios(key, "none")} for key in runs}
        r["phase0"]["notice"] = ratios("phase0", "notice")
        r["notice_pinned"]["notice"] = ratios("notice_pinned", "notice")
        r["phase0_server"]["log"] = ratios("phase0_server", "log")
        r["phase0_server_one"]["log"] = ratios("phase0_server_one", "log")
        r["phase0_server_nostmt"]["log"] = ratios("phase0_server_nostmt", "log")
        r["phase1"]["app_side"] = ratios("phase1", "app_side")

        def text(key: str) -> str:
            run = runs[key]
            out = f"{run['tps']:,.0f} TPS, p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms"
            if key in ("phase1", "app_side"):
                out += f", {run['new_rows_per_s']:,.0f} new-schema rows/s"
            if run["log_bytes_per_tx"] >= 10:
                out += f", {run['log_bytes_per_tx']:,.0f} server-log bytes/transaction"
            return out

        def floor_text(key: str) -> str:
            return f"{runs[key]['label']}: {runs[key]['tps']:,.0f} TPS"

        def per_round(key: str) -> str:
            note = "TPS per round: " + ", ".join(f"{t:,.0f}" for t in runs[key]["tps_rounds"])
            if runs[key]["failed"]:
                note += f"; {runs[key]['failed']} failed transactions"
            return note

        def add(key: str, floor: str, target: str, check: Callable[[float], bool] | None, note: str = "") -> None:
            stats = r[key][floor]
            status = "info" if check is None else ("PASS" if check(stats["ratio"]) else "MISS")
            full_note = "; ".join(part for part in (per_round(key), note) if part)
            self.add(Row("1. write", f"Write: {runs[key]['label']}" + ("" if floor == "none" else
                         f" vs {runs[floor]['label']}"), text(key), floor_text(floor), stats["ratio"], target,
                         status, full_note, {**runs[key], "floor": floor}, stats["ratio_min"], stats["ratio_max"],
                         stats["rounds"]))

        med = {key: r[key]["none"]["ratio"] for key in runs}
        add("none", "none", "(the floor)", None)
        add("empty", "none", "(floor: firing a trigger)", None)
        add("notice", "none", "(floor of Phase 0)", None,
            f"the two NOTICEs alone cost {1 - med['notice'] / med['empty']:.0%} of the empty trigger's TPS")
        shape = r["notice_pinned"]["notice"]
        add("notice_pinned", "notice", "(diagnostic: Phase 0's function shape)", None,
            f"the same body as its floor, declared with SET search_path = '' (a GUC switch per call, which Phase 0's "
            f"row function leaves out: its SQL file says why): {spread_text(shape)} of the plain one")
        p0 = r["phase0"]["notice"]["ratio"]
        judged_by_cpu = ("8-second rounds spread wider than the 3% target, which the backend CPU row (1a) judges; "
                         "its body is its floor's (the same branch and messages, names qualified)")
        add("phase0", "notice", "(TPS; >= 0.97x is judged by backend CPU, 1a)", None, judged_by_cpu)
        if med["phase0"] >= 0.90:
            why0 = ""
        elif med["notice"] < 0.90:
            why0 = (f"misses because its floor does: the empty trigger with the guide's two NOTICEs runs at "
                    f"{_x(med['notice'])} of no trigger in this run (the empty trigger alone {_x(med['empty'])}); "
                    f"Phase 0 is {_x(p0)} of that floor")
        else:
            why0 = (f"its floor (the empty trigger with the two NOTICEs) runs at {_x(med['notice'])} of no trigger in this "
                    f"run; Phase 0 is {_x(p0)} of that floor, and the floor with the migration's function shape "
                    f"{_x(shape['ratio'])}")
        add("phase0", "none", ">= 0.90x TPS", lambda x: x >= 0.90, why0)
        add("log", "none", "(floor of Phase 0 server log)", None,
            f"{runs['log']['log_bytes_per_tx']:,.0f} server-log bytes per transaction "
            f"(log_line_prefix '{self.log_settings.get('log_line_prefix', '?')}', "
            f"logging_collector {self.log_settings.get('logging_collector', '?')}, "
            f"log_destination {self.log_settings.get('log_destination', '?')})")
        add("phase0_server", "log", "(TPS; >= 0.97x is judged by backend CPU, 1a)", None, judged_by_cpu)
        one = r["phase0_server_one"]
        add("phase0_server_one", "log", "(diagnostic: one log entry per row)", None,
            f"{_x(one['none']['ratio'])} of no trigger against {_x(med['phase0_server'])} for two LOG lines; "
            f"{runs['phase0_server_one']['log_bytes_per_tx']:,.0f} against "
            f"{runs['phase0_server']['log_bytes_per_tx']:,.0f} log bytes per transaction")
        nostmt = r["phase0_server_nostmt"]
        add("phase0_server_nostmt", "log", "(diagnostic: no STATEMENT line)", None,
            f"{_x(nostmt['none']['ratio'])} of no trigger against {_x(med['phase0_server'])} with the STATEMENT line; "
            f"{runs['phase0_server_nostmt']['log_bytes_per_tx']:,.0f} against "
            f"{runs['phase0_server']['log_bytes_per_tx']:,.0f} log bytes per transaction")
        add("app_side", "none", "(floor of Phase 1)", None,
            "drift after each run: " + ", ".join(f"{d:g}%" for d in runs["app_side"]["drift_pct_after"]))
        add("phase1", "app_side", ">= 1.1x TPS", lambda x: x >= 1.1,
            "drift after each run: " + ", ".join(f"{d:g}%" for d in runs["phase1"]["drift_pct_after"]))
        p1 = runs["phase1"]
        p99_ok = p1["p99_ms"] < 5.0
        why = []
        if med["phase1"] < 0.45:
            why.append(f"of the TPS no trigger has, the guide's two NOTICEs alone leave {_x(med['notice'])} (their "
                       f"floor) and the sync leaves {_x(med['phase1'] / med['notice'])} of that; the app writing the "
                       f"same rows itself (no trigger, one statement) gets {_x(med['app_side'])}")
        if not p99_ok:
            why.append(f"p99 per round: {', '.join(f'{x:.2f}' for x in p1['p99_rounds'])} ms; the app-side floor's "
                       f"p99 {runs['app_side']['p99_ms']:.2f} ms and no trigger's {runs['none']['p99_ms']:.2f} ms in "
                       "the same rounds")
        add("phase1", "none", ">= 0.45x TPS and p99 < 5 ms", lambda x: x >= 0.45 and p99_ok,
            "; ".join(why))
        return runs

    # --- 1a. Phase 0 by backend CPU -------------------------------------------------------

    # Phase 0's targets are 3% of its floors; 8-second pgbench rounds on a shared machine spread
    # 20-30% (the TPS rows above), so these rows judge them by what the trigger adds to the writing
    # backend's own CPU time. Even that moves 2x between runs of a second on a shared VM, so the
    # floor's trigger and Phase 0's sit on habit_tracker together, one enabled at a time (a
    # disabled trigger costs both the same: one skipped entry per row), and short slices of
    # UPDATEs alternate between them: many small rounds, each pair of slices a few ms apart.
    PHASE0_CPU_PAIRS = (("notice", "phase0"), ("log", "phase0_server"))

    def _enable_only(self, key: str) -> None:
        """Of the floor's trigger and Phase 0's, leave only `key`'s enabled ("none": neither)."""
        enabled = {GUIDE_TRIGGER: key.startswith("phase0"),
                   workload.FLOOR_TRIGGER_NAME: key in ("notice", "log")}
        self.conn.execute(sql.SQL("ALTER TABLE public.habit_tracker {}").format(sql.SQL(", ").join(
            sql.SQL("ENABLE TRIGGER {}" if on else "DISABLE TRIGGER {}").format(sql.Identifier(name))
            for name, on in enabled.items())))

    def figure_phase0_cpu(self) -> None:
        s = self.sizes
        labels = {key: label for key, label, *_ in self.WRITE_VARIANTS}
        self._install("none")
        self._seed_write(False)
        sheets = self.conn.execute("SELECT count(*) FROM public.habit_tracker").fetchone()[0]
        updates = min(s.cpu_updates, sheets)  # each UPDATE a sheet of its own
        self.conn.execute("SELECT pg_catalog.set_config('bench.cpu_updates', %s, false)", (str(updates),))
        console.rule(f"1a. Phase 0 by backend CPU ({s.cpu_rounds} interleaved rounds of {updates:,} single-row "
                     "UPDATEs per trigger)")
        pid = self.conn.info.backend_pid
        us: dict[tuple[str, str], list[float]] = {}  # (the pair's variant, the trigger enabled) -> us per round
        for floor, variant in self.PHASE0_CPU_PAIRS:
            self._install(variant)
            workload.create_floor_trigger(self.conn, floor)
            states = ("none", floor, variant)
            for key in states:
                us[variant, key] = []
            for number in range(s.cpu_rounds):
                self.conn.execute("VACUUM public.habit_tracker")  # each round's UPDATEs find the same table
                for key in states if number % 2 == 0 else states[::-1]:
                    self._enable_only(key)
                    before = workload.backend_cpu_ns(pid)
                    self.conn.execute(workload.CPU_UPDATES)
                    us[variant, key].append((workload.backend_cpu_ns(pid) - before) / 1000 / updates)
                self._trim_server_log()
            console.print(f"  {variant}: median " + ", ".join(
                f"{key} {statistics.median(us[variant, key]):.1f}" for key in states) + " us CPU per UPDATE")
        self._install("none")

        def add(pair: str, key: str, floor: str, target: str, check: Callable[[float], bool] | None,
                note: str = "") -> None:
            # As the TPS rows: the floor's rate over the variant's (CPU per UPDATE, inverted), so > 1x is faster.
            mine, floors = us[pair, key], us[pair, floor]
            stats = spread([f / v for f, v in zip(floors, mine)])
            status = "info" if check is None else ("PASS" if check(stats["ratio"]) else "MISS")
            self.add(Row("1. write", f"Backend CPU: {labels[key]} vs {labels[floor]}",
                         f"{statistics.median(mine):.1f} us CPU per single-row UPDATE",
                         f"{labels[floor]}: {statistics.median(floors):.1f} us", stats["ratio"], target, status, note,
                         {"cpu_us_rounds": mine, "floor": floor, "floor_cpu_us_rounds": floors},
                         stats["ratio_min"], stats["ratio_max"], stats["rounds"]))

        add("phase0", "notice", "none", "(floor of Phase 0)", None)
        add("phase0", "phase0", "notice", ">= 0.97x CPU rate", lambda x: x >= 0.97,
            "the writing backend's own CPU time (/proc/<pid>/schedstat) over the statements")
        add("phase0_server", "log", "none", "(floor of Phase 0 server log)", None)
        add("phase0_server", "phase0_server", "log", ">= 0.97x CPU rate", lambda x: x >= 0.97,
            "the writing backend's own CPU time, its write() of each log line included")

    # --- 1b. bulk write ------------------------------------------------------------------

    BULK_VARIANTS = (("none", "no trigger"), ("empty", "empty trigger"),
                     ("notice", "empty trigger + the two NOTICEs"),
                     ("app_side", "no trigger, the app updating both copies in one statement"), ("phase1", "Phase 1"))

    def figure_bulk(self) -> None:
        s = self.sizes
        n = workload.BULK_ROWS
        console.rule(f"1b. one UPDATE of {n:,} rows in one transaction ({s.write_rounds} interleaved rounds)")
        users = math.ceil(n / (workload.CHILDREN_PER_USER * 52))
        statuses = ["green", "yellow", "red"]
        seconds: dict[str, list[float]] = {key: [] for key, _ in self.BULK_VARIANTS}
        subxids: dict[str, list[int]] = {key: [] for key, _ in self.BULK_VARIANTS}
        drifts: dict[str, list[float]] = {"phase1": [], "app_side": []}
        runs_done = 0
        for number in range(s.write_rounds):
            order = self.BULK_VARIANTS if number % 2 == 0 else self.BULK_VARIANTS[::-1]
            for key, _ in order:
                self._install(key)
                self.reset()
                workload.seed_tracker(self.conn, users, 52, 1.0, limit=n)
                # Every variant starts from the same synced state; Phase 1's trigger has data to diff.
                self.conn.execute("SET session_replication_role = replica")
                self.conn.execute(workload.BULK_UPDATE, {"status": statuses[runs_done % 3]})
                self.conn.execute("SET session_replication_role = DEFAULT")
                workload.project_all(self.conn, check_foreign_keys=False)
                self.settle(*SEEDED_TABLES)
                runs_done += 1
                xid_before = self.conn.execute("SELECT txid_current()").fetchone()[0]
                started = time.perf_counter()
                with self.conn.transaction():
                    self.conn.execute(workload.BULK_APP_SIDE if key == "app_side" else workload.BULK_UPDATE,
                                      {"status": statuses[runs_done % 3]})
                seconds[key].append(time.perf_counter() - started)
                xid_after = self.conn.execute("SELECT txid_current()").fetchone()[0]
                # XIDs assigned in between: the bulk transaction's own + one per subtransaction that wrote.
                subxids[key].append(xid_after - xid_before - 2)
                if key in ("phase1", "app_side"):  # both must leave the copies equal, or the floor is wrong
                    drift = self.conn.execute("SELECT drift_pct FROM public.dual_write_drift()").fetchone()[0]
                    drifts[key].append(float(drift))
                    if drift != 0:
                        console.print(f"  [bold red]drift after the bulk UPDATE ({key}): {drift}%[/]")
        self._install("none")
        med = {key: statistics.median(v) for key, v in seconds.items()}
        per_row = {key: med[key] / n * 1e6 for key in med}
        for key, label in self.BULK_VARIANTS:
            if key == "none":
                continue
            stats = spread([a / b for a, b in zip(seconds[key], seconds["none"])])
            note = ("seconds per round: " + ", ".join(f"{x:.3f}" for x in seconds[key])
                    + f"; {per_row[key]:.1f} us per row (no trigger {per_row['none']:.1f})")
            target, status = "(floor)", "info"
            if key == "phase1":
                target = "<= 4x time"
                status = "PASS" if stats["ratio"] <= 4 else "MISS"
                worst = max(subxids[key])
                note += (f"; {worst:,} subtransaction XIDs in the bulk transaction (txid_current() before and after): "
                         + ("more than" if worst > SUBXID_CACHE else "within")
                         + f" the {SUBXID_CACHE}-entry subxid cache, so it "
                         + ("overflows" if worst > SUBXID_CACHE else "does not overflow"))
                if status == "MISS":
                    note += (f"; where the time goes, per row: statement {per_row['none']:.1f} us, firing a trigger "
                             f"+{per_row['empty'] - per_row['none']:.1f}, the two NOTICEs "
                             f"+{per_row['notice'] - per_row['empty']:.1f}, the sync itself "
                             f"+{per_row['phase1'] - per_row['notice']:.1f}; 4x allows "
                             f"{3 * per_row['none']:.1f} us per row over the statement. The app writing the copy "
                             f"itself, set-based and diffing nothing, adds "
                             f"{per_row['app_side'] - per_row['none']:.1f} us per row; that plus the guide's NOTICEs "
                             f"would be {(per_row['app_side'] + per_row['notice'] - per_row['none']) / per_row['none']:.2f}x")
            if key in drifts:
                note += "; drift after each round: " + ", ".join(f"{d:g}%" for d in drifts[key])
            self.add(Row("1. write", f"Bulk: one UPDATE of {n:,} rows in one transaction, {label}",
                         f"{med[key] * 1000:,.0f} ms", f"no trigger: {med['none'] * 1000:,.0f} ms", stats["ratio"],
                         target, status, note,
                         {"seconds_rounds": seconds[key], "floor_seconds_rounds": seconds["none"],
                          "subxids": subxids[key], "drift_pct_after": drifts.get(key)},
                         stats["ratio_min"], stats["ratio_max"], stats["rounds"]))
        # Phase 1 over two floors: the guide's two messages per row, which it raises too (what is left is
        # the sync's own cost), and the app doing the same write itself (what a set-based sync costs over the least).
        diagnostics = (
            ("notice", "the empty trigger + the two NOTICEs", "empty trigger + the two NOTICEs",
             "(diagnostic: the sync over the guide's messages)",
             f"subtransaction XIDs per round: {', '.join(str(x) for x in subxids['phase1'])}"),
            ("app_side", "the app updating both copies", "the app's one statement",
             "(diagnostic: the trigger over the app's own dual write)",
             f"{per_row['phase1']:.1f} against {per_row['app_side']:.1f} us per row"),
        )
        for floor, versus, floor_label, target, note in diagnostics:
            stats = spread([a / b for a, b in zip(seconds["phase1"], seconds[floor])])
            self.add(Row("1. write", f"Bulk: one UPDATE of {n:,} rows in one transaction, Phase 1 vs {versus}",
                         f"{med['phase1'] * 1000:,.0f} ms", f"{floor_label}: {med[floor] * 1000:,.0f} ms",
                         stats["ratio"], target, "info", note,
                         {"seconds_rounds": seconds["phase1"], "floor_seconds_rounds": seconds[floor]},
                         stats["ratio_min"], stats["ratio_max"], stats["rounds"]))

    # --- 2. backfill, 3. drift ------------------------------------------------------------

    def seed_backfill_rows(self) -> int:
        """habit_tracker with the backfill's rows (as if written before the migration); Phase 1 on."""
        s = self.sizes
        self._install("phase1")
        self.reset()
        seeded = workload.seed_tracker(self.conn, self._backfill_users(), 52, 1.0, limit=s.backfill_rows)
        self.settle()
        return seeded

    def _backfill_users(self) -> int:
        return math.ceil(self.sizes.backfill_rows / (workload.CHILDREN_PER_USER * 52))

    def _clear_new_schema(self) -> None:
        self.conn.execute("TRUNCATE children, weeks, habits, habit_records, dual_write_errors")
        self.settle("children", "weeks", "habits", "habit_records")

    def figure_backfill(self, seeded: int) -> None:
        s = self.sizes
        console.rule(f"2. backfill of {seeded:,} rows ({s.backfill_rounds} interleaved rounds)")
        floor_s: list[float] = []
        backfill_s: list[float] = []
        fixed_s: list[float] = []  # diagnostic: the same backfill in fixed batches of DEFAULT_BATCH_SIZE
        batches: list[int] = []
        pacing: list[str] = []
        for number in range(s.backfill_rounds):
            order = ("floor", "backfill", "fixed") if s.fixed_batches else ("floor", "backfill")
            for which in order if number % 2 == 0 else order[::-1]:
                self._clear_new_schema()
                if which == "floor":
                    started = time.perf_counter()
                    workload.project_all(self.conn)
                    floor_s.append(time.perf_counter() - started)
                elif which == "backfill":
                    result = backfill.run(self.url, show_progress=False)
                    backfill_s.append(result.seconds)
                    batches.append(result.batches)
                    pacing.append(result.pacing)
                else:
                    fixed_s.append(backfill.run(self.url, show_progress=False, max_batch_seconds=None).seconds)
            console.print(f"  round {number + 1}/{s.backfill_rounds}: floor {floor_s[-1]:.2f} s, backfill "
                          f"{backfill_s[-1]:.2f} s ({pacing[-1]})")
        stats = spread([f / b for f, b in zip(floor_s, backfill_s)])  # rows/s ratio = floor time / backfill time
        fixed = spread([f / b for f, b in zip(floor_s, fixed_s)]) if fixed_s else None
        rps, floor_rps = seeded / statistics.median(backfill_s), seeded / statistics.median(floor_s)
        self.add(Row("2. backfill", f"Backfill ({seeded:,} rows, dualwrite.backfill defaults)",
                     f"{rps:,.0f} rows/s ({statistics.median(backfill_s):.2f} s, {statistics.median(batches):.0f} "
                     f"batches of at most {backfill.DEFAULT_BATCH_SIZE})",
                     f"one INSERT ... SELECT per table: {floor_rps:,.0f} rows/s ({statistics.median(floor_s):.2f} s)",
                     stats["ratio"], ">= 0.80x rows/s", "PASS" if stats["ratio"] >= 0.8 else "MISS",
                     "seconds per round: backfill " + ", ".join(f"{x:.2f}" for x in backfill_s)
                     + "; floor " + ", ".join(f"{x:.2f}" for x in floor_s)
                     + "; its WAL pacing per round: " + " | ".join(pacing)
                     + ("" if stats["ratio"] >= 0.8 or fixed is None else
                        f"; the batches sized to {backfill.MAX_BATCH_SECONDS:g} s (each its own transaction, so an app "
                        f"write waits at most that long for a batch's row locks) are part of what it costs: the "
                        f"same backfill in fixed {backfill.DEFAULT_BATCH_SIZE}-row batches ran at {spread_text(fixed)} "
                        "of the floor in the same rounds"),
                     {"rows": seeded, "seconds_rounds": backfill_s, "floor_seconds_rounds": floor_s,
                      "fixed_batches_seconds_rounds": fixed_s, "pacing_rounds": pacing},
                     stats["ratio_min"], stats["ratio_max"], stats["rounds"]))

        # The same backfill while the app writes (Phase 1 trigger on), against the writer alone,
        # round after round (each round alone, then under load).
        variables = {"users": self._backfill_users(), "weeks": 52}
        alone: list[workload.PgbenchResult] = []
        loaded: list[Overlap] = []
        drifts: list[float] = []  # after each backfill under load: the trigger and the backfill must agree
        loaded_pacing: list[str] = []
        for number in range(s.writer_rounds):
            self._clear_new_schema()
            alone.append(Pgbench(self.pgbench_conn, workload.WRITE_MIX, clients=2, seconds=s.writer_alone_seconds,
                                 variables=variables, rate=s.writer_rate).wait())
            self._clear_new_schema()
            # Under the writer the backfill takes longer than alone (by how much depends on the
            # machine): the writer gets ample room and is stopped a few seconds after the
            # backfill ends (what its log buffers lose at the stop is past the backfill's end).
            writer = Pgbench(self.pgbench_conn, workload.WRITE_MIX, clients=2,
                             seconds=math.ceil(3 * statistics.median(backfill_s) + 10), variables=variables,
                             rate=s.writer_rate)
            time.sleep(1.0)
            t0 = time.time()
            result = backfill.run(self.url, show_progress=False)
            t1 = time.time()
            time.sleep(WRITER_AFTER)
            loaded.append(Overlap(writer.stop(), t0, t1))
            loaded_pacing.append(result.pacing)
            drift = self.conn.execute("SELECT drift_pct FROM dual_write_drift()").fetchone()[0]
            drifts.append(float(drift))
            if drift != 0:
                console.print(f"  [bold red]drift after backfill under load: {drift}%[/]")
            console.print(f"  writer round {number + 1}/{s.writer_rounds}: backfill {t1 - t0:.2f} s "
                          f"({loaded_pacing[-1]}); writer p99 {loaded[-1].during.percentile(99, (t0, t1)):.1f} ms "
                          f"(alone {alone[-1].percentile(99):.1f} ms)")
        self._writer_row("2. backfill", "Writer p99 during backfill", alone, loaded, "backfill",
                         "drift after each round: " + ", ".join(f"{d:g}%" for d in drifts)
                         + "; the backfill's WAL pacing per round: " + " | ".join(loaded_pacing))

    def figure_drift(self, seeded: int) -> None:
        s = self.sizes
        console.rule(f"3. drift check over {seeded:,} rows ({s.drift_rounds} interleaved rounds)")
        if not self.conn.execute("SELECT EXISTS (SELECT FROM weeks)").fetchone()[0]:  # no backfill ran before
            workload.project_all(self.conn, check_foreign_keys=False)
        self.settle()
        drift = self.conn.execute("SELECT drift_pct FROM dual_write_drift()").fetchone()[0]
        drift_query = lambda: self.conn.execute("SELECT * FROM dual_write_drift()").fetchall()  # noqa: E731
        read_query = lambda: self.conn.execute(workload.HASH_READ).fetchall()  # noqa: E731
        drift_query(), read_query()  # warm-up: caches and plans
        drift_t: list[float] = []
        read_t: list[float] = []
        for number in range(s.drift_rounds):
            for work, into in ((drift_query, drift_t), (read_query, read_t))[:: 1 if number % 2 == 0 else -1]:
                started = time.perf_counter()
                work()
                into.append(time.perf_counter() - started)
        stats = spread([d / f for d, f in zip(drift_t, read_t)])
        self.add(Row("3. drift", "dual_write_drift()", f"{statistics.median(drift_t) * 1000:,.0f} ms (drift {drift}%)",
                     f"hash of every row of the same tables: {statistics.median(read_t) * 1000:,.0f} ms",
                     stats["ratio"], "<= 1.5x time", "PASS" if stats["ratio"] <= 1.5 else "MISS",
                     "ms per round: drift " + ", ".join(f"{x * 1000:.0f}" for x in drift_t)
                     + "; read " + ", ".join(f"{x * 1000:.0f}" for x in read_t),
                     {"seconds_rounds": drift_t, "floor_seconds_rounds": read_t, "drift_pct": float(drift)},
                     stats["ratio_min"], stats["ratio_max"], stats["rounds"]))

    def _writer_row(self, figure: str, case: str, alone: list[workload.PgbenchResult], runs: list["Overlap"],
                    what: str, extra_note: str = "") -> None:
        """The writer's p99 while `what` ran, round by round, against the writer alone in the same round."""
        p99s = [run.during.percentile(99, overlapping=(run.t0, run.t1)) for run in runs]
        p50s = [run.during.percentile(50, overlapping=(run.t0, run.t1)) for run in runs]
        alone_p99s = [result.percentile(99) for result in alone]
        stats = spread([p / a for p, a in zip(p99s, alone_p99s)])
        p99 = statistics.median(p99s)
        note = ("p99 per round: " + ", ".join(f"{x:.1f}" for x in p99s) + " ms (writer alone "
                + ", ".join(f"{x:.1f}" for x in alone_p99s) + "); writer transactions that overlapped it: "
                + ", ".join(str(run.during.count(overlapping=(run.t0, run.t1))) for run in runs)
                + f"; {what} took " + ", ".join(f"{run.t1 - run.t0:.2f}" for run in runs) + " s")
        if any(run.during.finished_at and max(run.during.finished_at) < run.t1 for run in runs):
            note += "; in a round the writer stopped before the operation ended"
        if extra_note:
            note += "; " + extra_note
        self.add(Row(figure, case, f"p99 {p99:.1f} ms, p50 {statistics.median(p50s):.1f} ms",
                     f"writer alone ({self.sizes.writer_rate} tps): p99 {statistics.median(alone_p99s):.1f} ms",
                     stats["ratio"], "p99 < 50 ms", "PASS" if p99 < 50 else "MISS", note,
                     {"p99_ms": p99, "p99_rounds": p99s, "floor_p99_rounds": alone_p99s},
                     stats["ratio_min"], stats["ratio_max"], stats["rounds"]))

    # --- 4. cleanup ---------------------------------------------------------------------

    CLEANUPS = (("plain DELETE", "DELETE FROM idempotency_log WHERE expires_at < now()", "one statement"),
                ("cleanup_idempotency_log()", "SELECT cleanup_idempotency_log()", "function, manual use: one transaction"),
                (SCHEDULED, CLEANUP_COMMAND, "DO block over cleanup_idempotency_log_batch(): COMMIT per batch"))

    def figure_cleanup(self) -> None:
        s = self.sizes
        expired, live = s.cleanup_rows, s.cleanup_rows // 10
        console.rule(f"4. cleanup of {expired:,} expired idempotency_log rows ({s.writer_rounds} interleaved rounds)")

        def seed() -> float:
            self.conn.execute("TRUNCATE idempotency_log")
            started = time.perf_counter()
            self.conn.execute(workload.SEED_IDEMPOTENCY, {"expired": expired, "live": live})
            took = time.perf_counter() - started
            self.settle("idempotency_log")
            return took

        seed_s = seed()
        variables = {"keys": expired}
        alone: list[workload.PgbenchResult] = []
        runs: dict[str, list[Overlap]] = {label: [] for label, _, _ in self.CLEANUPS}
        left: dict[str, int] = {label: 0 for label, _, _ in self.CLEANUPS}
        for number in range(s.writer_rounds):
            alone.append(Pgbench(self.pgbench_conn, workload.IDEMPOTENCY_MIX, clients=2,
                                 seconds=s.writer_alone_seconds, variables=variables, rate=s.writer_rate).wait())
            for label, statement, _ in self.CLEANUPS[:: 1 if number % 2 == 0 else -1]:
                seed()
                writer = Pgbench(self.pgbench_conn, workload.IDEMPOTENCY_MIX, clients=2,
                                 seconds=math.ceil(1.5 * seed_s + 4), variables=variables, rate=s.writer_rate)
                time.sleep(1.0)
                t0 = time.time()
                self.conn.execute(statement)
                t1 = time.time()
                left[label] = max(left[label], self.conn.execute(
                    "SELECT count(*) FROM idempotency_log WHERE expires_at < now() - interval '1 minute'").fetchone()[0])
                runs[label].append(Overlap(writer.wait(), t0, t1))
            console.print(f"  round {number + 1}/{s.writer_rounds}: " + ", ".join(
                f"{label} {runs[label][-1].t1 - runs[label][-1].t0:.2f} s" for label, _, _ in self.CLEANUPS))
        for label, _, kind in self.CLEANUPS:
            self._writer_row("4. cleanup", f"Writer p99 during {label} ({kind})", alone, runs[label],
                             label + (f" (left up to {left[label]} expired rows)" if left[label] else ""))
        seconds = {label: [run.t1 - run.t0 for run in runs[label]] for label, _, _ in self.CLEANUPS}
        floor = seconds["plain DELETE"]
        for label, case, target in (
                ("cleanup_idempotency_log()",
                 f"Time of cleanup_idempotency_log() (function) ({expired:,} expired + {live:,} live rows)", "<= 1.5x time"),
                (SCHEDULED, f"Time of {SCHEDULED} (batches of cleanup_idempotency_log_batch(), COMMIT per batch)",
                 "(no target: the writer's p99 is its target)")):
            stats = spread([a / b for a, b in zip(seconds[label], floor)])
            status = "info" if target.startswith("(") else ("PASS" if stats["ratio"] <= 1.5 else "MISS")
            self.add(Row("4. cleanup", case, f"{statistics.median(seconds[label]):.2f} s",
                         f"one plain DELETE: {statistics.median(floor):.2f} s", stats["ratio"], target, status,
                         "both with the writer running; seconds per round: " + ", ".join(f"{x:.2f}" for x in seconds[label])
                         + "; plain DELETE " + ", ".join(f"{x:.2f}" for x in floor),
                         {"seconds_rounds": seconds[label], "floor_seconds_rounds": floor},
                         stats["ratio_min"], stats["ratio_max"], stats["rounds"]))

    # --- 5. deploy ------------------------------------------------------------------------

    def figure_deploy(self) -> None:
        """No stubs: without a working engine the run fails here, saying why."""
        console.rule("5. deploy")
        floor = deploy.floors()
        measured = deploy.project_figures(self.cluster)
        version = f"pulumi version: {floor['version_s']:.2f} s"
        empty = f"empty-program preview: {floor['empty_preview_s']:.2f} s"
        for key, case, floor_text, floor_key, target, check in (
            ("up_s", "pulumi up (fresh stack, Phase 0)", version, "version_s", "(no target)", None),
            ("noop_preview_s", "no-op pulumi preview", empty, "empty_preview_s", "< 3x time", lambda r: r < 3),
            ("smoke_test_s", "invoke smoke-test", version, "version_s", "< 2 s", None),
        ):
            value = measured[key]
            ratio = value / floor[floor_key]
            if key == "smoke_test_s":
                status = "PASS" if value < 2 else "MISS"
            else:
                status = "info" if check is None else ("PASS" if check(ratio) else "MISS")
            self.add(Row("5. deploy", case, f"{value:.2f} s", floor_text, ratio, target, status,
                         "median of 3" if key != "up_s" else "", {"seconds": value, **floor}))


# What `--only` selects: each figure's rows, by the name a user types.
FIGURES = ("write", "bulk", "phase2", "backfill", "drift", "cleanup", "deploy")
FULL_FIGURES = ("backfill", "drift")  # the full mode re-measures only what the backfill's size changes


def parse_only(text: str) -> tuple[str, ...]:
    """`--only backfill,drift` as a tuple of figure names ("" selects every figure)."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(set(names) - set(FIGURES))
    if unknown:
        raise ValueError(f"bench --only {text}: no figure named {', '.join(unknown)}. The figures are "
                         f"{', '.join(FIGURES)}; a full run (--full) has {', '.join(FULL_FIGURES)} only.")
    return names


def cluster_on(port: int) -> localdb.LocalCluster:
    """The bench instance on another port (its own data directory beside the default one's)."""
    return localdb.LocalCluster(name=f"bench-{port}", port=port, dbname="postgres")


def main(quick: bool = False, full: bool = False, results_dir: Path | str | None = None,
         cluster: localdb.LocalCluster | None = None, only: tuple[str, ...] = ()) -> list[Row]:
    """Run every figure (or those in `only`); `cluster` (default: the `bench` instance) is where
    (tests pass their own). A run of some figures writes under bench/results/only/ unless
    `results_dir` says otherwise, so it never overwrites a whole run's results."""
    sizes = Sizes.for_mode(quick, full)
    parse_only(",".join(only))  # a name that is not a figure fails here, before anything runs
    figures = [f for f in (FULL_FIGURES if full else FIGURES) if not only or f in only]
    # Each mode keeps its own results: a quick or full run never overwrites the default run's.
    default_out = RESULTS_DIR / {"default": "", "quick": "quick", "full": "full"}[sizes.mode]
    if only:
        default_out = RESULTS_DIR / "only" / sizes.mode
    out = Path(results_dir) if results_dir else default_out
    out.mkdir(parents=True, exist_ok=True)
    bench = Bench(sizes, cluster or BENCH_CLUSTER)
    started = time.monotonic()
    try:
        with console.status(f"[bold]bench ({sizes.mode}): preparing database '{BENCH_DB}'"):
            bench.prepare()
        machine = bench.machine()
        machine["figures"] = figures
        console.print(f"[bold]{machine['cores']} cores, {machine['cpu']}; {machine['postgres'].split(' on ')[0]}")
        if "write" in figures:
            bench.figure_write()
            bench.figure_phase0_cpu()
        if "bulk" in figures:
            bench.figure_bulk()
        if "phase2" in figures:
            phase2.figure_phase2(bench)
        if "backfill" in figures or "drift" in figures:
            seeded = bench.seed_backfill_rows()
            if "backfill" in figures:
                bench.figure_backfill(seeded)
            if "drift" in figures:
                bench.figure_drift(seeded)
        if "cleanup" in figures:
            bench.figure_cleanup()
        if "deploy" in figures:
            bench.figure_deploy()
    finally:
        if getattr(bench, "conn", None) is not None:
            bench.conn.close()
        # Leave the server as the run found it: CI (quick mode) must not leave one behind,
        # and a cluster someone had already started keeps running.
        if bench.started_cluster:
            bench.cluster.stop()
    machine["seconds"] = round(time.monotonic() - started, 1)
    machine["load_average_at_end"] = os.getloadavg()
    report.write(out, bench.rows, machine)
    console.print(f"[bold]bench ({sizes.mode}) done in {machine['seconds']:.0f} s: {out / 'results.md'}")
    return bench.rows
