"""The commit each stack last deployed, kept as a stack tag in the state backend.

`invoke record-deployed --stack S --commit SHA` runs after a successful `up`;
`invoke ci-plan --since-deployed` reads it to plan each stack from what it runs
(dualwrite/ci_plan.py). Why a stack tag: the DIY backends (file://, postgres://) keep tags
beside the stack's state (the engine's `stack tag set/get`), so the deploy job reads and
writes them with the credentials it already has (PULUMI_BACKEND_URL), and a tag is no input
of the program: `preview --expect-no-changes` stays a no-op and the stack's history gets no
update. The app's database is never written.
"""

from __future__ import annotations

import json
import os
import re
from typing import Mapping

from dualwrite import readonly
from dualwrite.config import PROJECT, ConfigError
from dualwrite.stack_engine import EngineError, StackEngine

TAG = f"{PROJECT}:deployed-commit"
_SHA = re.compile(r"^[0-9a-f]{40}$")


def check_commit(stack: str, commit: str) -> str:
    """A full commit id (what `github.sha` is); a branch name or a short id could later mean another commit."""
    value = commit.strip().lower()
    if not _SHA.match(value):
        raise ConfigError(f"record-deployed for stack '{stack}': --commit {commit!r} is not a full commit id; "
                          "allowed: the 40-hex-digit SHA the deploy checked out (`git rev-parse HEAD`, "
                          "`${{ github.sha }}`). Nothing was recorded.")
    return value


def write(stack: str, commit: str, engine: StackEngine) -> str:
    """Record `commit` as deployed on `stack` (after a successful up)."""
    value = check_commit(stack, commit)
    engine.run(stack, ["stack", "tag", "set", TAG, value], capture=True)
    return value


def read(stack: str, engine: StackEngine, env: Mapping[str, str] | None = None) -> str | None:
    """The commit recorded for `stack`, or None when none is (a stack the pipeline never deployed,
    or one not yet in the backend).

    A job that holds only the SELECT-only state URL (the deploy workflow's plan job: no read-write
    backend URL) reads the tags with one SELECT: the engine cannot open a postgres:// backend
    read-only (it creates its table first)."""
    env = os.environ if env is None else env
    if not env.get("PULUMI_BACKEND_URL") and env.get(readonly.STATE_URL):
        value = str(readonly.read_tags(env[readonly.STATE_URL], stack).get(TAG, "")).strip()
        return value if _SHA.match(value) else None
    result = engine.run(stack, ["stack", "tag", "ls", "--json"], capture=True, check=False)
    if result.returncode != 0:
        if "no stack named" in (result.stderr or ""):
            return None
        raise EngineError(f"`pulumi stack tag ls` failed for stack '{stack}' (exit {result.returncode}): "
                          f"{(result.stderr or result.stdout or '').strip()[-1000:]}")
    value = str((json.loads(result.stdout or "{}") or {}).get(TAG, "")).strip()
    return value if _SHA.match(value) else None
