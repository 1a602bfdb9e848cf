"""A stack's update history read from the team backend's rows, for a job with read-only credentials.

`pulumi stack history` needs the read-write backend URL (the CLI's postgres:// backend runs
CREATE TABLE IF NOT EXISTS when it opens) and the stack's passphrase, neither of which a pull
request's job holds (dualwrite/readonly.py). The engine writes the same history as rows of its
state table, one per update, under `.pulumi/history/<project>/<stack>/<stack>-<ns>.history.json`
(`{"data": <base64 of the JSON, gzipped when the key ends .gz>}`): `backend.UpdateInfo`, with
the config the update ran and its start and end times. So the job reads them with one SELECT
through PULUMI_STATE_READONLY_URL, the role that can only SELECT the state table, and gets
the entries `pulumi stack history --json` prints (the fields the gate reads): kind, result,
startTime, endTime, version (1 = the oldest), config {key: {"value": ..., "secret": ...}};
a secret's value stays encrypted and is left out.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from dualwrite.config import PROJECT, ConfigError

SUFFIXES = (".history.json", ".history.json.gz")


def _config(values: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in (values or {}).items():
        if isinstance(value, dict) and "secure" in value:
            out[key] = {"secret": True}  # encrypted with the stack's passphrase: never read here
        else:
            out[key] = {"value": value if isinstance(value, str) else json.dumps(value), "secret": False}
    return out


def entries(rows: list[tuple[str, str]], stack: str) -> list[dict[str, Any]]:
    """The history entries of (key, data) rows of the state table; other keys (checkpoints) are skipped."""
    updates = []
    for key, data in rows:
        if not key.endswith(SUFFIXES):
            continue
        raw = base64.b64decode(json.loads(data)["data"])
        if key.endswith(".gz"):
            raw = gzip.decompress(raw)
        updates.append(json.loads(raw))
    updates.sort(key=lambda u: (u.get("startTime") or 0, u.get("endTime") or 0))
    return [{"version": number, "kind": update.get("kind"), "result": update.get("result"),
             "startTime": update.get("startTime"), "endTime": update.get("endTime"),
             "config": _config(update.get("config"))} for number, update in enumerate(updates, 1)]


def read(url: str, stack: str) -> list[dict[str, Any]]:
    """Stack `stack`'s history from the backend at `url` (a SELECT-only role's URL), oldest first."""
    import psycopg
    from psycopg import sql

    from dualwrite import readonly

    libpq, table, prefix = readonly.backend_location(url)
    directory = f"{prefix}.pulumi/history/{PROJECT}/{stack}/{stack}-"
    try:
        with psycopg.connect(libpq, connect_timeout=10) as conn:
            conn.read_only = True
            rows = conn.execute(sql.SQL("SELECT key, data::text FROM {} WHERE starts_with(key, %s)").format(
                sql.Identifier(table)), (directory,)).fetchall()
    except psycopg.Error as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(f"Stack '{stack}': cannot read its update history through {readonly.STATE_URL} ({first}). "
                          "It must be the team backend's URL as a role with SELECT on the state table. "
                          "Nothing was changed.") from None
    compressed = [key for key, _ in rows if key.endswith(".zst")]
    if compressed:
        raise ConfigError(f"Stack '{stack}': its history in the team backend is zstd-compressed ({compressed[0]}), "
                          "which this reader does not decode; allowed: the CLI's default (none) or gzip "
                          "(PULUMI_DIY_BACKEND_GZIP). Nothing was changed.")
    return entries(rows, stack)
