"""`SqlObject` resources: the objects pulumi-postgresql cannot manage, applied with psycopg.

A Pulumi dynamic provider. Its connection comes from provider configuration (the
stack's config, read in `configure`), so no host, user or password is ever stored in
a resource's state. Each resource is one database object:

- create runs the object's SQL file in one bounded transaction;
- diff compares a checksum of the source SQL (never the text Postgres normalises);
- update replaces function bodies in place (CREATE OR REPLACE), flips a trigger's
  enabled state, or reschedules a cron job; tables are never dropped to apply a change;
- read inspects the catalog, so `pulumi refresh` shows objects changed or dropped by hand;
- delete drops the object.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

import psycopg
from psycopg import sql
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from infra.provider_connection import StackConnectedProvider
from infra.sql_catalog import drop_statement, set_trigger_enabled

OUT_OF_BAND = "changed outside Pulumi: "

# Which input changes force a new object (drop, then create) per kind. Tables are absent
# on purpose: dropping a table to change it would lose rows.
REPLACE_ON = {
    "index": ("name", "schema", "checksum"),
    "trigger": ("name", "schema", "on_table", "checksum"),
    "function": ("name", "schema", "signature"),
    "procedure": ("name", "schema", "signature"),
    "cron_job": ("name",),
    "table": ("name", "schema"),
    "extension": ("name",),
    "grants": (),
}
COMPARED = ("kind", "name", "schema", "signature", "on_table", "checksum", "enabled", "schedule", "command", "objects")


def _qualified(props: dict[str, Any]) -> sql.Composed:
    return sql.Identifier(props["schema"], props["name"])


def _function_oid(props: dict[str, Any]) -> sql.Composed:
    # to_regprocedure() takes text like 'public.f()'; composed as a literal, never formatted.
    return sql.SQL("to_regprocedure({})").format(
        sql.Literal(f'{props["schema"]}.{props["name"]}{props["signature"]}')
    )


# --- catalog fingerprints: what the object looks like now, or None if it is gone -------

FINGERPRINT: dict[str, Callable[[dict[str, Any]], sql.Composed]] = {
    "table": lambda p: sql.SQL(
        "SELECT c.relrowsecurity::text || ':' || coalesce(("
        "  SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text"
        "         || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY a.attnum)"
        "  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        "  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '') || ':' || coalesce(("
        "  SELECT string_agg(pg_get_constraintdef(k.oid), ', ' ORDER BY k.conname)"
        "  FROM pg_constraint k WHERE k.conrelid = c.oid), '') || ':' || coalesce(("
        "  SELECT string_agg(pol.polname || pg_get_expr(pol.polqual, pol.polrelid), ', ' ORDER BY pol.polname)"
        "  FROM pg_policy pol WHERE pol.polrelid = c.oid), '')"
        " FROM pg_class c WHERE c.oid = to_regclass({})"
    ).format(sql.Literal(f'{p["schema"]}.{p["name"]}')),
    "index": lambda p: sql.SQL("SELECT pg_get_indexdef(to_regclass({}))").format(
        sql.Literal(f'{p["schema"]}.{p["name"]}')
    ),
    "function": lambda p: sql.SQL("SELECT pg_get_functiondef({})").format(_function_oid(p)),
    "procedure": lambda p: sql.SQL("SELECT pg_get_functiondef({})").format(_function_oid(p)),
    # tgenabled is read separately (see `enabled`): a disabled trigger is drift of its own.
    "trigger": lambda p: sql.SQL(
        "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t "
        "WHERE t.tgname = {} AND t.tgrelid = to_regclass({}) AND NOT t.tgisinternal"
    ).format(sql.Literal(p["name"]), sql.Literal(f'{p["schema"]}.{p["on_table"]}')),
    "cron_job": lambda p: sql.SQL(
        "SELECT schedule || ' | ' || command || ' | ' || active::text FROM cron.job WHERE jobname = {}"
    ).format(sql.Literal(p["name"])),
    "extension": lambda p: sql.SQL("SELECT extname FROM pg_extension WHERE extname = {}").format(sql.Literal(p["name"])),
    # The privileges of every table and function the grants file names, as Postgres stores them.
    "grants": lambda p: sql.SQL(
        "SELECT concat_ws(' / ',"
        " (SELECT string_agg(relname || '=' || coalesce(relacl::text, 'default'), ' ' ORDER BY relname)"
        "  FROM pg_class WHERE relnamespace = {schema}::regnamespace AND relname = ANY({names})),"
        " (SELECT string_agg(proname || '=' || coalesce(proacl::text, 'default'), ' ' ORDER BY proname)"
        "  FROM pg_proc WHERE pronamespace = {schema}::regnamespace AND proname = ANY({names})))"
    ).format(schema=sql.Literal(p["schema"]), names=sql.Literal(list(p["objects"]))),
}

def _drop(props: dict[str, Any]) -> sql.Composed:
    return drop_statement(
        props["kind"],
        props["name"],
        signature=props.get("signature", ""),
        on_table=props.get("on_table", ""),
        schema=props["schema"],
    )


# Kinds whose delete leaves the database as it is: privileges go with their objects, and
# an extension is shared by the whole database (other jobs may use pg_cron).
KEPT_ON_DELETE = ("grants", "extension")


def _create_sql(props: dict[str, Any]) -> sql.Composable:
    if props["kind"] == "cron_job":
        return sql.SQL("SELECT cron.schedule({}, {}, {})").format(
            sql.Literal(props["name"]), sql.Literal(props["schedule"]), sql.Literal(props["command"])
        )
    if props["kind"] == "extension":
        return sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(props["name"]))
    # The object's own SQL file, as reviewed; it holds no parameters.
    return sql.SQL(props["sql"])  # type: ignore[arg-type]


def _set_trigger_enabled(props: dict[str, Any]) -> sql.Composed:
    return set_trigger_enabled(props["name"], props["on_table"], props.get("enabled", True), schema=props["schema"])


def _fingerprint(conn: psycopg.Connection, props: dict[str, Any]) -> str | None:
    if props["kind"] == "cron_job":
        has_cron = conn.execute("SELECT to_regclass('cron.job') IS NOT NULL").fetchone()[0]
        if not has_cron:
            return None
    row = conn.execute(FINGERPRINT[props["kind"]](props)).fetchone()
    if row is None or row[0] is None:
        return None
    return hashlib.sha256(row[0].encode("utf-8")).hexdigest()


def _trigger_enabled(conn: psycopg.Connection, props: dict[str, Any]) -> bool | None:
    row = conn.execute(
        sql.SQL("SELECT tgenabled FROM pg_trigger WHERE tgname = {} AND tgrelid = to_regclass({})").format(
            sql.Literal(props["name"]), sql.Literal(f'{props["schema"]}.{props["on_table"]}')
        )
    ).fetchone()
    return None if row is None else row[0] != "D"


def _object_id(props: dict[str, Any]) -> str:
    suffix = props.get("signature", "") if props["kind"] in ("function", "procedure") else ""
    where = f' on {props["on_table"]}' if props["kind"] == "trigger" else ""
    return f'{props["kind"]}:{props["schema"]}.{props["name"]}{suffix}{where}'


class SqlObjectProvider(StackConnectedProvider):
    """Applies one SQL object per resource; connection settings come from stack config."""

    # Pulumi calls these five --------------------------------------------------------

    def create(self, props: dict[str, Any]) -> CreateResult:
        def work(conn: psycopg.Connection) -> str | None:
            conn.execute(_create_sql(props))
            if props["kind"] == "trigger" and not props.get("enabled", True):
                conn.execute(_set_trigger_enabled(props))
            return _fingerprint(conn, props)

        fingerprint = self._change(work)
        return CreateResult(_object_id(props), {**props, "fingerprint": fingerprint})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in COMPARED if olds.get(key) != news.get(key)]
        replaces = [key for key in changed if key in REPLACE_ON.get(news["kind"], ())]
        if "kind" in changed:
            replaces.append("kind")
        return DiffResult(
            changes=bool(changed),
            replaces=replaces,
            delete_before_replace=True,  # same name: the old object must go first
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        kind = news["kind"]
        if kind == "table" and olds.get("checksum") != news.get("checksum"):
            raise RuntimeError(
                f"Table {news['schema']}.{news['name']}: its SQL changed (or it was altered by hand), and tables "
                "are never dropped and recreated automatically because that would lose rows. Write an explicit "
                "ALTER TABLE migration in its SQL file's place, or drop it on purpose with `invoke rollback "
                "--level all`."
            )

        def work(conn: psycopg.Connection) -> str | None:
            if kind in ("function", "procedure", "cron_job", "grants") or olds.get("checksum") != news.get("checksum"):
                conn.execute(_create_sql(news))
            if kind == "trigger":
                conn.execute(_set_trigger_enabled(news))
            return _fingerprint(conn, news)

        fingerprint = self._change(work)
        return UpdateResult({**news, "fingerprint": fingerprint})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if props["kind"] in KEPT_ON_DELETE:
            return

        def work(conn: psycopg.Connection) -> None:
            if props["kind"] == "cron_job" and _fingerprint(conn, props) is None:
                return  # pg_cron gone already (extension dropped): nothing to unschedule
            if props["kind"] == "trigger" and conn.execute(
                sql.SQL("SELECT to_regclass({})").format(sql.Literal(f'{props["schema"]}.{props["on_table"]}'))
            ).fetchone()[0] is None:
                return  # the app's table is gone: so is its trigger
            conn.execute(_drop(props))

        self._change(work)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        def work(conn: psycopg.Connection) -> tuple[str | None, bool | None]:
            enabled = _trigger_enabled(conn, props) if props["kind"] == "trigger" else None
            return _fingerprint(conn, props), enabled

        fingerprint, enabled = self._change(work)
        if fingerprint is None:
            return ReadResult("", {})  # dropped by hand: the next `up` recreates it
        inputs = {key: props[key] for key in props if key in COMPARED or key == "sql"}
        if fingerprint != props.get("fingerprint"):
            inputs["checksum"] = OUT_OF_BAND + fingerprint[:12]
        if enabled is not None:
            inputs["enabled"] = enabled
        return ReadResult(id_, {**props, **inputs, "fingerprint": props.get("fingerprint")}, inputs)


class SqlObjectResource(Resource):
    """One object of migration 013 in the stack's database."""

    checksum: Any
    fingerprint: Any

    def __init__(self, resource_name: str, props: dict[str, Any], opts: Any = None) -> None:
        super().__init__(SqlObjectProvider(), resource_name, {**props, "fingerprint": None}, opts)


