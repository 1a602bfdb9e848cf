"""`invoke ci-plan --base REF --head REF`: which stacks a change touches, in which order, and
whether it moves any of them between phases.

Read from git alone (no engine, no database), so the pull-request workflow can plan before
it has any secret:
- a stack is touched when its stack file changed, or when anything every stack deploys
  changed: `sql/`, the program (`infra/`), the library (`dualwrite/`), `Pulumi.yaml`, or the
  pinned engine and SDK (`requirements.txt`);
- the order is the promotion order of the stack files at HEAD (`promotes_from`: local ->
  dev -> staging -> prod), so a change lands on a stack only after the stack before it;
- a phase change is a stack whose `habit-tracker-db:phase` differs between BASE and HEAD.

The diff is `git diff BASE...HEAD` (from their merge base, as GitHub shows a pull request).
Every stack file touched is parsed with the same rules as `pulumi up` (dualwrite/config.py),
so a bad value fails the plan with the parser's own paragraph.

A deploy plans each stack from the commit that stack last deployed (`--since-deployed`,
`plan_since_deployed`; the record is dualwrite/deploy_record.py), not from the push's
`before`: that is all zeros on a new branch or a force push, and a push superseded while
another deploy held the concurrency group would otherwise never be deployed. The diff is then
`git diff DEPLOYED HEAD` (what differs from what runs); a stack with no record, or whose
record this clone does not have, deploys, and the plan says why.

The embedded `local` stack lives on a laptop: CI never deploys it and never reads its
evidence, so a shared stack may not promote from it (`check_chain`).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dualwrite import config as stack_config
from dualwrite import phases
from dualwrite.config import PROJECT, ROOT, ConfigError

# Paths whose change touches every stack (prefixes of repository paths).
EVERY_STACK = ("sql/", "infra/", "dualwrite/", "Pulumi.yaml", "requirements.txt")
# The embedded stack lives on each developer's machine: CI never deploys it.
EMBEDDED = ("local",)
DEPLOYED = "deployed"  # Plan.base of a plan per stack from its recorded commit


class PlanError(RuntimeError):
    """A ref that git does not know, or stack files whose promotion order is not a chain."""


@dataclass(frozen=True)
class StackPlan:
    stack: str
    position: int  # index in the promotion order at HEAD
    promotes_from: str | None
    reasons: list[str]  # changed paths that touch this stack
    # Places on the path (dualwrite/phases.py; shown by their stack-file keys).
    phase_before: int | None  # None: no stack file at BASE (a new stack)
    phase_after: int | None  # None: the stack file is gone at HEAD
    embedded: bool
    since: str | None = None  # the commit the diff starts from, when planned per stack (--since-deployed)
    note: str = ""  # why a stack is planned the way it is (no deployed commit recorded, ...)

    @property
    def phase_change(self) -> bool:
        return self.phase_before is not None and self.phase_after is not None and self.phase_before != self.phase_after

    @property
    def status(self) -> str:
        if self.phase_after is None:
            return "removed"
        after = phases.at(self.phase_after).key
        if self.phase_before is None:
            return f"phase {after}, nothing recorded" if self.note else "new"
        return f"phase {phases.at(self.phase_before).key} -> {after}" if self.phase_change else f"phase {after}"


@dataclass(frozen=True)
class Plan:
    base: str
    head: str
    changed_files: list[str]
    order: list[str]  # every stack at HEAD, in promotion order
    stacks: list[StackPlan] = field(default_factory=list)  # the touched ones, in that order

    @property
    def deploy(self) -> list[str]:
        """What CI deploys, in order: touched stacks that exist at HEAD, the embedded one aside."""
        return [s.stack for s in self.stacks if s.phase_after is not None and not s.embedded]

    @property
    def phase_changes(self) -> list[str]:
        return [s.stack for s in self.stacks if s.phase_change]

    def to_json(self) -> dict[str, Any]:
        stacks = [{**asdict(s), "phase_change": s.phase_change, "status": s.status} for s in self.stacks]
        return {"base": self.base, "head": self.head, "changed_files": self.changed_files, "order": self.order,
                "stacks": stacks, "deploy": self.deploy, "phase_changes": self.phase_changes}

    def text(self) -> str:
        lines = [f"ci-plan {self.base}...{self.head}: {len(self.changed_files)} changed file(s)",
                 f"promotion order: {' -> '.join(self.order) or '(no stacks)'}"]
        if not self.stacks:
            lines.append("no stack is touched: nothing to preview or deploy")
        for s in self.stacks:
            shown = ", ".join(s.reasons[:3]) + (f" (+{len(s.reasons) - 3} more)" if len(s.reasons) > 3 else "")
            flags = " PHASE CHANGE" if s.phase_change else ""
            flags += " (embedded: not deployed by CI)" if s.embedded else ""
            since = f" since {s.since[:12]}" if s.since else ""
            lines.append(f"  {s.position + 1}. {s.stack}: {s.status}{flags}; touched{since} by {shown}"
                         + (f" ({s.note})" if s.note else ""))
        lines.append(f"deploy in order: {', '.join(self.deploy) or 'nothing'}")
        return "\n".join(lines)


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, text=True, capture_output=True)
    if result.returncode != 0:
        raise PlanError(f"`git {' '.join(args)}` failed in {repo}: {result.stderr.strip()}")
    return result.stdout


def _resolve(repo: Path, ref: str) -> str:
    result = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=repo, text=True,
                            capture_output=True)
    if result.returncode != 0:
        raise PlanError(f"ci-plan: '{ref}' is not a commit of the repository in {repo}; allowed: a branch, tag or "
                        "commit that `git rev-parse` knows (in CI, fetch enough history: actions/checkout with "
                        "fetch-depth: 0).")
    return result.stdout.strip()


def _stack_of(path: str) -> str | None:
    name = Path(path).name
    if "/" in path or not (name.startswith("Pulumi.") and name.endswith(".yaml")) or name == "Pulumi.yaml":
        return None
    return name[len("Pulumi.") : -len(".yaml")]


def stack_files(repo: Path, commit: str) -> dict[str, dict[str, Any]]:
    """{stack: raw config without the project prefix} of every stack file at `commit`."""
    found: dict[str, dict[str, Any]] = {}
    for path in _git(repo, "ls-tree", "--name-only", commit).splitlines():
        stack = _stack_of(path)
        if stack is None:
            continue
        document = yaml.safe_load(_git(repo, "show", f"{commit}:{path}")) or {}
        config = document.get("config") or {}
        found[stack] = {k[len(PROJECT) + 1 :]: v for k, v in config.items() if k.startswith(f"{PROJECT}:")}
    return found


_stack_files = stack_files


def _parse(stack: str, raw: dict[str, Any]) -> stack_config.StackConfig:
    # The plan connects nowhere: a password set later with `pulumi config set --secret` is fine.
    raw = dict(raw)
    raw.pop("db_password", None)
    return stack_config.parse(stack, raw, has_password=True)


def promotion_order(promotes_from: dict[str, str | None]) -> list[str]:
    """Stacks ordered so that each comes after the stack it promotes from (ties by name)."""
    order: list[str] = []
    placed: set[str] = set()
    remaining = dict(promotes_from)
    while remaining:
        # The embedded stack first among equals (it is nobody's predecessor but is tried first), then by name.
        ready = sorted((s for s, before in remaining.items() if before is None or before in placed
                        or before not in promotes_from), key=lambda s: (s not in EMBEDDED, s))
        if not ready:
            cycle = ", ".join(f"{s} promotes_from {b}" for s, b in sorted(remaining.items()))
            raise PlanError(f"ci-plan: the stack files' `{PROJECT}:promotes_from` lines form a cycle ({cycle}); "
                            "allowed: a chain, each stack naming the one deployed before it (or none for the first).")
        for stack in ready:
            order.append(stack)
            placed.add(stack)
            del remaining[stack]
    return order


def check_chain(configs: dict[str, stack_config.StackConfig]) -> None:
    """A shared stack never promotes from the embedded one: its evidence is on a laptop, out of CI's reach."""
    for stack, cfg in sorted(configs.items()):
        if stack not in EMBEDDED and cfg.promotes_from in EMBEDDED:
            raise ConfigError(
                f"Stack '{stack}' ({cfg.stack_file}): '{PROJECT}:promotes_from' is '{cfg.promotes_from}', the "
                "embedded stack on a developer's machine, whose database and history CI cannot read, so the "
                f"gate of '{stack}' could never pass in CI; allowed: a shared stack deployed before this one, or "
                f"no promotes_from line ('{stack}' is then first, and its gate reads its own Phase 0). Nothing was "
                "deployed.")


