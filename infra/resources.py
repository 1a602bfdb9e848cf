"""Typed resources, one per kind of object: preview shows `migration013:Table`, `migration013:Trigger`, ...

All are applied by the one provider (infra/sql_object.py), which hands each to its kind in
dualwrite/objects/. Every resource carries an alias to the untyped, top-level
`pulumi-python:dynamic:Resource` it was in releases before the components, so stacks
deployed by them upgrade in place (no delete, no replace).
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import Resource

from dualwrite import objects
from infra.sql_object import SqlObjectProvider

MODULE = "migration013"
UNTYPED = "pulumi-python:dynamic:Resource"


class SqlObjectResource(Resource):
    """One object of migration 013 in the stack's database."""

    checksum: Any
    fingerprint: Any

    def __init__(self, resource_name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        previous = pulumi.Alias(type_=UNTYPED, parent=pulumi.ROOT_STACK_RESOURCE)
        opts = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(aliases=[previous]), opts)
        # Who deploys it ("project/stack"): a delete is refused while the database names another
        # owner (dualwrite/objects/ownership.py). Not compared by any kind, so it is no change.
        owner = f"{pulumi.get_project()}/{pulumi.get_stack()}"
        super().__init__(SqlObjectProvider(), resource_name, {**props, "owner": owner, "fingerprint": None}, opts)


class Table(SqlObjectResource, module=MODULE, name="Table"):
    """Holds rows: retained when it leaves the program, never replaced (dualwrite/objects/table.py)."""

    def __init__(self, resource_name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(resource_name, props, pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(retain_on_delete=True)))


class Index(SqlObjectResource, module=MODULE, name="Index"):
    pass


class Function(SqlObjectResource, module=MODULE, name="Function"):
    pass


class Procedure(SqlObjectResource, module=MODULE, name="Procedure"):
    pass


class Trigger(SqlObjectResource, module=MODULE, name="Trigger"):
    pass


class CronJob(SqlObjectResource, module=MODULE, name="CronJob"):
    pass


class Extension(SqlObjectResource, module=MODULE, name="Extension"):
    pass


class Ownership(SqlObjectResource, module=MODULE, name="Ownership"):
    """Which project and stack own migration 013 in the database: first, everything depends on it."""


class Grants(SqlObjectResource, module=MODULE, name="Grants"):
    pass


class Backfill(SqlObjectResource, module=MODULE, name="Backfill"):
    rows: Any


class Removal(SqlObjectResource, module=MODULE, name="Removal"):
    pass


class Retirement(SqlObjectResource, module=MODULE, name="Retirement"):
    pass


class ReverseBackfill(SqlObjectResource, module=MODULE, name="ReverseBackfill"):
    pass


class Archive(SqlObjectResource, module=MODULE, name="Archive"):
    """habit_tracker kept as habit_tracker_archive (retirement): a rename, never a drop (objects/archive.py)."""


# The resource class that declares each kind of object.
FOR_KIND: dict[type[objects.ObjectKind], type[SqlObjectResource]] = {
    objects.Table: Table, objects.Index: Index, objects.Function: Function, objects.Procedure: Procedure,
    objects.Trigger: Trigger, objects.CronJob: CronJob, objects.Extension: Extension, objects.Grants: Grants,
    objects.Backfill: Backfill, objects.Removal: Removal, objects.Ownership: Ownership,
    objects.Retirement: Retirement, objects.ReverseBackfill: ReverseBackfill, objects.Archive: Archive,
}
