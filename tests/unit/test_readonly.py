"""The read-only preview's pure parts: the state and stack file it keeps, who it connects as, what it refuses;
and the workflows' summary check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dualwrite import ci_summary, readonly
from dualwrite.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SECRET = {readonly.SECRET_SIGNATURE: "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "v1:abc"}


def checkpoint(extra_resource: dict | None = None) -> dict:
    provider = {"urn": "urn:pulumi:dev::habit-tracker-db::pulumi:providers:pulumi-python::default",
                "type": "pulumi:providers:pulumi-python",
                "inputs": {"habit-tracker-db:db_host": "h", readonly.PASSWORD_KEY: SECRET},
                "outputs": {"habit-tracker-db:db_host": "h", readonly.PASSWORD_KEY: SECRET}}
    table = {"urn": "urn:pulumi:dev::habit-tracker-db::t::idempotency_log", "type": "pulumi-python:dynamic:Table",
             "inputs": {"name": "idempotency_log"}, "outputs": {"name": "idempotency_log"}}
    resources = [provider, table] + ([extra_resource] if extra_resource else [])
    return {"version": 3, "checkpoint": {"stack": "dev", "latest": {
        "manifest": {}, "secrets_providers": {"type": "passphrase", "state": {"salt": "v1:x"}}, "resources": resources}}}


def test_the_import_document_drops_the_stacks_passphrase_and_the_providers_copy_of_the_password():
    document = readonly.deployment_for_import(checkpoint())
    assert document["version"] == 3 and "secrets_providers" not in document["deployment"]
    assert readonly.SECRET_SIGNATURE not in json.dumps(document)
    provider, table = document["deployment"]["resources"]
    assert provider["inputs"] == {"habit-tracker-db:db_host": "h"}
    assert table["inputs"] == {"name": "idempotency_log"}


def test_any_other_secret_in_state_is_refused_with_its_resource():
    leaky = {"urn": "urn:pulumi:dev::habit-tracker-db::t::leaky", "type": "pulumi-python:dynamic:Table",
             "inputs": {"token": SECRET}, "outputs": {}}
    with pytest.raises(ConfigError, match="leaky holds a secret in its inputs"):
        readonly.deployment_for_import(checkpoint(leaky))


def test_the_stack_file_copy_has_no_secret_and_the_throwaway_salt():
    text = (ROOT / "Pulumi.dev.yaml").read_text() + (
        "  habit-tracker-db:db_password:\n    secure: v1:secret\nencryptionsalt: v1:stacks-own\n")
    copy = yaml.safe_load(readonly.config_without_secrets("dev", text, salt="v1:throwaway"))
    assert "habit-tracker-db:db_password" not in copy["config"]
    assert copy["encryptionsalt"] == "v1:throwaway"
    assert copy["config"]["habit-tracker-db:db_host"] == "db.devprojectref.supabase.co"


def test_a_read_only_job_connects_as_the_preview_role_and_only_then():
    info = {"host": "h", "user": "postgres", "password": "deploy"}
    assert readonly.conninfo(info, "dev", {}) == info
    env = {readonly.DB_PASSWORD: "pw"}
    assert readonly.conninfo(info, "dev", env) == {"host": "h", "user": "dev_preview", "password": "pw"}
    assert readonly.role("e2e-gitops.1", {}) == "e2e_gitops_1_preview"
    assert readonly.role("dev", {readonly.DB_USER: "dev_ro.ref"}) == "dev_ro.ref"


def test_a_state_url_that_is_not_postgres_is_a_clear_error():
    with pytest.raises(ConfigError, match="must be a postgres:// URL"):
        readonly.backend_location("s3://bucket/state")
    assert readonly.backend_location("postgres://r:p@h:5432/ops?sslmode=require&table=st") == (
        "postgresql://r:p@h:5432/ops?sslmode=require", "st", "ops/")


@pytest.fixture
def stack_with_secret():
    """A git-ignored stack file of this test's own, with its password as a secret (as a real stack's is)."""
    name = f"e2e-ro-{os.getpid()}"
    path = ROOT / f"Pulumi.{name}.yaml"
    path.write_text((ROOT / "Pulumi.dev.yaml").read_text()
                    + "  habit-tracker-db:db_password:\n    secure: v1:AAAA:BBBB\nencryptionsalt: v1:CCCC\n")
    try:
        yield name
    finally:
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("task", [["up"], ["refresh"], ["destroy"]])
def test_a_read_only_job_refuses_what_changes_a_stack_before_anything_runs(task, stack_with_secret):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PULUMI_")}
    env[readonly.DB_PASSWORD] = "pw"
    result = subprocess.run([str(Path(sys.executable).parent / "invoke"), *task, "--stack", stack_with_secret],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"`pulumi {task[0]}` changes the stack, and this job holds read-only credentials only" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_summary_check_passes_on_success_and_skipped_only():
    assert ci_summary.failures("plan=success test=success stack=skipped") == []
    assert ci_summary.failures("plan=success test=failure stack=cancelled") == ["test: failure", "stack: cancelled"]
    assert ci_summary.failures("plan=") == ["plan: no result"]
    assert ci_summary.failures("") == ["no job results given"]


def test_the_stack_before_is_read_as_its_own_preview_role_never_with_the_jobs_own_password():
    env = {readonly.DB_PASSWORD: "staging-preview-pw", readonly.PREVIOUS_DB_PASSWORD: "dev-preview-pw"}
    info = {"host": "h", "user": "postgres", "password": None}
    assert readonly.conninfo(info, "staging", env) == {"host": "h", "user": "staging_preview",
                                                      "password": "staging-preview-pw"}
    assert readonly.conninfo(info, "dev", env, previous_of="staging") == {"host": "h", "user": "dev_preview",
                                                                         "password": "dev-preview-pw"}
    with pytest.raises(ConfigError) as refused:  # no password of dev's role: refused, not staging's tried
        readonly.conninfo(info, "dev", {readonly.DB_PASSWORD: "staging-preview-pw"}, previous_of="staging")
    message = str(refused.value)
    assert "PREVIEW_PREVIOUS_DB_PASSWORD" in message and "dev_preview" in message and "preview-staging" in message
    assert "staging-preview-pw" not in message
    # Outside a read-only job nothing changes: the deploy's gate re-check reads with its own credentials.
    assert readonly.conninfo(info, "dev", {}, previous_of="staging") == info


def test_a_deploy_job_reads_the_stack_before_as_its_preview_role():
    """Each stack has its own passphrase: staging's deploy job cannot decrypt dev's password, so its
    gate re-check reads dev as dev_preview (PREVIEW_PREVIOUS_DB_PASSWORD); its own stack as before."""
    info = {"host": "h", "user": "postgres", "password": "deploy-pw"}
    env = {readonly.PREVIOUS_DB_PASSWORD: "dev-preview-pw", "PULUMI_CONFIG_PASSPHRASE": "staging-own"}
    assert not readonly.active(env)
    assert readonly.conninfo(info, "dev", env, previous_of="staging") == {
        "host": "h", "user": "dev_preview", "password": "dev-preview-pw"}
    assert readonly.conninfo(info, "staging", env) == info
