"""`source scripts/activate`: the shell variables that make a plain `pulumi` behave like `invoke`.

The values come from devenv.engine.environment(), the one place that knows them (engine
binary and virtualenv first on PATH, the project's file backend unless PULUMI_BACKEND_URL is
already set, update checks and plugin downloads off, PULUMI_HOME beside our own build), so a
shell and the tasks always run the engine the same way. Printed as `export` lines for `eval`.

Three of engine.environment()'s variables are left out on purpose: PULUMI_STACK (a shell works
on many stacks: pass `--stack`), PULUMI_SKIP_CONFIRMATIONS (a person at a prompt keeps Pulumi's
own "type the stack name" confirmations) and PULUMI_CONFIG_PASSPHRASE: stack `local`'s built-in
passphrase is public, and exported it would silently encrypt a new real stack's secrets. It is
kept in a shell variable that is not exported, `_habit_local_passphrase`, and scripts/activate's
`pulumi` function hands it to the engine only for a command on stack `local` when the shell has
no passphrase of its own (PULUMI_CONFIG_PASSPHRASE or _FILE). An older activation's export of it
is removed. A passphrase is never printed to the terminal: it is only in the text handed to `eval`.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Mapping

from devenv import engine

LEFT_OUT = ("PULUMI_STACK", "PULUMI_SKIP_CONFIRMATIONS", "PULUMI_CONFIG_PASSPHRASE")


def variables(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables activation sets or changes, computed by engine.environment()."""
    base = dict(os.environ if base is None else base)
    env = engine.environment("local", base)
    return {key: value for key, value in env.items() if key not in LEFT_OUT and base.get(key) != value}


def exports(base: Mapping[str, str] | None = None) -> str:
    values = variables(base)
    url = values.get("PULUMI_BACKEND_URL") or (base or os.environ).get("PULUMI_BACKEND_URL", "")
    if url.startswith("file://"):
        Path(url[len("file://"):]).mkdir(parents=True, exist_ok=True)
    engine.link_program_virtualenv()
    base = os.environ if base is None else base
    lines = [f"export {key}={shlex.quote(value)}\n" for key, value in sorted(values.items())]
    if base.get("PULUMI_CONFIG_PASSPHRASE") == engine.LOCAL_PASSPHRASE:
        lines.append("unset PULUMI_CONFIG_PASSPHRASE\n")  # exported by an older activation
    lines.append(f"_habit_local_passphrase={shlex.quote(engine.LOCAL_PASSPHRASE)}\n")
    return "".join(lines)


if __name__ == "__main__":
    try:
        sys.stdout.write(exports())
    except engine.EngineError as error:
        sys.stderr.write(f"error: {error}\n")
        sys.exit(1)
