"""After `invoke destroy` the hint keeps the tracked stack file (issue 17, item 11): the engine's own
`pulumi stack rm <stack>` would delete Pulumi.<stack>.yaml; the task's hint, run as printed in an
activated shell, removes the stack from the backend and keeps the file."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.e2e.test_gitops_activate import plain_env

pytestmark = [pytest.mark.engine, pytest.mark.db]


def test_the_hint_after_destroy_keeps_the_stack_file(e2e_stack):
    stack = e2e_stack()
    stack.invoke("up")
    destroyed = stack.invoke("destroy")
    assert f"run `pulumi stack rm {stack.name}`" not in destroyed.stdout, destroyed.stdout
    hint = re.search(r"`(source scripts/activate)`, then `(pulumi stack rm [^`]+)`", destroyed.stdout)
    assert hint and "--preserve-config" in hint.group(2), destroyed.stdout
    before = stack.stack_file.read_text()
    ran = subprocess.run(["bash", "-c", f"{hint.group(1)} && {hint.group(2)} --non-interactive"],
                         cwd=stack.root, text=True, capture_output=True, timeout=300,
                         env=plain_env(PULUMI_BACKEND_URL=stack.env["PULUMI_BACKEND_URL"],
                                       PULUMI_CONFIG_PASSPHRASE=stack.env["PULUMI_CONFIG_PASSPHRASE"],
                                       PULUMI_HOME=stack.env["PULUMI_HOME"]))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert stack.stack_file.read_text() == before  # the tracked file stays, as it was
    assert stack.name not in stack.pulumi("stack", "ls", "--json").stdout
