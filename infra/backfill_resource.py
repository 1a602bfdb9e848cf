"""Kept for stacks deployed before the backfill became a kind of its own (dualwrite/objects/backfill.py).

Their state names `infra.backfill_resource.BackfillProvider` (dill pickles providers by
reference), so the engine loads this path to read or delete that backfill resource. It is
the same provider as every other object's; the backfill's state holds no `kind`, which
`dualwrite.objects.kind_of` reads as the backfill.
"""

from infra.sql_object import SqlObjectProvider as BackfillProvider

__all__ = ["BackfillProvider"]
