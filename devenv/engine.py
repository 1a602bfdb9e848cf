"""Running the real Pulumi CLI with the project's environment, fully offline.

The engine binaries come from `scripts/engine/build.sh` (linked at `.tools/bin`), or
from a `pulumi` already on PATH on a normal workstation. State lives in a local file
backend inside the project unless PULUMI_BACKEND_URL says otherwise; secrets use the
passphrase provider; update checks and plugin downloads are off, so no command of
this project ever tries the internet.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from dualwrite.config import ROOT

TOOLS_BIN = ROOT / ".tools" / "bin"
STATE = ROOT / ".state"
# Only the embedded local stack gets a built-in passphrase: it holds no secrets. Every
# real stack needs the team's PULUMI_CONFIG_PASSPHRASE (or _FILE).
LOCAL_PASSPHRASE = "local-stack-holds-no-secrets"


class EngineError(RuntimeError):
    """The engine is missing, or a pulumi command failed."""


def pulumi_binary() -> Path:
    built = TOOLS_BIN / "pulumi"
    if built.exists():
        return built
    ambient = shutil.which("pulumi")
    if ambient:
        return Path(ambient)
    raise EngineError(
        "No Pulumi CLI: neither .tools/bin/pulumi (built by `bash scripts/setup`) nor `pulumi` on PATH. "
        "Run `bash scripts/setup` once; it builds the pinned engine from Go modules."
    )


def environment(stack: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables every pulumi invocation of this project runs with."""
    env = dict(os.environ if base is None else base)
    binary = pulumi_binary()
    # The project's virtualenv first, as `source .venv/bin/activate` would: the language host
    # and the dynamic-provider launcher run `python3` from PATH (the older host built here
    # does not read Pulumi.yaml's `virtualenv` option; see scripts/engine/README.md).
    venv = ROOT / ".venv"
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join([str(binary.parent), str(venv / "bin"), env.get("PATH", "")])
    if binary.parent == TOOLS_BIN:
        # Our own build: plugins and the ambient provider live beside the CLI, not in ~/.pulumi.
        env.setdefault("PULUMI_HOME", str(STATE / "pulumi-home"))
    env.setdefault("PULUMI_BACKEND_URL", (STATE / "backend").as_uri())
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
    env["PULUMI_SKIP_CONFIRMATIONS"] = "true"
    env.setdefault("PULUMI_DIY_BACKEND_NO_LEGACY_WARNING", "true")
    if stack == "local" and "PULUMI_CONFIG_PASSPHRASE" not in env and "PULUMI_CONFIG_PASSPHRASE_FILE" not in env:
        env["PULUMI_CONFIG_PASSPHRASE"] = LOCAL_PASSPHRASE
    env["PULUMI_STACK"] = stack
    return env


def _backend_dir(env: Mapping[str, str]) -> Path | None:
    url = env.get("PULUMI_BACKEND_URL", "")
    return Path(url[len("file://") :]) if url.startswith("file://") else None


def run(
    stack: str,
    args: Sequence[str],
    *,
    capture: bool = False,
    check: bool = True,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`pulumi <args> --stack <stack>` in the project directory with the project's environment."""
    env = environment(stack)
    if extra_env:
        env.update(extra_env)
    backend = _backend_dir(env)
    if backend is not None:
        backend.mkdir(parents=True, exist_ok=True)
    command = [str(pulumi_binary()), *args, "--stack", stack, "--non-interactive"]
    result = subprocess.run(command, cwd=ROOT, env=env, text=True, capture_output=capture)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()[-2000:] if capture else "see the output above"
        raise EngineError(f"`pulumi {' '.join(args)}` failed for stack '{stack}' (exit {result.returncode}): {detail}")
    return result


def link_program_virtualenv() -> None:
    """`infra/.venv` -> `../.venv`: the language host built here resolves Pulumi.yaml's
    `virtualenv: .venv` against the program folder (`infra/`), newer hosts against the
    project root; the link makes both find the one virtualenv."""
    link = ROOT / "infra" / ".venv"
    if not link.exists() and not link.is_symlink():
        link.symlink_to(Path("..") / ".venv")


def ensure_stack(stack: str) -> None:
    """Create the stack in the backend on first use (a fresh clone has none)."""
    link_program_virtualenv()
    env = environment(stack)
    backend = _backend_dir(env)
    if backend is not None:
        backend.mkdir(parents=True, exist_ok=True)
    listed = subprocess.run(
        [str(pulumi_binary()), "stack", "ls", "--json"], cwd=ROOT, env=env, text=True, capture_output=True
    )
    if listed.returncode == 0 and any(entry.get("name") == stack for entry in json.loads(listed.stdout or "[]")):
        return
    created = subprocess.run(
        [str(pulumi_binary()), "stack", "init", stack, "--secrets-provider", "passphrase", "--non-interactive"],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
    )
    if created.returncode != 0 and "already exists" not in created.stderr:
        raise EngineError(f"could not create stack '{stack}': {created.stderr.strip()[-1000:]}")
