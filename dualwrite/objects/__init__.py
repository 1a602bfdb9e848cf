"""One class per kind of database object; `kind_of(props)` finds the class a resource's props name.

A new kind is one new file here and one line in KINDS.
"""

from __future__ import annotations

from dualwrite.objects.archive import Archive
from dualwrite.objects.backfill import Backfill
from dualwrite.objects.base import ObjectKind, Props
from dualwrite.objects.cron_job import CronJob
from dualwrite.objects.extension import Extension
from dualwrite.objects.function import Function
from dualwrite.objects.grants import Grants
from dualwrite.objects.index import Index
from dualwrite.objects.ownership import Ownership
from dualwrite.objects.procedure import Procedure
from dualwrite.objects.removal import Removal
from dualwrite.objects.retirement import Retirement
from dualwrite.objects.reverse_backfill import ReverseBackfill
from dualwrite.objects.table import Table
from dualwrite.objects.trigger import Trigger

KINDS: dict[str, type[ObjectKind]] = {
    cls.kind: cls for cls in (Table, Index, Function, Procedure, Trigger, CronJob, Extension, Grants, Backfill, Removal,
                               Ownership, Retirement, ReverseBackfill, Archive)
}


def kind_of(props: Props) -> ObjectKind:
    """The object a resource's props describe. State written before kinds had a class of
    their own holds no `kind` for the backfill: that is the one object without one."""
    return KINDS[props.get("kind", Backfill.kind)](props)


__all__ = ["KINDS", "ObjectKind", "kind_of", "Archive", "Backfill", "CronJob", "Extension", "Function", "Grants", "Index",
           "Ownership", "Procedure", "Removal", "Retirement", "ReverseBackfill", "Table", "Trigger"]
