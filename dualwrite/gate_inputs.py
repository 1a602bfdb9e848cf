"""What the promotion gate reads from a change, and from where: the base branch decides.

A pull request that flips a stack into Phase 1 must not also choose how hard its own gate
is. So the gate's inputs come from the stack files at BASE (the branch the PR merges into,
or in a deploy the commit the stack last deployed), and the PR's values are only shown:

- the target's `promotes_from`, `soak_hours`, `max_dual_write_errors`, `perf_max_mean_ms`
  and `edge_function_waiver` (GATE_KEYS), read from its stack file at BASE;
- the stack before it: its `drift_threshold` at BASE; whether it declares Phase 1 is read
  at HEAD (deploys run in promotion order, so by the time this stack deploys the one before
  has run what HEAD says; its stack history and smoke test rows prove it really does);
- a change of any of those keys (or of the target's own `drift_threshold`, which the next
  stack's gate will read) in BASE..HEAD is a call-out, printed at the top of the check and of
  the PR comment;
- the one input HEAD gives is `gate_override`, the trace `invoke phase 1 --force --reason`
  leaves: honored only when the change adds or changes it (a stale one from an earlier flip
  is not), and always called out.

What the change does to the stack is its `transition`: `enter` (it starts running a later
phase, e.g. Phase 1 with the trigger enabled: gated by that phase's gate, dualwrite/phases.py),
`rollback` (a step back, or the guide's rollback options: never gated), or `none`.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from dualwrite import config as stack_config
from dualwrite import phases
from dualwrite.config import PROJECT, ROOT, ConfigError, StackConfig, stack_file_name

GATE_KEYS = ("promotes_from", "soak_hours", "max_dual_write_errors", "perf_max_mean_ms", "edge_function_waiver",
             "quiet_period_hours")
CALLED_OUT = GATE_KEYS + ("drift_threshold",)
OVERRIDE_KEY = "gate_override"


@dataclass(frozen=True)
class Transition:
    kind: Literal["enter", "rollback", "none"]
    detail: str
    skipped: str | None = None  # an `enter` past more than one phase: why that is refused


@dataclass
class GateInputs:
    stack: str
    base: str | None  # None: no base known (thresholds from HEAD, called out)
    transition: Transition
    target: StackConfig  # HEAD's stack file with the gate's keys from BASE
    previous: StackConfig | None  # the stack before, at BASE (None: first in the order)
    callouts: list[str] = field(default_factory=list)
    override: str | None = None  # a gate_override line the change adds (honored), else None


def _git_show(repo: Path, ref: str, path: str) -> str | None:
    result = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=repo, text=True, capture_output=True)
    if result.returncode == 0:
        return result.stdout
    known = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=repo,
                           capture_output=True)
    if known.returncode != 0:
        raise ConfigError(f"promotion gate: '{ref}' is not a commit of the repository in {repo}; allowed: the base "
                          "branch (e.g. origin/main) or the commit the stack last deployed, which `git rev-parse` "
                          "knows (in CI: actions/checkout with fetch-depth: 0). Nothing was checked.")
    return None  # the commit has no such file: a stack new in this change


def raw_at(stack: str, ref: str | None, repo: Path = ROOT) -> dict[str, Any] | None:
    """A stack file's `habit-tracker-db:` keys at a commit (ref None: the working tree); None if it has none."""
    if ref is None:
        return stack_config.read_stack_file(stack, repo) if (repo / stack_file_name(stack)).is_file() else None
    text = _git_show(repo, ref, stack_file_name(stack))
    if text is None:
        return None
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"Stack '{stack}': {stack_file_name(stack)} at {ref} is not valid YAML ({error}); the gate "
                          "reads its thresholds from there. Nothing was checked.") from None
    config = (document.get("config") if isinstance(document, dict) else None) or {}
    prefix = f"{PROJECT}:"
    return {key[len(prefix):]: value for key, value in config.items() if str(key).startswith(prefix)}


def _parse(stack: str, raw: Mapping[str, Any]) -> StackConfig:
    plain = {key: value for key, value in raw.items() if key != "db_password"}
    return stack_config.parse(stack, plain, has_password=True)


def runs_phase1(config: StackConfig | None) -> bool:
    return config is not None and config.phase == 1 and config.trigger_enabled


def running(config: StackConfig | None) -> int:
    """How far along the path a stack runs: its phase's place, or 0 (log only at most) while one of the
    guide's rollbacks (dual_write: disabled | absent | removed) stops its sync; a new stack file: 0."""
    return 0 if config is None or not config.trigger_enabled else config.phase


