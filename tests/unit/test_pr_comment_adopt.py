"""An adopted object keeps its `adopt` input (so refreshes read back the same inputs); the PR
comment names the adoption only on the step that adopts, never on a later update."""

from __future__ import annotations

from dualwrite.catalog import by_name
from dualwrite.pr_comment import changes

TYPE = "pulumi-python:dynamic/migration013:Function"
NOTE = "adopt the existing function public.cleanup_idempotency_log(): brought to the declared version in place"


def step(op: str, news: dict, olds: dict | None = None) -> dict:
    return {"op": op, "urn": "urn:pulumi:s::p::x::cleanup_idempotency_log",
            "newState": {"type": TYPE, "inputs": news}, "oldState": {"type": TYPE, "inputs": olds} if olds else None}


def test_the_note_is_on_the_adopting_create_only():
    declared = {**by_name("cleanup_idempotency_log").props(0), "adopt": NOTE}
    (created,), _ = changes({"steps": [step("create", declared)]})
    assert created.op == "adopt" and created.sql.startswith(f"-- {NOTE}")
    edited = {**declared, "checksum": "new"}
    (updated,), _ = changes({"steps": [step("update", edited, declared)]})
    assert updated.op == "update" and NOTE not in updated.sql
