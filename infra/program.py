"""The resources of migration 013, grouped the way the deployment guide groups them."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_postgresql as postgresql

from infra.backfill_resource import BackfillResource
from infra.sql_catalog import MIGRATION_013, SCHEMA, SqlObject
from infra.sql_object import SqlObjectResource
from infra.stack_config import StackConfig

CLEANUP_JOB = "cleanup_idempotency_log"  # fixed name: monitoring and `read` look it up by name
CLEANUP_COMMAND = "SELECT public.cleanup_idempotency_log()"
API_ROLES = ("public", "anon", "authenticated")  # never get anything of migration 013


def database_provider(config: StackConfig, password: Any) -> postgresql.Provider:
    """pulumi-postgresql's connection; the password stays a Pulumi secret."""
    return postgresql.Provider(
        "database",
        host=config.db_host,
        port=config.db_port,
        database=config.db_name,
        username=config.db_user,
        password=password,
        sslmode=config.db_sslmode,
        superuser=False,
        connect_timeout=10,
    )


def _props(obj: SqlObject, config: StackConfig) -> dict[str, Any]:
    props: dict[str, Any] = {
        "kind": obj.kind,
        "name": obj.name,
        "schema": SCHEMA,
        "sql": obj.source(config.phase),
        "checksum": obj.checksum(config.phase),
    }
    if obj.kind == "function":
        props["signature"] = obj.signature
    if obj.kind == "trigger":
        props["on_table"] = obj.on_table
        props["enabled"] = config.trigger_enabled
    return props


def migration_objects(config: StackConfig) -> dict[str, SqlObjectResource]:
    """Every object of the catalog, each depending on the one before it (creation order)."""
    created: dict[str, SqlObjectResource] = {}
    previous: SqlObjectResource | None = None
    for obj in MIGRATION_013:
        if not config.migration_present:
            break  # rollback option 3, declared: nothing of migration 013 remains
        if obj.kind == "trigger" and not config.trigger_present:
            continue  # rollback option 2, declared: the trigger stays dropped
        resource = SqlObjectResource(
            obj.name,
            _props(obj, config),
            pulumi.ResourceOptions(depends_on=[previous] if previous else []),
        )
        created[obj.name] = resource
        previous = resource
    return created


def security(config: StackConfig, database: postgresql.Provider, objects: dict[str, SqlObjectResource]) -> None:
    """idempotency_log: service_role only. Functions: no EXECUTE for the API roles."""
    if "idempotency_log" not in objects:
        return
    opts = pulumi.ResourceOptions(provider=database, depends_on=list(objects.values()))
    functions = [o.name for o in MIGRATION_013 if o.kind == "function" and o.name in objects]
    for role in API_ROLES:
        postgresql.Grant(
            f"revoke-idempotency-log-{role}",
            database=config.db_name,
            schema=SCHEMA,
            role=role,
            object_type="table",
            objects=["idempotency_log"],
            privileges=[],
            opts=opts,
        )
        postgresql.Grant(
            f"revoke-functions-{role}",
            database=config.db_name,
            schema=SCHEMA,
            role=role,
            object_type="function",
            objects=functions,
            privileges=[],
            opts=opts,
        )
    postgresql.Grant(
        "service-role-idempotency-log",
        database=config.db_name,
        schema=SCHEMA,
        role=config.service_role,
        object_type="table",
        objects=["idempotency_log"],
        privileges=["SELECT", "INSERT", "UPDATE", "DELETE"],
        opts=opts,
    )
    postgresql.Grant(
        "service-role-cleanup",
        database=config.db_name,
        schema=SCHEMA,
        role=config.service_role,
        object_type="function",
        objects=[n for n in functions if n in ("cleanup_idempotency_log", "dual_write_drift")],
        privileges=["EXECUTE"],
        opts=opts,
    )


def phase_one(config: StackConfig, database: postgresql.Provider, objects: dict[str, SqlObjectResource]) -> None:
    """Phase 1 checklist: schedule cleanup with pg_cron; bring existing rows over."""
    # pg_cron is shared by the whole database: leaving phase 1 unschedules our job but
    # keeps the extension (other jobs may use it).
    cron = postgresql.Extension(
        "pg-cron",
        name="pg_cron",
        database=config.db_name,
        opts=pulumi.ResourceOptions(provider=database, retain_on_delete=True),
    )
    SqlObjectResource(
        "cleanup-job",
        {
            "kind": "cron_job",
            "name": CLEANUP_JOB,
            "schema": SCHEMA,
            "schedule": config.cleanup_schedule,
            "command": CLEANUP_COMMAND,
            "checksum": "",
        },
        pulumi.ResourceOptions(depends_on=[cron, objects["cleanup_idempotency_log"]]),
    )
    if "sync_old_to_new" in objects and config.trigger_enabled:
        BackfillResource(
            "backfill",
            sync_checksum=objects["sync_old_to_new"].checksum,  # type: ignore[attr-defined]
            batch_size=config.backfill_batch_size,
            opts=pulumi.ResourceOptions(depends_on=list(objects.values())),
        )