def transition(before: StackConfig | None, after: StackConfig) -> Transition:
    def state(config: StackConfig) -> str:
        return f"phase {config.stage.key}, dual_write {config.dual_write}"

    was = "a new stack file" if before is None else state(before)
    if running(after) > running(before):
        skipped = phases.one_step(phases.at(running(before)), after.stage)
        return Transition("enter", f"{after.stack}: {was} -> {state(after)}", skipped)
    if running(after) < running(before):
        return Transition("rollback", f"{after.stack}: {was} -> {state(after)}")
    return Transition("none", f"{after.stack}: {was} -> {state(after)}: does not start Phase 1 or a later phase")


def _shown(config: StackConfig | None, key: str) -> str:
    value = None if config is None else getattr(config, key)
    return "(none)" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def threshold_changes(before: StackConfig | None, after: StackConfig, base: str | None) -> list[str]:
    """One line per gate input the change edits, saying which value the gate uses."""
    lines = []
    for key in CALLED_OUT:
        old, new = _shown(before, key), _shown(after, key)
        if old != new:
            uses = (f"the gate uses {old}, from {base}" if base and key in GATE_KEYS
                    else "the next stack's gate reads it once merged" if key == "drift_threshold"
                    else "the gate uses the defaults")
            lines.append(f"{stack_file_name(after.stack)} changes gate input `{PROJECT}:{key}`: {old} -> {new} "
                         f"({uses})")
    return lines


def read(stack: str, base: str | None, head: str | None = None, repo: Path = ROOT,
         running_before: StackConfig | None = None) -> GateInputs:
    """The gate's inputs for `stack` in the change BASE..HEAD (head None: the working tree).

    `base` None: nothing to compare with (a deploy with no recorded commit); the gate then
    reads HEAD's values, says so, and `running_before` (what the stack last deployed, from its
    history) decides the transition."""
    head_raw = raw_at(stack, head, repo)
    if head_raw is None:
        raise ConfigError(f"Stack '{stack}': {stack_file_name(stack)} does not exist at "
                          f"{head or 'the working tree'}; nothing to check.")
    after = _parse(stack, head_raw)
    base_raw = raw_at(stack, base, repo) if base is not None else None
    before = _parse(stack, base_raw) if base_raw is not None else None

    callouts: list[str] = []
    if base is None:
        gate_raw = dict(head_raw)
        callouts.append(f"no base to read the gate's thresholds from: they are read from {stack_file_name(stack)} "
                        "as it is now")
        before = running_before
    else:
        gate_raw = {key: value for key, value in head_raw.items() if key not in GATE_KEYS}
        source = base_raw if base_raw is not None else {"promotes_from": head_raw.get("promotes_from")}
        gate_raw.update({key: source[key] for key in GATE_KEYS if source.get(key) is not None})
        callouts += threshold_changes(before, after, base)
    target = _parse(stack, gate_raw)

    previous = None
    if target.promotes_from is not None:
        # The stack before as it is declared now (its history and smoke test prove it runs so), with the
        # drift_threshold of BASE: deploys go in order, so in a deploy it has already run what HEAD says.
        name = target.promotes_from
        previous_raw = raw_at(name, head, repo)
        if previous_raw is None:
            raise ConfigError(f"Stack '{stack}' ({stack_file_name(stack)}): '{PROJECT}:promotes_from' names "
                              f"'{name}', which has no stack file at {head or 'the working tree'}; allowed: the "
                              "stack deployed before this one. Nothing was checked.")
        previous_base = raw_at(name, base, repo) if base is not None else None
        gate_previous = dict(previous_raw)
        if previous_base is not None:
            gate_previous.pop("drift_threshold", None)
            if previous_base.get("drift_threshold") is not None:
                gate_previous["drift_threshold"] = previous_base["drift_threshold"]
        previous = _parse(name, gate_previous)
        declared = _parse(name, previous_raw)
        if previous_base is not None and declared.drift_threshold != previous.drift_threshold:
            callouts.append(f"{stack_file_name(name)} changes gate input `{PROJECT}:drift_threshold`: "
                            f"{previous.drift_threshold:g} -> {declared.drift_threshold:g} (the gate of '{stack}' "
                            f"uses {previous.drift_threshold:g}, from {base})")

    override = head_raw.get(OVERRIDE_KEY)
    override = None if override is None else str(override).strip()
    if override is not None and base_raw is not None and str(base_raw.get(OVERRIDE_KEY, "")).strip() == override:
        callouts.append(f"{stack_file_name(stack)} keeps the gate override of an earlier change (`{PROJECT}:"
                        f"{OVERRIDE_KEY}`: {override}); it is not honored again: a new one needs "
                        f"`invoke phase 1 --stack {stack} --force --reason ...`")
        override = None
    elif override is not None:
        callouts.insert(0, f"GATE OVERRIDDEN by {stack_file_name(stack)} (`{PROJECT}:{OVERRIDE_KEY}`): {override}")
    return GateInputs(stack=stack, base=base, transition=transition(before, after), target=target,
                      previous=previous, callouts=callouts, override=override)
