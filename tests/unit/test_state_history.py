"""A stack's history read from the team backend's rows (dualwrite/state_history.py), in the shape the
gate reads from `pulumi stack history --json`."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import datetime, timezone

from dualwrite import gate, state_history

PREFIX = ".pulumi/history/habit-tracker-db/dev/dev-"


def row(ns: int, update: dict, *, gz: bool = False, kind: str = "history") -> tuple[str, str]:
    raw = json.dumps(update).encode()
    key = f"{PREFIX}{ns}.{kind}.json" + (".gz" if gz else "")
    return key, json.dumps({"data": base64.b64encode(gzip.compress(raw) if gz else raw).decode()})


def update(start: int, phase: str, *, kind: str = "update", result: str = "succeeded") -> dict:
    return {"kind": kind, "startTime": start, "endTime": start + 5, "result": result, "version": 0,
            "message": "", "environment": {},
            "config": {"habit-tracker-db:phase": phase, "habit-tracker-db:db_password": {"secure": "v1:abc"}}}


def test_history_rows_read_as_the_clis_entries_oldest_first_checkpoints_and_secrets_left_out():
    rows = [row(3, update(3000, "1"), gz=True), row(1, update(1000, "0")), row(2, update(2000, "1")),
            row(2, {"checkpoint": "not an update"}, kind="checkpoint")]
    entries = state_history.entries(rows, "dev")
    assert [(e["version"], e["startTime"]) for e in entries] == [(1, 1000), (2, 2000), (3, 3000)]
    assert entries[0]["config"]["habit-tracker-db:phase"] == {"value": "0", "secret": False}
    assert entries[0]["config"]["habit-tracker-db:db_password"] == {"secret": True}
    assert "v1:abc" not in json.dumps(entries)


def test_the_gate_finds_the_soak_in_them_as_in_the_clis_history():
    entries = state_history.entries([row(1, update(1000, "0")), row(2, update(2000, "1")),
                                     row(3, update(3000, "1")), row(4, update(4000, "1", kind="refresh"))], "dev")
    since, version = gate.phase1_since(entries)
    assert since == datetime.fromtimestamp(2005, timezone.utc) and version == 2
