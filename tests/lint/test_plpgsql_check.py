"""plpgsql_check on every PL/pgSQL function and procedure of migration 013, in both phases.

What `supabase db lint` does, and more: it skips trigger functions, while here the trigger
function is checked with its table (relid), so NEW/OLD and TG_* are typed. Extra, other,
performance and security warnings are all on, fatal_errors off, so one run reports every
finding of a routine. Any finding fails the test unless ALLOWED below documents it.

The routines come from dualwrite/catalog.py's MIGRATION_013, so a new function is linted
as soon as it is in the catalog; LANGUAGE sql routines are skipped (plpgsql_check reads
only PL/pgSQL; Postgres itself parses and analyses a sql body at CREATE). A PL/pgSQL routine
that a 013 file creates but the catalog does not list fails test_catalog_lists_every_routine.

plpgsql_check comes from Debian's postgresql-15-plpgsql-check (scripts/setup). It is a
superuser-only extension: the tests connect as postgres, as a deploy does, so the admin
creates it in each test database (on Supabase, supautils does that on postgres' behalf).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
import pytest

from dualwrite import migration
from dualwrite.objects import Function
from dualwrite.catalog import SCHEMA, objects_in
from dualwrite.parsed_sql import function_attributes

pytestmark = [pytest.mark.db, pytest.mark.lint]

# Phases 0 to 3 (dualwrite/phases.py; retirement adds no routine of its own, it only drops).
PHASES = (0, 1, 2, 3)
# Every PL/pgSQL function and procedure of the catalog, with each phase it exists in. LANGUAGE sql
# bodies (dual_write_diff, dual_write_drift) are parsed and analysed by Postgres itself at
# CREATE; plpgsql_check reads only PL/pgSQL.
IN_PHASE = [(obj, p) for p in PHASES for obj in objects_in(p) if issubclass(obj.kind, Function)
            and any(f.language == "plpgsql" for f in function_attributes(obj.source(p), obj.file))]
ROUTINES = list(dict.fromkeys(obj for obj, _ in IN_PHASE))


@dataclass(frozen=True)
class Allowed:
    """One documented exception: a finding that is right as it is, and why."""

    routine: str  # unqualified name, as in the catalog
    sqlstate: str
    message: str  # regular expression, matched against the whole message
    why: str


# Findings accepted on purpose. Each entry says why the code is right and the check is not;
# a finding that is a real problem is fixed in the SQL instead. Empty today: every finding
# plpgsql_check reported so far was fixed at its source (sync_new_to_old, one trigger function
# of four tables, reads their rows as jsonb so each pass types what it reads).
ALLOWED: tuple[Allowed, ...] = ()

CHECK = """
SELECT functionid::text, lineno, statement, sqlstate, message, detail, hint, level, context
FROM plpgsql_check_function_tb(
    %(oid)s::regprocedure,
    relid => %(relid)s::regclass,
    fatal_errors => false,
    other_warnings => true,
    extra_warnings => true,
    performance_warnings => true,
    security_warnings => true
)
"""

PLPGSQL_ROUTINES = """
SELECT p.oid::regprocedure::text, p.oid
FROM pg_proc AS p JOIN pg_language AS l ON l.oid = p.prolang
WHERE p.pronamespace = %(schema)s::regnamespace AND l.lanname = 'plpgsql' AND p.prokind IN ('f', 'p')
"""


@dataclass(frozen=True)
class Finding:
    routine: str
    phase: int
    lineno: int | None
    statement: str | None
    sqlstate: str
    message: str
    detail: str | None
    hint: str | None
    level: str
    context: str | None

    def allowed_by(self) -> Allowed | None:
        for entry in ALLOWED:
            if (entry.routine == self.routine and entry.sqlstate == self.sqlstate
                    and re.fullmatch(entry.message, self.message)):
                return entry
        return None

    def __str__(self) -> str:
        where = f"line {self.lineno}" + (f" ({self.statement})" if self.statement else "") if self.lineno else "routine"
        extra = "; ".join(f"{k}: {v}" for k, v in (("detail", self.detail), ("hint", self.hint),
                                                      ("context", self.context)) if v)
        return (f"phase {self.phase} {self.routine}, {where}: {self.level} {self.sqlstate} {self.message}"
                + (f" [{extra}]" if extra else ""))


@pytest.fixture
def conn(conn: psycopg.Connection, admin_conn: psycopg.Connection) -> psycopg.Connection:
    """The test database as postgres, with plpgsql_check created in it by supabase_admin."""
    admin_conn.execute("CREATE EXTENSION IF NOT EXISTS plpgsql_check")
    return conn


def applied(conn: psycopg.Connection, phase: int) -> psycopg.Connection:
    migration.apply(conn, phase)
    return conn


def trigger_tables(conn: psycopg.Connection, oid: str) -> list[str]:
    """The tables a trigger function fires on (plpgsql_check needs one to type NEW and OLD: it is checked
    with each; the reverse sync's function serves four)."""
    rows = conn.execute(
        "SELECT DISTINCT tgrelid::regclass::text FROM pg_trigger WHERE tgfoid = %s::regprocedure AND NOT tgisinternal "
        "ORDER BY 1", (oid,),
    ).fetchall()
    return [row[0] for row in rows]


def check_routine(conn: psycopg.Connection, name: str, signature: str, phase: int) -> list[Finding]:
    oid = f"{SCHEMA}.{name}{signature}"
    language, returns = conn.execute(
        "SELECT l.lanname, p.prorettype::regtype::text FROM pg_proc AS p JOIN pg_language AS l ON l.oid = p.prolang"
        " WHERE p.oid = %s::regprocedure",
        (oid,),
    ).fetchone()
    assert language == "plpgsql", f"{oid} is LANGUAGE {language} in phase {phase}"
    relids: list[int | str] = [0]  # 0: no table (a function that is not a trigger's)
    if returns == "trigger":
        tables = trigger_tables(conn, oid)
        assert tables, f"trigger function {oid} fires on no table in phase {phase}: nothing to check it with"
        relids = list(tables)
    rows = [row for relid in relids for row in conn.execute(CHECK, {"oid": oid, "relid": relid}).fetchall()]
    return [Finding(name, phase, r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows]


@pytest.mark.parametrize(("routine", "phase"), IN_PHASE, ids=[f"{o.name}-phase{p}" for o, p in IN_PHASE])
def test_plpgsql_check_is_clean(conn: psycopg.Connection, routine, phase: int) -> None:
    findings = check_routine(applied(conn, phase), routine.name, routine.signature, phase)
    unexpected = [f for f in findings if f.allowed_by() is None]
    assert not unexpected, (
        f"plpgsql_check found {len(unexpected)} problem(s); fix them, or, where the code is right, "
        "add a documented entry to ALLOWED in this file:\n" + "\n".join(f"  {f}" for f in unexpected)
    )


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: f"phase{p}")
def test_catalog_lists_every_routine(conn: psycopg.Connection, phase: int) -> None:
    """Every PL/pgSQL routine migration 013 creates is in the catalog, so the test above lints it."""
    before = {r[1] for r in conn.execute(PLPGSQL_ROUTINES, {"schema": SCHEMA}).fetchall()}
    applied(conn, phase)
    listed = {conn.execute("SELECT to_regprocedure(%s)::oid", (f"{SCHEMA}.{o.name}{o.signature}",)).fetchone()[0]
              for o in ROUTINES}
    unlisted = sorted(name for name, oid in conn.execute(PLPGSQL_ROUTINES, {"schema": SCHEMA}).fetchall()
                      if oid not in before and oid not in listed)
    assert not unlisted, f"PL/pgSQL routines created by migration 013 but not in MIGRATION_013 (so not linted): {unlisted}"


def test_allowed_entries_are_documented() -> None:
    names = {o.name for o in ROUTINES}
    for entry in ALLOWED:
        assert entry.routine in names, f"ALLOWED names {entry.routine!r}, not a routine of migration 013"
        assert len(entry.why.split()) >= 5, f"ALLOWED entry for {entry.routine} needs a real reason: {entry.why!r}"
