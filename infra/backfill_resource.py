"""The backfill as a resource: activating Phase 1 by `pulumi up` also brings existing rows over.

Created when a stack enters Phase 1 (after the Phase 1 trigger is in place, so rows
written meanwhile are synced by the trigger), replaced when the sync logic changes
(rows are projected again with the new logic), and deleted as a no-op: leaving Phase 1
keeps the new schema's rows, and re-entering it backfills again.
"""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import CreateResult, DiffResult, Resource

from infra.provider_connection import StackConnectedProvider


class BackfillProvider(StackConnectedProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        from infra import backfill

        result = backfill.run(
            self._conninfo,
            batch_size=int(props["batch_size"]),
            lock_timeout=self._settings.lock_timeout,
            statement_timeout=self._settings.statement_timeout,
            show_progress=False,
        )
        return CreateResult("backfill", {**props, "rows": result.rows})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # A new batch size alone is no reason to project every row again.
        replace = olds.get("sync_checksum") != news.get("sync_checksum")
        return DiffResult(changes=replace or olds.get("batch_size") != news.get("batch_size"),
                          replaces=["sync_checksum"] if replace else [])

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> Any:
        from pulumi.dynamic import UpdateResult

        return UpdateResult({**news, "rows": olds.get("rows")})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Leaving Phase 1 keeps the new schema's rows: no data is ever lost."""


class BackfillResource(Resource):
    rows: Any

    def __init__(self, resource_name: str, *, sync_checksum: Any, batch_size: int, opts: Any = None) -> None:
        super().__init__(
            BackfillProvider(),
            resource_name,
            {"sync_checksum": sync_checksum, "batch_size": batch_size, "rows": None},
            opts,
        )
