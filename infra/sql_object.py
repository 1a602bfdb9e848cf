"""The dynamic provider behind every resource of migration 013: it delegates to the object's kind.

Each resource is one database object, and its kind (dualwrite/objects/) knows the SQL:
create, update in place, diff and what forces a replace, the catalog fingerprint, drop.
This class only adapts those to Pulumi's five calls and keeps the connection out of state:
the engine hands the stack's configuration (secrets decrypted) to `configure`, so no host,
user or password is ever stored in a resource's inputs.

Stable import path: dill pickles a provider by reference (`infra.sql_object.SqlObjectProvider`)
into every resource's state, and the engine reads and deletes resources with the provider
their state names. Moving or renaming this class would strand every deployed stack.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from pulumi.dynamic import (CheckFailure, CheckResult, ConfigureRequest, CreateResult, DiffResult, ReadResult,
                            ResourceProvider, UpdateResult)

from dualwrite import readonly
from dualwrite.config import parse
from dualwrite.connection import unreachable
from dualwrite.db import Session
from dualwrite.objects import ObjectKind, Ownership, kind_of
from dualwrite.objects.ownership import refuse_unless_owner

OUT_OF_BAND = "changed outside Pulumi: "
CONNECTION_KEYS = "phase db_host db_port db_name db_user db_sslmode lock_timeout statement_timeout".split()
# What create/update add to the declared inputs in state (base.apply_create, Table's attention,
# Backfill's rows, ReverseBackfill's batches, Archive's previous_acl). Everything else in state is an input, and read() must hand all of those back:
# an input it leaves out (a table's `columns`, the grants' `declared`, an adopted object's `adopt`,
# the backfill's `kind`) shows as removed (`-columns`) on every refresh of an unchanged stack.
OUTPUT_KEYS = frozenset({"fingerprint", "declared_checksum", "attention", "rows", "batches", "previous_acl"})


class SqlObjectProvider(ResourceProvider):
    """Applies one database object per resource, in bounded transactions on the stack's database."""

    # The serialized provider holds no secrets (they arrive in `configure`), so it need
    # not be a secret in state, and it stays byte-identical between runs.
    serialize_as_secret_always = False

    def configure(self, req: ConfigureRequest) -> None:
        raw = {key: req.config.get(key) for key in CONNECTION_KEYS}
        password = req.config.get("db_password")
        settings = parse(
            os.environ.get("PULUMI_STACK", "current"),
            {key: value for key, value in raw.items() if value is not None},
            has_password=password is not None,
        )
        self._settings = settings
        # In a read-only job (a pull request's preview) the provider connects as the stack's preview role.
        info = readonly.conninfo(settings.conninfo(password), settings.stack)
        self._session = Session(info, settings.lock_timeout, settings.statement_timeout)

    @staticmethod
    def _object(props: dict[str, Any]) -> ObjectKind:
        return kind_of(props)

    # Pulumi calls these ---------------------------------------------------------------

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """At preview too: an object about to be created that already exists is adopted (the plan
        says so in its `adopt` input) or, when it cannot be, stops the deploy before any change."""
        if olds or "kind" not in news:
            # `adopt` describes how the object was first created; it stays in its inputs (as in
            # its outputs) so a later refresh reads back the same inputs.
            kept = {"adopt": olds["adopt"]} if olds.get("adopt") and "kind" in news else {}
            return CheckResult({**news, **kept}, [])
        obj = self._object(news)
        try:
            problem, adoption = self._session.change(lambda conn: (obj.incompatibility(conn), obj.adoption(conn)))
        except psycopg.OperationalError as error:
            return CheckResult(news, [CheckFailure("db_host", str(unreachable(self._settings, error)))])
        if problem:
            return CheckResult(news, [CheckFailure("name", problem)])
        return CheckResult({**news, "adopt": adoption} if adoption else news, [])


    def create(self, props: dict[str, Any]) -> CreateResult:
        obj = self._object(props)
        outs = obj.apply_create(self._session)
        return CreateResult(obj.object_id(), {**props, **outs, "declared_checksum": props.get("checksum")})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed, replaces = type(self._object(news)).diff(olds, news)
        # Same name: the old object must go before the new one can be created.
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        outs = self._object(news).apply_update(self._session, olds)
        return UpdateResult({**news, **outs, "declared_checksum": news.get("checksum")})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        obj = self._object(props)
        if obj.kind != Ownership.kind and obj.drop_allowed:
            # Never drop what another stack owns now (the database was handed over), in the drop's transaction.
            def drop(conn: Any) -> None:
                refuse_unless_owner(conn, props.get("owner"), obj.describe())
                obj.drop(conn)

            self._session.change(drop)
            return
        obj.apply_delete(self._session)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        obj = self._object(props)
        seen = obj.apply_read(self._session)
        if seen is None:
            return ReadResult("", {})  # dropped by hand: the next `up` creates it again
        inputs = {key: value for key, value in props.items() if key not in OUTPUT_KEYS}
        declared = props.get("declared_checksum")
        if declared is not None:
            inputs["checksum"] = declared  # a hand change undone since the last read reads clean again
        if "fingerprint" in seen and seen["fingerprint"] != props.get("fingerprint"):
            inputs["checksum"] = OUT_OF_BAND + str(seen["fingerprint"])[:12]
        inputs.update({key: value for key, value in seen.items() if key != "fingerprint"})
        return ReadResult(id_, {**props, **inputs, "fingerprint": props.get("fingerprint")}, inputs)
