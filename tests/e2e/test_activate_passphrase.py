"""`source scripts/activate` never exports stack local's public passphrase (issue 16): its `pulumi`
function hands it to the engine for stack `local` only, so a new real stack cannot be silently
encrypted with it. A fresh bash with no PULUMI_* runs the real engine on a backend in a temp dir
and on a copy of the project files (the user's `local` stack and Pulumi.local.yaml stay untouched)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from devenv import engine
from tests.e2e.test_gitops_activate import plain_env
from tests.e2e import gitops_support as support

pytestmark = [pytest.mark.engine]


def activated(script: str, cwd, **extra: str) -> subprocess.CompletedProcess[str]:
    """`script` in a new bash after `source scripts/activate`, run in `cwd`."""
    return subprocess.run(["bash", "-c", f'source "{support.ROOT}/scripts/activate" && cd "{cwd}" && {script}'],
                          cwd=support.ROOT, env=plain_env(**extra), text=True, capture_output=True, timeout=600)


@pytest.fixture
def project(tmp_path):
    """Pulumi.yaml and Pulumi.local.yaml copied, and a backend of the test's own."""
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.local.yaml"):
        shutil.copy(support.ROOT / name, copy / name)
    (tmp_path / "backend").mkdir()
    return copy, (tmp_path / "backend").as_uri()


def test_the_shell_gets_no_passphrase(project):
    copy, backend = project
    shown = activated('printf "[%s]\\n" "${PULUMI_CONFIG_PASSPHRASE-none}"; export -p', copy,
                      PULUMI_BACKEND_URL=backend)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "[none]"
    assert engine.LOCAL_PASSPHRASE not in shown.stdout + shown.stderr  # not exported, not printed


def test_a_new_real_stack_gets_no_passphrase_and_local_does(project):
    copy, backend = project
    real = activated("pulumi stack init --stack staging-x --secrets-provider passphrase --no-select "
                     "--non-interactive", copy, PULUMI_BACKEND_URL=backend)
    assert real.returncode != 0
    assert "PULUMI_CONFIG_PASSPHRASE" in real.stderr, real.stderr  # the engine asks for the team's passphrase
    assert not (copy / "Pulumi.staging-x.yaml").exists()  # nothing encrypted with the public one
    for spelling in ("--stack local", "-s local", "--stack=local"):
        local = activated(f"pulumi stack init {spelling} --secrets-provider passphrase --no-select "
                          "--non-interactive && pulumi config set --secret habit-tracker-db:probe x "
                          f"{spelling} --non-interactive && pulumi stack rm {spelling} --yes --force "
                          "--preserve-config --non-interactive", copy, PULUMI_BACKEND_URL=backend)
        assert local.returncode == 0, local.stdout + local.stderr
        shutil.copy(support.ROOT / "Pulumi.local.yaml", copy / "Pulumi.local.yaml")


def test_an_older_activations_export_is_removed(project):
    copy, backend = project
    shown = activated('printf "[%s]\\n" "${PULUMI_CONFIG_PASSPHRASE-none}"', copy, PULUMI_BACKEND_URL=backend,
                      PULUMI_CONFIG_PASSPHRASE=engine.LOCAL_PASSPHRASE)
    assert shown.stdout.splitlines() == ["[none]"]
    team = activated('printf "[%s]\\n" "${PULUMI_CONFIG_PASSPHRASE-none}"', copy, PULUMI_BACKEND_URL=backend,
                     PULUMI_CONFIG_PASSPHRASE="team-secret")
    assert team.stdout.splitlines() == ["[team-secret]"]
