"""What the library asks of the machine it runs on, passed in by the caller: the Pulumi engine of a
stack, and the embedded database of stack `local`.

The library never imports `devenv` (tests/unit/test_library_imports.py): tasks.py passes
`devenv.stack_engine.ENGINE` (the CLI built or installed here, devenv/engine.py, and the cluster of
devenv/localdb.py) to the functions that need one. The stack's secret (its database password,
`stack_password`) and its update history (`stack_history`) are read through the same engine.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

from dualwrite.config import PROJECT, ConfigError

PASSWORD_KEY = f"{PROJECT}:db_password"


class EngineError(RuntimeError):
    """The engine is missing, or a pulumi command failed."""


class StackEngine(Protocol):
    def run(self, stack: str, args: Sequence[str], *, capture: bool = False, check: bool = True,
            timeout: float | None = None, input: str | None = None,
            rewrite_line: Callable[[str], str] | None = None) -> subprocess.CompletedProcess[str]:
        """`pulumi <args> --stack <stack>`; with `check`, a failure is an EngineError."""

    def passphrase_problem(self, stack: str) -> str | None:
        """One paragraph when the stack has no passphrase to decrypt its secrets; None when it has one."""

    def ensure_stack(self, stack: str) -> None:
        """Create the stack in the backend on first use, selecting nothing."""

    def recover(self, stack: str) -> list[str]:
        """Undo what a cut-off deploy left (orphan plugins, a dead process's lock, pending creates); say what."""

    def attention(self, stack: str) -> list[str]:
        """What the last `up` left for a person, one paragraph each."""

    def environment(self, stack: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables every pulumi command of this project runs with."""

    def pulumi_binary(self) -> Path: ...

    def link_program_virtualenv(self) -> None:
        """Make the program folder's `.venv` the project's one virtualenv."""

    def start_embedded_database(self) -> None:
        """Start stack `local`'s database (create it on first use)."""


def stack_password(engine: StackEngine, stack: str) -> str:
    """The stack's `db_password` secret, decrypted by the engine with the stack's passphrase; held in
    memory only. No passphrase: a ConfigError paragraph, before the engine runs."""
    problem = engine.passphrase_problem(stack)
    if problem:
        raise ConfigError(problem)
    return engine.run(stack, ["config", "get", PASSWORD_KEY], capture=True).stdout.rstrip("\n")


def stack_history(engine: StackEngine, stack: str) -> list[dict[str, Any]]:
    """`pulumi stack history --json`: the engine's own record of every update, in the shared backend."""
    return json.loads(engine.run(stack, ["stack", "history", "--json"], capture=True).stdout or "[]")
