"""Read-only previews: what a pull request's job can show without any secret that changes a stack.

A pull request runs the PR's own code, so its job holds no passphrase of a stack (that decrypts
`db_password`) and no credential that writes the state. It holds two secrets of its preview
environment (`preview-<stack>`):

    PULUMI_STATE_READONLY_URL   postgres:// URL of the team backend as a role that can only SELECT
                                from its state table (`invoke state-reader-role` makes one)
    PREVIEW_DB_PASSWORD         the password of the stack's preview role `<stack>_preview`
                                (`invoke preview-role` makes it): no write privilege, and
                                default_transaction_read_only = on; PREVIEW_DB_USER names another
    PREVIEW_PREVIOUS_DB_PASSWORD the password of the preview role of the stack before (its
                                `promotes_from`), which the promotion gate reads; only in the
                                environments of stacks that have one (PREVIEW_PREVIOUS_DB_USER names another)

The gate reads the stack history from the same state rows (dualwrite/state_history.py), and the
rows row-level security hides from a read-only role through dual_write_gate_evidence()
(dualwrite/gate_evidence.py).

`pulumi preview` needs the stack's passphrase (it decrypts the stack's config first), and the
CLI's postgres:// backend runs CREATE TABLE IF NOT EXISTS when it opens, which a read-only role
cannot. So the preview runs on a throwaway copy (`ThrowawayStack`): the stack's last checkpoint,
read with one SELECT, is imported into a local file backend in a temp dir under a random
passphrase, with a copy of the stack file that has no secret; the provider then connects as the
preview role (`conninfo`), its password taken from the environment, never written anywhere.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml

from dualwrite.config import PROJECT, ROOT, ConfigError, stack_file_name
from dualwrite.stack_engine import EngineError, StackEngine

STATE_URL = "PULUMI_STATE_READONLY_URL"
DB_PASSWORD = "PREVIEW_DB_PASSWORD"
DB_USER = "PREVIEW_DB_USER"
# The promotion gate of stack S also reads the stack before S (its `promotes_from`): as that
# stack's own preview role, whose password the preview environment of S holds under this name.
PREVIOUS_DB_PASSWORD = "PREVIEW_PREVIOUS_DB_PASSWORD"
PREVIOUS_DB_USER = "PREVIEW_PREVIOUS_DB_USER"
# What a read-only job must not hold: any of these would let the PR's code decrypt or write.
DEPLOY_SECRETS = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_BACKEND_URL")
PASSWORD_KEY = f"{PROJECT}:db_password"
# Pulumi marks a secret value in state with this signature key.
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"


def active(env: Mapping[str, str] | None = None) -> bool:
    """True in a read-only job: the preview role's password is all it has to reach the database."""
    return bool((os.environ if env is None else env).get(DB_PASSWORD))


def previous_as_preview(env: Mapping[str, str] | None = None) -> bool:
    """True when the stack before is read as its preview role: in a read-only job, or in a deploy
    job that holds PREVIEW_PREVIOUS_DB_PASSWORD (the stack before's password is not its to decrypt)."""
    env = os.environ if env is None else env
    return active(env) or bool(env.get(PREVIOUS_DB_PASSWORD))


def default_role(stack: str) -> str:
    """`<stack>_preview`, non-identifier characters as `_`."""
    return re.sub(r"[^a-z0-9_]", "_", stack.lower()) + "_preview"


def role(stack: str, env: Mapping[str, str] | None = None) -> str:
    """The stack's preview role: PREVIEW_DB_USER, or `<stack>_preview`."""
    env = os.environ if env is None else env
    return env.get(DB_USER) or default_role(stack)


