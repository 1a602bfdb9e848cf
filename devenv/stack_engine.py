"""This machine as the library's StackEngine (dualwrite/stack_engine.py): the Pulumi CLI of
devenv/engine.py and the embedded cluster of devenv/localdb.py. tasks.py passes `ENGINE` in."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable, Mapping, Sequence

from devenv import engine
from dualwrite.stack_engine import StackEngine


class WorkstationEngine:
    def run(self, stack: str, args: Sequence[str], *, capture: bool = False, check: bool = True,
            timeout: float | None = None, input: str | None = None,
            rewrite_line: Callable[[str], str] | None = None) -> subprocess.CompletedProcess[str]:
        return engine.run(stack, args, capture=capture, check=check, timeout=timeout, input=input,
                          rewrite_line=rewrite_line)

    def passphrase_problem(self, stack: str) -> str | None:
        return engine.passphrase_problem(stack)

    def ensure_stack(self, stack: str) -> None:
        engine.ensure_stack(stack)

    def recover(self, stack: str) -> list[str]:
        return engine.recover(stack)

    def attention(self, stack: str) -> list[str]:
        return engine.attention(stack)

    def environment(self, stack: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
        return engine.environment(stack, base)

    def pulumi_binary(self) -> Path:
        return engine.pulumi_binary()

    def link_program_virtualenv(self) -> None:
        engine.link_program_virtualenv()

    def start_embedded_database(self) -> None:
        from devenv import localdb  # only stack local needs it

        localdb.ensure_running()


ENGINE: StackEngine = WorkstationEngine()  # typed so that mypy checks it keeps the protocol
