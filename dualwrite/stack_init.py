"""`invoke stack-init --stack S`: one command makes a real environment's stack deployable.

It creates the stack in the backend (without selecting it: a plain `pulumi` in this folder
keeps working on the stack it worked on) and stores the database password as a Pulumi secret,
encrypted with the stack's own passphrase from PULUMI_CONFIG_PASSPHRASE(_FILE), never with stack
`local`'s public built-in one.

The password is read without echo at a terminal (twice, to catch a typo), or from stdin when
stdin is not a terminal (CI: `printf %s "$DB_PASSWORD" | invoke stack-init --stack dev`). It is
never a command-line argument (`ps` and shell history show those), and it reaches the engine on
its stdin too. Everything is checked before the backend or the stack file changes.
"""

from __future__ import annotations

import getpass
from typing import Callable, TextIO

from dualwrite.config import ConfigError, check_file, stack_file_name
from dualwrite.stack_engine import PASSWORD_KEY, StackEngine


def check_stack_file(stack: str) -> None:
    """The stack file exists, parses, and every key but the password is allowed."""
    if stack == "local":
        raise ConfigError("Stack 'local' is the embedded database: every task creates it on first use, and it has "
                          "no password to store. `invoke stack-init` is for a real environment's stack (dev, "
                          "staging, prod, ...); nothing was changed.")
    check_file(stack)


def read_password(stack: str, stdin: TextIO, prompt: Callable[[str], str] = getpass.getpass) -> str:
    """The password from a no-echo prompt (twice) at a terminal, else all of stdin (one line)."""
    if stdin.isatty():
        first = prompt(f"Database password of stack '{stack}' (not shown): ")
        if first and prompt("The same again: ") != first:
            raise ConfigError(f"Stack '{stack}': the two passwords typed differ; nothing was changed.")
        password = first
    else:
        password = stdin.read()
        password = password[:-1] if password.endswith("\n") else password
        password = password[:-1] if password.endswith("\r") else password
    if not password:
        raise ConfigError(f"Stack '{stack}': no database password was given (type it at the prompt, or pipe it "
                          f"on stdin: `printf %s \"$DB_PASSWORD\" | invoke stack-init --stack {stack}`); "
                          "nothing was changed.")
    if "\n" in password or "\r" in password:
        raise ConfigError(f"Stack '{stack}': the password read from stdin spans several lines; pipe exactly one "
                          "(no line break inside it); nothing was changed.")
    return password


def init(stack: str, stdin: TextIO, engine: StackEngine, prompt: Callable[[str], str] = getpass.getpass) -> str:
    """Create the stack (if new) and store its password as a secret; returns what to do next."""
    check_stack_file(stack)
    problem = engine.passphrase_problem(stack)
    if problem:
        raise ConfigError(problem)
    password = read_password(stack, stdin, prompt)
    engine.ensure_stack(stack)
    engine.run(stack, ["config", "set", "--secret", PASSWORD_KEY], capture=True, input=password)
    name = stack_file_name(stack)
    return (f"Stack '{stack}' is in the backend, and its database password is stored in {name} as a secret "
            f"(encrypted with your PULUMI_CONFIG_PASSPHRASE). Commit {name}; then `invoke up --stack {stack}` "
            "deploys it.")