def _head_configs(repo: Path, head_commit: str) -> tuple[dict[str, dict[str, Any]], dict[str, stack_config.StackConfig], list[str]]:
    after = stack_files(repo, head_commit)
    configs = {stack: _parse(stack, raw) for stack, raw in after.items()}  # a bad value at HEAD stops here
    check_chain(configs)
    order = promotion_order({stack: cfg.promotes_from for stack, cfg in configs.items()})
    return after, configs, order


def _phase_of(raw: dict[str, Any] | None) -> int | None:
    """The place on the path a stack file at some commit declares; None: no file, or not a phase."""
    stage = phases.parse(raw.get("phase")) if raw is not None else None
    return None if stage is None else stage.order


def plan(base: str, head: str, repo: Path = ROOT) -> Plan:
    base_commit, head_commit = _resolve(repo, base), _resolve(repo, head)
    changed = [p for p in _git(repo, "diff", "--name-only", "--no-renames", f"{base_commit}...{head_commit}").splitlines() if p]
    before = stack_files(repo, base_commit)
    after, configs, order = _head_configs(repo, head_commit)
    global_reasons = [p for p in changed if p.startswith(EVERY_STACK)]
    stacks: list[StackPlan] = []
    for stack in order + sorted(set(before) - set(after)):
        own = [p for p in changed if _stack_of(p) == stack]
        reasons = own + global_reasons if stack in after else own
        if not reasons:
            continue
        phase_before = _phase_of(before.get(stack))
        stacks.append(StackPlan(
            stack=stack,
            position=order.index(stack) if stack in order else len(order),
            promotes_from=configs[stack].promotes_from if stack in configs else None,
            reasons=reasons,
            phase_before=phase_before,
            phase_after=configs[stack].phase if stack in configs else None,
            embedded=stack in EMBEDDED,
        ))
    return Plan(base=base, head=head, changed_files=changed, order=order, stacks=stacks)


