"""The parts of the deployment guide, one ComponentResource each.

    Migration013   "What This Migration Creates": the objects of the stack's phase (dualwrite/phases.py):
                   idempotency_log and its indexes, the cleanup function, the sync trigger function
                   (body chosen by phase), the trigger, this product's own helpers (errors table,
                   drift, backfill), and from Phase 2 on the reverse sync, Phase 3's read-only guard
                   and retirement's archive
    Security       "Security": idempotency_log for service_role only, no EXECUTE for the API roles
    PhaseJobs      what runs beside the objects where the phase says so ("Phase 1 Activation
                   Checklist"): the pg_cron cleanup job, existing rows brought over (the backfill)
    Removed        the rollback plan's option 3, when a stack declares `dual_write: removed`
    Owner          which project and stack own migration 013 in the database (first of all)
"""

from __future__ import annotations

from typing import Any

import pulumi

from dualwrite.catalog import (CLEANUP_BATCH, CLEANUP_COMMAND, CLEANUP_JOB, GUIDE_TRIGGER, MIGRATION_013, SCHEMA,
                               grants_props, objects_in, ownership_props, retirement_props)
from dualwrite import phases, rollback
from dualwrite.config import StackConfig
from dualwrite.objects import Archive
from infra import resources

TYPE = "habit-tracker-db:migration013"


class Owner(pulumi.ComponentResource):
    """Which project and stack own migration 013 in this database (dualwrite/objects/ownership.py):
    claimed before anything else, refused at preview when another stack holds it."""

    record: resources.Ownership

    def __init__(self, project: str, stack: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE}:Owner", "database-owner", None, opts)
        self.record = resources.Ownership("migration-013-owner", ownership_props(project, stack),
                                          pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


class Migration013(pulumi.ComponentResource):
    """Every object of the stack's phase, each depending on the one before it (creation order)."""

    objects: dict[str, resources.SqlObjectResource]

    def __init__(self, config: StackConfig, owner: resources.Ownership,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE}:Migration", "migration-013", None, opts)
        self.objects = {}
        # The owner record first: nothing is created or adopted in a database another stack owns.
        previous: resources.SqlObjectResource | None = owner
        if config.stage.archives:
            # Retirement stops the syncs before habit_tracker is archived (objects/retirement.py says why).
            previous = resources.Retirement("stop-syncs", retirement_props(),
                                            pulumi.ResourceOptions(parent=self, depends_on=[owner]))
        following = phases.up(config.stage)
        if following is not None and following.archives:
            # The archive, not yet (objects/archive.py): declared first, so the step back from retirement
            # renames habit_tracker back before anything is created on it.
            archive = next(obj for obj in MIGRATION_013 if obj.kind is Archive)
            previous = resources.Archive(archive.name, {**archive.props(config.phase), "archived": False},
                                         pulumi.ResourceOptions(parent=self, depends_on=[owner]))
            self.objects[archive.name] = previous
        for obj in objects_in(config.phase):
            if obj.name == GUIDE_TRIGGER and not config.trigger_present:
                continue  # rollback option 2, declared: the trigger stays dropped
            resource = resources.FOR_KIND[obj.kind](
                obj.name,
                obj.props(config.phase, trigger_enabled=config.trigger_enabled, phase0_log=config.phase0_log),
                pulumi.ResourceOptions(parent=self, depends_on=[previous] if previous else []),
            )
            self.objects[obj.name] = resource
            previous = resource
        self.register_outputs({"objects": sorted(self.objects)})


class Security(pulumi.ComponentResource):
    """idempotency_log for service_role only; no EXECUTE for PUBLIC, anon or authenticated.

    Every object already carries its own REVOKE/GRANT, run in the transaction that creates
    it (no window for the API roles). The `privileges` resource watches them all: its read
    compares the objects' ACLs, so a privilege granted or revoked by hand shows on refresh,
    and `up` puts it back. (pulumi-postgresql's Grant cannot be built here:
    scripts/engine/README.md; and it would grant only after the CREATE committed.)
    """

    def __init__(self, migration: Migration013, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE}:Security", "security", None, opts)
        resources.Grants(
            "privileges",
            grants_props(list(migration.objects)),
            pulumi.ResourceOptions(parent=self, depends_on=list(migration.objects.values())),
        )
        self.register_outputs({})


class PhaseJobs(pulumi.ComponentResource):
    """What runs beside the objects, where the phase says so (dualwrite/phases.py): the cleanup
    scheduled with pg_cron (the guide's Phase 1 checklist; from then on, retirement included, since
    it serves the Edge Function), the forward backfill (where forward sync runs) and the reverse
    catch-up (where the reverse sync runs: objects/reverse_backfill.py).

    Earlier releases called it PhaseOne ("phase-1"): the alias keeps its URN and its children's."""

    def __init__(self, config: StackConfig, migration: Migration013, owner: resources.Ownership,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        aliased = pulumi.ResourceOptions(aliases=[pulumi.Alias(name="phase-1", type_=f"{TYPE}:PhaseOne")])
        super().__init__(f"{TYPE}:PhaseJobs", "phase-jobs", None, pulumi.ResourceOptions.merge(aliased, opts))
        objects = migration.objects
        stage = config.stage
        child = pulumi.ResourceOptions(parent=self, depends_on=[owner])
        if stage.cleanup_job:
            self._cleanup_job(config, objects, child)
        if stage.backfill and "sync_old_to_new" in objects and config.trigger_enabled:
            resources.Backfill(
                "backfill",
                {"kind": "backfill", "sync_checksum": objects["sync_old_to_new"].checksum,
                 "batch_size": config.backfill_batch_size, "rows": None,
                 # Declared in sync: a refresh that reads rows out of sync makes `up` backfill them.
                 "unsynced": 0},
                pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=list(objects.values()))),
            )
        if stage.reverse_backfill:
            resources.ReverseBackfill(
                "reverse-backfill",
                {"kind": "reverse_backfill", "sync_checksum": objects["habit_tracker_from_week"].checksum,
                 "batch_size": config.backfill_batch_size, "batches": None,
                 # Declared in sync: a refresh that reads sheets behind the new schema makes `up` catch them up.
                 "unsynced": 0},
                pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=list(objects.values()))),
            )
        self.register_outputs({})

    @staticmethod
    def _cleanup_job(config: StackConfig, objects: dict[str, resources.SqlObjectResource],
                     child: pulumi.ResourceOptions) -> None:
        # pg_cron is shared by the whole database: leaving the phases that schedule our job
        # unschedules it but keeps the extension (other jobs may use it).
        cron = resources.Extension("pg-cron", {"kind": "extension", "name": "pg_cron", "schema": "pg_catalog",
                                               "checksum": ""}, child)
        job: dict[str, Any] = {"kind": "cron_job", "name": CLEANUP_JOB, "schema": SCHEMA,
                               "schedule": config.cleanup_schedule, "command": CLEANUP_COMMAND, "checksum": ""}
        resources.CronJob("cleanup-job", job, pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=[cron, objects[CLEANUP_BATCH]])))


class Removed(pulumi.ComponentResource):
    """`dual_write: removed`: the guide's option 3, declared (tables are retained otherwise)."""

    def __init__(self, owner: resources.Ownership, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE}:Removed", "removed", None, opts)
        resources.Removal("drop-everything", rollback.removal_props(),
                          pulumi.ResourceOptions(parent=self, depends_on=[owner]))
        self.register_outputs({})