def conninfo(info: Mapping[str, Any], stack: str, env: Mapping[str, str] | None = None, *,
             previous_of: str | None = None) -> dict[str, Any]:
    """A stack's connection keywords, as the preview role in a read-only job (unchanged otherwise).

    `previous_of`: `stack` is read as the stack before that one (its promotion gate), as its own
    preview role with PREVIEW_PREVIOUS_DB_PASSWORD: never with the job's own stack's password. A
    deploy job holds that variable too (its stack's passphrase cannot decrypt the stack before's
    password: each stack has its own), so it reads the stack before the same way."""
    env = os.environ if env is None else env
    if previous_of is not None and not active(env) and not env.get(PREVIOUS_DB_PASSWORD):
        return dict(info)
    if previous_of is None:
        if not active(env):
            return dict(info)
        return {**info, "user": role(stack, env), "password": env[DB_PASSWORD]}
    user = env.get(PREVIOUS_DB_USER) or default_role(stack)
    password = env.get(PREVIOUS_DB_PASSWORD)
    if not password:
        raise ConfigError(f"Stack '{previous_of}': its promotion gate reads '{stack}', the stack before it, and this "
                          f"read-only job holds no {PREVIOUS_DB_PASSWORD} (the password of '{stack}'s preview role "
                          f"{user}, a secret of the GitHub environment preview-{previous_of}; `invoke preview-role "
                          f"--stack {stack}` makes the role). Nothing was changed.")
    return {**info, "user": user, "password": password}


def refusal(stack: str, command: str) -> str:
    return (f"Stack '{stack}': `{command}` changes the stack, and this job holds read-only credentials only "
            f"({DB_PASSWORD} is set: the preview role). Allowed here: preview, policy, pr-comment, drift, "
            "smoke-test's reads. Deploy from the stack's own environment (the deploy workflow); nothing was changed.")


def backend_location(url: str) -> tuple[str, str, str]:
    """(libpq URL, state table, key prefix) of a CLI postgres:// backend URL (`?table=` names the table)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"{STATE_URL} must be a postgres:// URL of the team backend (a role that can only "
                          f"SELECT its state table); it is a {parts.scheme or 'schemeless'} URL. Nothing was changed.")
    query = dict(parse_qsl(parts.query))
    table = query.pop("table", "pulumi_state")
    prefix = parts.path.lstrip("/")
    libpq = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query), ""))
    return libpq, table, (prefix + "/" if prefix else "")


def _read_objects(url: str, stack: str, keys: Sequence[str]) -> list[tuple[str, bytes]]:
    """(key, bytes) of the backend objects at `keys` that exist, read with one SELECT (nothing written)."""
    import psycopg
    from psycopg import sql

    libpq, table, _ = backend_location(url)
    try:
        with psycopg.connect(libpq, connect_timeout=10) as conn:
            conn.read_only = True
            rows = conn.execute(sql.SQL("SELECT key, data::text FROM {} WHERE key = ANY(%s)").format(
                sql.Identifier(table)), (list(keys),)).fetchall()
    except psycopg.Error as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(f"Stack '{stack}': cannot read its state through {STATE_URL} ({first}). It must be the "
                          "team backend's URL as a role with SELECT on the state table. Nothing was changed.") from None
    found = []
    for key, data in sorted(rows):
        raw = base64.b64decode(json.loads(data)["data"])
        found.append((key, gzip.decompress(raw) if key.endswith(".gz") else raw))
    return found


def _stack_key(url: str, stack: str, suffix: str) -> str:
    prefix = backend_location(url)[2]
    return f"{prefix}.pulumi/stacks/{PROJECT}/{stack}{suffix}"


def read_checkpoint(url: str, stack: str) -> dict[str, Any]:
    """The stack's last checkpoint in the team backend, read with one SELECT (nothing written)."""
    key = _stack_key(url, stack, ".json")
    rows = _read_objects(url, stack, [key, key + ".gz"])
    if not rows:
        raise ConfigError(f"Stack '{stack}': the team backend has no state for it (no row {key!r}); deploy it once "
                          "before a pull request can preview it. Nothing was changed.")
    return json.loads(rows[0][1])


def read_tags(url: str, stack: str) -> dict[str, str]:
    """The stack's tags (`pulumi stack tag`), which the DIY backend keeps beside its state as
    `<stack>.pulumi-tags`; empty when it has none."""
    rows = _read_objects(url, stack, [_stack_key(url, stack, ".pulumi-tags")])
    return dict((json.loads(rows[0][1]) or {}).get("tags") or {}) if rows else {}


