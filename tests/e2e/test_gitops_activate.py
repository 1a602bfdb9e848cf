"""`source scripts/activate`, then a plain `pulumi` works from a shell (issue 10, part 1).

The shell is a fresh `bash -c` with the variables a new user has (no PULUMI_*), so only
the activation supplies engine, virtualenv, backend and passphrase. The stack and its file
backend are the test's own; the default backend is only checked for its value, never used.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.e2e import gitops_support as support

pytestmark = [pytest.mark.engine, pytest.mark.db]


def plain_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_") and k != "VIRTUAL_ENV"}
    # PATH as a plain shell has it: no .tools/bin, no .venv/bin
    keep["PATH"] = os.pathsep.join(p for p in keep.get("PATH", "").split(os.pathsep)
                                   if not p.startswith(str(support.ROOT)))
    return {**keep, **extra}


def shell(script: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], cwd=support.ROOT, env=plain_env(**extra), text=True,
                          capture_output=True, timeout=600)


def test_activate_sets_what_the_tasks_use():
    result = shell('source scripts/activate && printf "%s\\n" "$PULUMI_BACKEND_URL" "$VIRTUAL_ENV" '
                   '"$(type -P pulumi)" "$(command -v python3)" "$PULUMI_SKIP_UPDATE_CHECK" '
                   '"$PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION" "${PULUMI_CONFIG_PASSPHRASE:+set}" '
                   '"${PULUMI_STACK:-unset}"')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (support.ROOT / ".state" / "backend").as_uri()
    assert lines[1] == str(support.ROOT / ".venv")
    assert lines[2] == str(support.ROOT / ".tools" / "bin" / "pulumi")
    assert lines[3] == str(support.ROOT / ".venv" / "bin" / "python3")
    assert lines[4:8] == ["true", "true", "", "unset"]  # no passphrase: see test_activate_passphrase.py
    from devenv import engine

    assert engine.LOCAL_PASSPHRASE not in result.stdout + result.stderr  # never printed


def test_activate_keeps_a_backend_and_passphrase_already_set(tmp_path):
    result = shell('source scripts/activate && printf "%s\\n" "$PULUMI_BACKEND_URL" "$PULUMI_CONFIG_PASSPHRASE"',
                   PULUMI_BACKEND_URL="postgres://ops@db.example/state", PULUMI_CONFIG_PASSPHRASE="team-secret")
    assert result.stdout.splitlines() == ["postgres://ops@db.example/state", "team-secret"]


def test_plain_pulumi_preview_after_activation(tmp_path):
    support.sweep_stale()
    target = support.cluster("activate")
    stack = support.stack_name("activate")
    stack_file = support.ROOT / f"Pulumi.{stack}.yaml"
    backend = (tmp_path / "backend").as_uri()
    (tmp_path / "backend").mkdir()
    try:
        target.ensure_app_schema()
        stack_file.write_text(support.stack_file_text(target))
        result = shell(f"source scripts/activate && pulumi stack init {stack} --secrets-provider passphrase "
                       f"&& pulumi preview --stack {stack} --non-interactive",
                       PULUMI_BACKEND_URL=backend, PULUMI_CONFIG_PASSPHRASE=support.PASSPHRASE)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "PULUMI_ACCESS_TOKEN" not in result.stderr
        assert "migration013:Trigger" in result.stdout and "+ 1" not in result.stderr
        assert "create" in result.stdout
    finally:
        stack_file.unlink(missing_ok=True)
        target.destroy()