def _known_commit(repo: Path, ref: str | None) -> str | None:
    if not ref:
        return None
    result = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=repo, text=True,
                            capture_output=True)
    return result.stdout.strip() if result.returncode == 0 else None


def plan_since_deployed(deployed: dict[str, str | None], head: str, repo: Path = ROOT) -> Plan:
    """Per stack, the diff from the commit it last deployed (`deployed[stack]`, None: no record) to HEAD.

    Every shared stack at HEAD is planned on its own base, so a commit that one deploy skipped
    (superseded, failed, force-pushed over) is still in the next one's diff."""
    head_commit = _resolve(repo, head)
    after, configs, order = _head_configs(repo, head_commit)
    stacks: list[StackPlan] = []
    changed_all: set[str] = set()
    for stack in order:
        if stack in EMBEDDED:
            continue
        recorded = deployed.get(stack)
        since = _known_commit(repo, recorded)
        if since is None:
            note = (f"no deployed commit recorded for '{stack}': deploy it whole" if not recorded else
                    f"its recorded commit {recorded[:12]} is not in this clone (force-pushed away, or a shallow "
                    "fetch): deploy it whole")
            reasons, phase_before = ["(every file: nothing recorded to diff from)"], None
        else:
            changed = [p for p in _git(repo, "diff", "--name-only", "--no-renames", since, head_commit).splitlines() if p]
            changed_all.update(changed)
            reasons = [p for p in changed if _stack_of(p) == stack or p.startswith(EVERY_STACK)]
            phase_before = _phase_of(stack_files(repo, since).get(stack))
            note = ""
            if not reasons:
                continue
        stacks.append(StackPlan(stack=stack, position=order.index(stack), promotes_from=configs[stack].promotes_from,
                                reasons=reasons, phase_before=phase_before, phase_after=configs[stack].phase,
                                embedded=False, since=since, note=note))
    return Plan(base=DEPLOYED, head=head, changed_files=sorted(changed_all), order=order, stacks=stacks)


def github_outputs(result: Plan) -> str:
    """`name=value` lines for $GITHUB_OUTPUT: the workflows' job matrices read them."""
    # Per stack, the --base of its `invoke gate-recheck` ("": no record; the recheck then says so).
    bases = {s.stack: s.since or ("" if result.base == DEPLOYED else result.base)
             for s in result.stacks if s.stack in result.deploy}
    return (f"deploy={json.dumps(result.deploy)}\nphase_changes={json.dumps(result.phase_changes)}\n"
            f"any={'true' if result.deploy else 'false'}\nbases={json.dumps(bases)}\n")


def render(result: Plan, as_json: bool) -> str:
    return json.dumps(result.to_json(), indent=2) if as_json else result.text()


__all__ = ["ConfigError", "Plan", "PlanError", "StackPlan", "check_chain", "plan", "plan_since_deployed",
           "promotion_order", "render", "stack_files"]