def deployment_for_import(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """`pulumi stack import`'s document from a checkpoint, without the stack's secrets.

    The state holds one secret: the default provider's copy of the stack config (its
    `db_password`, encrypted with the stack's passphrase, which this job does not have). It is
    dropped, as is the secrets provider, so the throwaway stack's own passphrase applies. Any
    other secret in state is refused: the design keeps them out."""
    latest = json.loads(json.dumps((checkpoint.get("checkpoint") or {}).get("latest") or {}))
    latest.pop("secrets_providers", None)
    for resource in latest.get("resources") or []:
        for field in ("inputs", "outputs"):
            values = resource.get(field) or {}
            if resource.get("type", "").startswith("pulumi:providers:"):
                values.pop(PASSWORD_KEY, None)
            if SECRET_SIGNATURE in json.dumps(values):
                raise ConfigError(f"Resource {resource.get('urn')} holds a secret in its {field}; a read-only preview "
                                  "cannot decrypt it. Only the stack's db_password may be secret, and it reaches the "
                                  "provider through its configuration. Nothing was changed.")
    return {"version": 3, "deployment": latest}


def config_without_secrets(stack: str, text: str, *, salt: str | None = None) -> str:
    """The stack file with no secret, and the throwaway stack's salt: what the throwaway stack runs with."""
    document = yaml.safe_load(text) or {}
    document.pop("encryptionsalt", None)
    if salt:
        document["encryptionsalt"] = salt
    config = {key: value for key, value in (document.get("config") or {}).items()
              if not (isinstance(value, dict) and "secure" in value)}
    return yaml.safe_dump({**document, "config": config}, sort_keys=False)


class ThrowawayStack:
    """A copy of a stack in a temp dir: its state (read-only), its config without secrets, a random passphrase."""

    def __init__(self, stack: str, engine: StackEngine, env: Mapping[str, str] | None = None) -> None:
        self.stack = stack
        self.engine = engine
        self.base_env = dict(os.environ if env is None else env)
        self.dir = Path(tempfile.mkdtemp(prefix=f"preview-{stack}-"))
        # Random and forgotten: the throwaway stack holds no secret worth a passphrase.
        self.passphrase = secrets.token_hex(16)

    def __enter__(self) -> "ThrowawayStack":
        self.engine.link_program_virtualenv()
        try:
            url = self.base_env.get(STATE_URL)
            if not url:
                raise ConfigError(f"Stack '{self.stack}': a read-only preview needs {STATE_URL}, the team backend's "
                                  "URL as a role that can only SELECT its state. Nothing was changed.")
            document = deployment_for_import(read_checkpoint(url, self.stack))
            (self.dir / "state.json").write_text(json.dumps(document))
            # `stack init` writes the new salt into Pulumi.<stack>.yaml of its working directory: here
            # the temp dir (with a copy of Pulumi.yaml), never the checkout's stack file.
            shutil.copy(ROOT / "Pulumi.yaml", self.dir / "Pulumi.yaml")
            self.run(["stack", "init", self.stack, "--secrets-provider", "passphrase"], setup=True)
            salt = (yaml.safe_load(self.config_file.read_text()) or {}).get("encryptionsalt")
            self.config_file.write_text(config_without_secrets(self.stack, (ROOT / stack_file_name(self.stack)).read_text(),
                                                               salt=salt))
            self.run(["stack", "import", "--file", str(self.dir / "state.json"), "--stack", self.stack], setup=True)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def config_file(self) -> Path:
        return self.dir / stack_file_name(self.stack)

    def env(self) -> dict[str, str]:
        env = self.engine.environment(self.stack, {k: v for k, v in self.base_env.items() if k not in DEPLOY_SECRETS})
        env["PULUMI_BACKEND_URL"] = (self.dir / "backend").as_uri()
        env["PULUMI_HOME"] = str(self.dir / "pulumi-home")
        env["PULUMI_CONFIG_PASSPHRASE"] = self.passphrase
        return env

    def run(self, args: Sequence[str], *, capture: bool = False, setup: bool = False) -> subprocess.CompletedProcess[str]:
        """`pulumi <args>` on the throwaway stack, from the checkout with the copied stack file; with
        `setup`, from the temp dir, and a failure is an EngineError."""
        (self.dir / "backend").mkdir(exist_ok=True)
        command = [str(self.engine.pulumi_binary()), *args, "--non-interactive"]
        if not setup:
            command += ["--stack", self.stack, "--config-file", str(self.config_file)]
        result = subprocess.run(command, cwd=self.dir if setup else ROOT, env=self.env(), text=True,
                                capture_output=capture or setup)
        if setup and result.returncode != 0:
            raise EngineError(f"read-only preview of stack '{self.stack}': `pulumi {' '.join(args[:2])}` "
                              f"failed: {(result.stderr or result.stdout).strip()[-1500:]}")
        return result
