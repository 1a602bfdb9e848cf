"""The resources of migration 013, grouped the way the deployment guide groups them."""

from __future__ import annotations

from typing import Any

import pulumi

from infra.backfill_resource import BackfillResource
from infra.sql_catalog import CLEANUP_JOB, MIGRATION_013, SCHEMA, SqlObject
from infra.sql_object import SqlObjectResource
from infra.stack_config import StackConfig

# The procedure commits batch by batch (row locks released as it goes); the function
# cleanup_idempotency_log() stays for manual use. See sql/013/cleanup_idempotency_log_in_batches.sql.
CLEANUP_COMMAND = "CALL public.cleanup_idempotency_log_in_batches()"


def _props(obj: SqlObject, config: StackConfig) -> dict[str, Any]:
    props: dict[str, Any] = {
        "kind": obj.kind,
        "name": obj.name,
        "schema": SCHEMA,
        "sql": obj.source(config.phase),
        "checksum": obj.checksum(config.phase),
    }
    if obj.kind in ("function", "procedure"):
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


def security(config: StackConfig, objects: dict[str, SqlObjectResource]) -> None:
    """idempotency_log for service_role only; no EXECUTE for PUBLIC, anon or authenticated.

    pulumi-postgresql's Grant would be the natural owner of these statements, but its
    provider cannot be built from the Go modules reachable here (scripts/engine/README.md),
    so the reviewed `sql/013/grants.sql` is applied as one resource, and `read` compares the
    objects' ACLs, so a privilege granted or revoked by hand shows on refresh.
    """
    if "idempotency_log" not in objects:
        return
    grants = SqlObject("grants", "migration_013_privileges", "013/grants.sql")
    SqlObjectResource(
        "privileges",
        {
            **_props(grants, config),
            "objects": [o.name for o in MIGRATION_013 if o.kind in ("table", "function") and o.name in objects],
        },
        pulumi.ResourceOptions(depends_on=list(objects.values())),
    )


def phase_one(config: StackConfig, objects: dict[str, SqlObjectResource]) -> None:
    """Phase 1 checklist: schedule cleanup with pg_cron; bring existing rows over."""
    # pg_cron is shared by the whole database: leaving phase 1 unschedules our job but
    # keeps the extension (other jobs may use it).
    cron = SqlObjectResource("pg-cron", {"kind": "extension", "name": "pg_cron", "schema": "pg_catalog", "checksum": ""})
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
            sync_checksum=objects["sync_old_to_new"].checksum,
            batch_size=config.backfill_batch_size,
            opts=pulumi.ResourceOptions(depends_on=list(objects.values())),
        )
