"""The engine commands a task runs on a stack (`invoke preview`, `up`, `refresh`, `destroy`, `policy`),
checks first, so that a mistake ends in one paragraph before the engine or the database changes:

1. the stack file (a bad value stops here, before the engine or a connection);
2. a pull request's read-only job (dualwrite/readonly.py) previews a throwaway copy as the preview
   role, and refuses every other command;
3. the stack's passphrase, and for `up` what the stack file refuses to deploy;
4. the database answers, the stack exists in the backend, and what a cut-off deploy left is undone
   (each undone thing printed as a `note:` line);
5. the engine, its output streamed; after `up`, what it left for a person (`attention:` lines);
6. a command that failed: one line naming it, the stack and its phase.

Every refusal is a ConfigError or EngineError paragraph, which tasks.py's one error boundary shows.
The engine is passed in (dualwrite/stack_engine.py).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Callable, Sequence

from dualwrite import connection, readonly
from dualwrite import config as stack_config
from dualwrite.config import ConfigError, StackConfig
from dualwrite.stack_engine import EngineError, StackEngine


def run(stack: str, args: Sequence[str], engine: StackEngine, *,
        rewrite_line: Callable[[str], str] | None = None) -> StackConfig:
    """`pulumi <args>` on the stack after the checks above; returns the stack's config."""
    config = stack_config.load(stack)
    command = args[0]
    if readonly.active():  # a pull request's job: preview a throwaway copy as the preview role
        if command != "preview":
            raise ConfigError(readonly.refusal(stack, f"pulumi {command}"))
        connection.check_reachable(stack, engine)
        with readonly.ThrowawayStack(stack, engine) as copy:
            result = copy.run(args)
        if result.returncode != 0:
            raise EngineError(f"pulumi {command} failed for stack '{stack}' (phase {config.stage.key}, read-only)")
        return config
    problem = engine.passphrase_problem(stack) or (config.deploy_refusal() if command == "up" else None)
    if problem:
        raise ConfigError(problem)
    connection.check_reachable(stack, engine)
    engine.ensure_stack(stack)
    for done in engine.recover(stack):
        print(f"note: {done}")
    result = engine.run(stack, args, check=False, rewrite_line=rewrite_line)
    for paragraph in engine.attention(stack) if command == "up" else []:
        print(f"attention: {paragraph}", file=sys.stderr)
    if result.returncode != 0:
        raise EngineError(f"pulumi {command} failed for stack '{stack}' (phase {config.stage.key})")
    return config


def preview_json(stack: str, engine: StackEngine) -> dict[str, Any]:
    """`pulumi preview --json` of the stack (in a read-only job: of its throwaway copy, as the
    preview role): the document a PR comment is built from."""
    if readonly.active():
        with readonly.ThrowawayStack(stack, engine) as copy:
            result = copy.run(["preview", "--json"], capture=True)
    else:
        engine.ensure_stack(stack)
        result = engine.run(stack, ["preview", "--json"], capture=True, check=False)
    try:
        preview = json.loads(result.stdout)
    except ValueError:
        raise EngineError(f"pulumi preview failed for stack '{stack}': {result.stderr.strip()[-1500:]}") from None
    if result.returncode != 0:
        raise EngineError(f"pulumi preview failed for stack '{stack}': "
                          + "; ".join(d.get("message", "") for d in preview.get("diagnostics", [])
                                      if d.get("severity") == "error")[-1500:])
    return preview


def keep_stack_file(stack: str, line: str) -> str:
    """The engine's hint after a destroy, `pulumi stack rm <stack>`, also deletes the tracked
    Pulumi.<stack>.yaml (and needs an activated shell): this one keeps the file."""
    # Only the engine's own line ("... completely, run `pulumi stack rm <stack>`."): a diagnostic that
    # names `pulumi stack rm` for another reason stays as it is.
    if not line.rstrip().endswith(f"run `pulumi stack rm {stack}`."):
        return line
    return (f"If you want to remove the stack from the backend too, keeping its tracked Pulumi.{stack}.yaml: "
            f"`source scripts/activate`, then `pulumi stack rm {stack} --preserve-config --yes`.\n")
