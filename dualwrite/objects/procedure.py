"""A procedure (it may COMMIT, which a function cannot): otherwise handled like a function.

Migration 013 declares none any more: the one earlier releases created,
cleanup_idempotency_log_in_batches(), could carry no `SET search_path` (a procedure that
COMMITs cannot), so it was retired (catalog.RETIRED). The kind stays, because stacks deployed
by those releases hold it in their state, and `pulumi up` drops it through this kind.
"""

from __future__ import annotations

from dualwrite.objects.function import Function


class Procedure(Function):
    kind = "procedure"
    keyword = "PROCEDURE"
