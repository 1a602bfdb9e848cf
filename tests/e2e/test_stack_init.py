"""`invoke stack-init --stack S` (issue 17, item 10): one command makes a real environment's stack
deployable. It creates the stack in the backend without selecting it, and stores the database
password as a Pulumi secret read from stdin (CI) or a no-echo prompt, never from an argument,
encrypted with the stack's own passphrase; it refuses, before anything changes, when there is none
or when it is stack local's public one. The stacks, files and backends are the tests' own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devenv import engine

pytestmark = [pytest.mark.engine, pytest.mark.db]
PASSWORD = "n0t-in-any-0utput-Pw"
HEADER = (Path(__file__).resolve().parents[2] / "Pulumi.dev.yaml").read_text().split("config:")[0]


def fresh(stack) -> None:
    """The stack as a new environment has it: a committed stack file (with its comments), no stack in
    the backend, no encryption salt, no password."""
    stack.pulumi("stack", "rm", "--yes", "--force", "--preserve-config")
    text = "".join(line for line in stack.stack_file.read_text().splitlines(keepends=True)
                   if not line.startswith("encryptionsalt:"))
    stack.stack_file.write_text(HEADER + text)


def stack_init(stack, stdin: str, **env_changes: str | None) -> subprocess.CompletedProcess[str]:
    env = {**stack.env, **{k: v for k, v in env_changes.items() if v is not None}}
    for key in [k for k, v in env_changes.items() if v is None]:
        env.pop(key, None)
    return subprocess.run([str(Path(sys.executable).parent / "invoke"), "stack-init", "--stack", stack.name],
                          cwd=stack.root, env=env, input=stdin, text=True, capture_output=True, timeout=600)


def in_backend(stack) -> bool:
    listed = stack.pulumi("stack", "ls", "--json")
    return any(entry["name"] == stack.name for entry in json.loads(listed.stdout))


def plain_pulumi(stack, *args: str) -> subprocess.CompletedProcess[str]:
    """A plain `pulumi` in this folder as a user types it: no --stack, no PULUMI_STACK."""
    env = {k: v for k, v in engine.environment(stack.name, stack.env).items() if k != "PULUMI_STACK"}
    return subprocess.run([str(engine.pulumi_binary()), *args, "--non-interactive"], cwd=stack.root, env=env,
                          text=True, capture_output=True)


def selected(stack) -> str | None:
    """The stack a plain `pulumi` here works on (the workspace's selection), None if none."""
    shown = plain_pulumi(stack, "stack", "--show-name")
    return shown.stdout.strip() if shown.returncode == 0 else None


def test_one_command_creates_the_stack_and_stores_the_password_from_stdin(e2e_stack):
    stack = e2e_stack()
    fresh(stack)
    assert not in_backend(stack) and selected(stack) is None
    result = stack_init(stack, PASSWORD + "\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert f"Commit {stack.stack_file.name}" in result.stdout
    text = stack.stack_file.read_text()
    assert PASSWORD not in text and re.search(r"habit-tracker-db:db_password:\s*\n\s+secure: ", text), text
    assert text.startswith(HEADER)  # the file's comments stay
    assert in_backend(stack) and selected(stack) is None  # created, not selected
    assert stack.pulumi("config", "get", "habit-tracker-db:db_password").stdout.strip() == PASSWORD
    assert "stack-init" in HEADER and "config set" not in HEADER  # what the committed files tell people
    stack.invoke("up")  # deployable with no other step
    assert "FAIL" not in stack.invoke("smoke-test").stdout


@pytest.mark.parametrize("case, stdin, env, expected", [
    ("no passphrase", PASSWORD, {"PULUMI_CONFIG_PASSPHRASE": None}, "no passphrase for its secrets"),
    ("local's passphrase", PASSWORD, {"PULUMI_CONFIG_PASSPHRASE": engine.LOCAL_PASSPHRASE},
     "stack 'local''s built-in one, which is public"),
    ("no password", "", {}, "no database password was given"),
    ("two lines", "a\nb\n", {}, "spans several lines"),
])
def test_refusals_change_nothing(e2e_stack, case, stdin, env, expected):
    stack = e2e_stack()
    fresh(stack)
    before = stack.stack_file.read_text()
    result = stack_init(stack, stdin, **env)
    message = result.stdout + result.stderr
    assert result.returncode != 0 and expected in message and "Traceback" not in message, message
    assert f"Stack '{stack.name}'" in message
    assert not in_backend(stack) and stack.stack_file.read_text() == before


def test_a_task_creating_a_stack_leaves_the_selected_stack_alone(e2e_stack):
    stack = e2e_stack()
    other = e2e_stack()
    other.backend = stack.backend  # one backend, two stacks
    other.init()
    other.pulumi("stack", "rm", "--yes", "--force", "--preserve-config")
    assert plain_pulumi(stack, "stack", "select", stack.name).returncode == 0  # the user works on `stack`
    assert selected(stack) == stack.name
    other.invoke("preview")  # creates `other` in the backend on first use
    assert in_backend(other) and selected(stack) == stack.name


def at_terminal(stack, answers: list[str]) -> tuple[int, str]:
    """`invoke stack-init` at a real terminal (a pty is its controlling tty): each answer is typed
    after the next prompt; returns (exit code, everything the terminal showed)."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: a user's shell in the project folder
        os.chdir(stack.root)
        os.execve(str(Path(sys.executable).parent / "invoke"),
                  ["invoke", "stack-init", "--stack", stack.name], stack.env)
    shown, pending, answered_at = b"", list(answers), 0
    while True:
        ready, _, _ = select.select([fd], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
        if pending and len(shown) > answered_at and shown.endswith(b": "):  # a new prompt, waiting
            answered_at = len(shown)
            os.write(fd, (pending.pop(0) + "\n").encode())
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_at_a_terminal_the_password_is_asked_twice_and_never_shown(e2e_stack):
    stack = e2e_stack()
    fresh(stack)
    code, shown = at_terminal(stack, [PASSWORD, PASSWORD + "typo"])
    assert code != 0 and "the two passwords typed differ" in shown and not in_backend(stack), shown
    code, shown = at_terminal(stack, [PASSWORD, PASSWORD])
    assert code == 0, shown
    assert "(not shown)" in shown and PASSWORD not in shown  # the terminal did not echo it
    assert stack.pulumi("config", "get", "habit-tracker-db:db_password").stdout.strip() == PASSWORD
