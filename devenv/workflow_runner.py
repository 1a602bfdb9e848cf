"""Run a GitHub workflow's jobs on this machine, as a GitHub-hosted runner would, for tests.

    runner = WorkflowRunner(origin=Path("origin"), work=tmp, event_name="push", event={...},
                            github={"sha": ..., "ref": "refs/heads/main"},
                            secrets={"": {...repository...}, "dev": {...environment dev...}},
                            action_path=[".tools/bin"])
    run = runner.run(Path(".github/workflows/deploy.yml"))
    run.jobs["plan"].result        # success | failure | skipped
    run.jobs["plan"].outputs       # the job's outputs, evaluated as GitHub does

What a runner provides, each job on its own: a fresh clone of `origin` checked out at the event's
commit (`actions/checkout`), a Python of its own on PATH (`actions/setup-python`: a new
virtualenv), `GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_EVENT_PATH` with the event
payload, `GITHUB_SHA`, `GITHUB_REF`, `GITHUB_BASE_REF`, `GITHUB_REPOSITORY`, `GITHUB_API_URL`,
`CI=true`, and secrets: the repository's plus those of the job's `environment`. `run:` steps run
with `bash --noprofile --norc -eo pipefail`, GitHub's default shell. `uses:` steps are mapped to
their effect: `pulumi/actions` puts `action_path` (the pinned CLI) on PATH; `actions/cache` and
`actions/setup-go` change nothing here (the machine has Go; caches only save time).

`${{ }}` expressions are evaluated for what the workflows use: contexts github, env, inputs,
matrix, needs, steps, secrets, runner; operators ! && || == != and parentheses; functions
contains, startsWith, endsWith, fromJSON, toJSON, format, hashFiles and the status functions
success, failure, always, cancelled. Jobs run in `needs` order, a matrix one combination after
another, a local reusable workflow (`uses: ./.github/workflows/x.yml`) with its inputs and the
caller's secrets (`secrets: inherit`).

Why not a real local runner: nektos/act needs Docker for its jobs and fetches every `uses:` action
from GitHub, neither of which this machine has.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import venv
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

SHELL = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
NOOP_ACTIONS = ("actions/cache", "actions/setup-go")


class WorkflowError(RuntimeError):
    """A workflow this runner cannot run as written (an unknown action, expression or function)."""


# --- expressions -------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||[!().,\[\]])"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_\-]*)|(?P<star>\*))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise WorkflowError(f"cannot read the expression {text!r} at {text[pos:]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _text(value: Any) -> str:
    """A value as GitHub renders it into a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and not (isinstance(value, float) and value != value)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if isinstance(a, (int, float)) and isinstance(b, str) or isinstance(b, (int, float)) and isinstance(a, str):
        try:
            return float(a) == float(b)
        except ValueError:
            return False
    return a == b


class _Parser:
    def __init__(self, text: str, context: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]):
        self.tokens = _tokens(text)
        self.pos = 0
        self.context = context
        self.functions = functions
        self.text = text
        # > 0 while parsing the operand of a short-circuited && or ||: GitHub does not evaluate it,
        # so its function calls (fromJSON of a skipped job's empty output) must not run either.
        self.skipping = 0

    def parse(self) -> Any:
        value = self._or()
        if self.pos != len(self.tokens):
            raise WorkflowError(f"unexpected {self.tokens[self.pos][1]!r} in expression {self.text!r}")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise WorkflowError(f"expression {self.text!r} ends early")
        token = self.tokens[self.pos]
        if expected is not None and token[1] != expected:
            raise WorkflowError(f"expected {expected!r}, found {token[1]!r} in expression {self.text!r}")
        self.pos += 1
        return token

    def _or(self) -> Any:
        value = self._and()
        while self._peek() == "||":
            self._take()
            short = _truthy(value)
            self.skipping += short
            right = self._and()
            self.skipping -= short
            value = value if short else right
        return value

    def _and(self) -> Any:
        value = self._unary()
        while self._peek() == "&&":
            self._take()
            short = not _truthy(value)
            self.skipping += short
            right = self._unary()
            self.skipping -= short
            value = value if short else right
        return value

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not _truthy(self._unary())
        return self._comparison()

    def _comparison(self) -> Any:
        left = self._primary()
        if self._peek() in ("==", "!="):
            op = self._take()[1]
            right = self._primary()
            return _equal(left, right) if op == "==" else not _equal(left, right)
        return left

    def _primary(self) -> Any:
        kind, value = self._take()
        if value == "(" and kind == "op":
            result = self._or()
            self._take(")")
            return self._access(result)
        if kind == "num":
            return float(value) if "." in value else int(value)
        if kind == "str":
            return value[1:-1].replace("''", "'")
        if kind != "name":
            raise WorkflowError(f"unexpected {value!r} in expression {self.text!r}")
        if value in ("true", "false"):
            return value == "true"
        if value == "null":
            return None
        if self._peek() == "(":
            self._take()
            args = []
            while self._peek() != ")":
                args.append(self._or())
                if self._peek() == ",":
                    self._take()
            self._take(")")
            function = self.functions.get(value.lower())
            if function is None:
                raise WorkflowError(f"function {value}() is not one this runner evaluates (expression {self.text!r})")
            return self._access(None if self.skipping else function(*args))
        if value not in self.context:
            raise WorkflowError(f"unknown context {value!r} in expression {self.text!r}")
        return self._access(self.context[value])

    def _access(self, value: Any) -> Any:
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                key = self._take()[1]
            else:
                key = _text(self._or())
                self._take("]")
            value = value.get(key) if isinstance(value, dict) else None
        return value


def _contains(haystack: Any, needle: Any) -> bool:
    if isinstance(haystack, list):
        return any(_equal(item, needle) for item in haystack)
    return _text(needle).lower() in _text(haystack).lower()


def _format(template: str, *args: Any) -> str:
    return re.sub(r"\{(\d+)\}", lambda m: _text(args[int(m.group(1))]), template.replace("{{", "\0").replace("}}", "\1")
                  ).replace("\0", "{").replace("\1", "}")


def evaluate(expression: str, context: Mapping[str, Any], status: Mapping[str, bool] | None = None,
             workspace: Path | None = None) -> Any:
    """One expression (without `${{ }}`), evaluated against the contexts."""
    status = status or {"success": True, "failure": False, "cancelled": False}

    def hash_files(*patterns: str) -> str:
        import hashlib

        digest = hashlib.sha256()
        for pattern in patterns:
            for path in sorted((workspace or Path.cwd()).glob(pattern)):
                if path.is_file():
                    digest.update(path.read_bytes())
        return digest.hexdigest()

    functions: dict[str, Callable[..., Any]] = {
        "contains": _contains,
        "startswith": lambda a, b: _text(a).lower().startswith(_text(b).lower()),
        "endswith": lambda a, b: _text(a).lower().endswith(_text(b).lower()),
        "fromjson": lambda text: json.loads(_text(text)),
        "tojson": lambda value: json.dumps(value, indent=2),
        "format": _format,
        "hashfiles": hash_files,
        "success": lambda: status["success"],
        "failure": lambda: status["failure"],
        "cancelled": lambda: status["cancelled"],
        "always": lambda: True,
    }
    return _Parser(expression, context, functions).parse()


_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def render(value: Any, context: Mapping[str, Any], workspace: Path | None = None) -> Any:
    """A workflow value with its `${{ }}` evaluated: a lone expression keeps its type (a list, a bool)."""
    if isinstance(value, dict):
        return {key: render(item, context, workspace) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, context, workspace) for item in value]
    if not isinstance(value, str):
        return value
    whole = _TEMPLATE.fullmatch(value.strip())
    if whole:
        return evaluate(whole.group(1), context, workspace=workspace)
    return _TEMPLATE.sub(lambda m: _text(evaluate(m.group(1), context, workspace=workspace)), value)


def condition(text: Any, context: Mapping[str, Any], status: Mapping[str, bool]) -> bool:
    """An `if:`: a bare expression or one `${{ }}`; without a status function, success() is implied."""
    if text is None:
        return status["success"]
    if isinstance(text, bool):
        return text
    expression = text.strip()
    whole = _TEMPLATE.fullmatch(expression)
    expression = whole.group(1) if whole else expression
    if not re.search(r"\b(success|failure|always|cancelled)\s*\(", expression):
        expression = f"success() && ({expression})"
    return _truthy(evaluate(expression, context, status))


# --- jobs and steps ------------------------------------------------------------------------


@dataclass
class StepRun:
    name: str
    outcome: str  # success | failure | skipped
    command: str = ""
    output: str = ""
    env_keys: frozenset[str] = frozenset()
    seconds: float = 0.0


@dataclass
class JobRun:
    name: str
    result: str = "skipped"
    outputs: dict[str, Any] = field(default_factory=dict)
    steps: list[StepRun] = field(default_factory=list)
    environment: str | None = None
    matrix: dict[str, Any] = field(default_factory=dict)
    called: list["WorkflowRun"] = field(default_factory=list)

    def step(self, name: str) -> StepRun:
        return next(step for step in self.steps if step.name == name)


@dataclass
class WorkflowRun:
    path: Path
    jobs: dict[str, list[JobRun]] = field(default_factory=dict)

    def result(self, job: str) -> str:
        runs = self.jobs[job]
        results = {run.result for run in runs}
        return "failure" if "failure" in results else "success" if "success" in results else "skipped"

    def all_jobs(self) -> list[JobRun]:
        out = []
        for runs in self.jobs.values():
            for run in runs:
                out.append(run)
                for called in run.called:
                    out.extend(called.all_jobs())
        return out


def _parse_kv_file(path: Path) -> dict[str, str]:
    """`name=value` lines and `name<<DELIM` blocks, as GITHUB_OUTPUT and GITHUB_ENV hold them."""
    values: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            i += 1
            while i < len(lines) and lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            values[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        i += 1
    return values


def _matrix(strategy: Mapping[str, Any] | None, context: Mapping[str, Any]) -> list[dict[str, Any]]:
    matrix = render((strategy or {}).get("matrix"), context)
    if not matrix:
        return [{}]
    keys = [key for key in matrix if key not in ("include", "exclude")]
    if set(matrix) - set(keys):
        raise WorkflowError("matrix include/exclude is not one this runner expands")
    combos = [dict(zip(keys, values)) for values in product(*(matrix[key] for key in keys))]
    return combos


@dataclass
class WorkflowRunner:
    origin: Path  # the repository the jobs clone
    work: Path  # where each job's workspace and files go
    event_name: str
    event: dict[str, Any]
    github: dict[str, Any]  # sha, ref, base_ref, repository, ...
    secrets: dict[str, dict[str, str]]  # "" -> repository secrets; environment name -> its secrets
    action_path: list[Path]  # what `pulumi/actions` puts on PATH
    base_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    # Jobs not run, with the reason (the test job, which would run this test again).
    skip_jobs: dict[str, str] = field(default_factory=dict)
    # A `run:` command (rendered) -> the command to run instead; for interfaces not there yet.
    stand_in: Callable[[str], str] = lambda command: command
    timeout: float = 900
    _numbers: int = 0

    def run(self, path: Path, inputs: Mapping[str, Any] | None = None) -> WorkflowRun:
        document = yaml.safe_load(path.read_text())
        result = WorkflowRun(path)
        jobs: dict[str, Any] = document["jobs"]
        done: set[str] = set()
        while len(done) < len(jobs):
            ready = [name for name, job in jobs.items() if name not in done
                     and set(self._needs(job)) <= done]
            if not ready:
                raise WorkflowError(f"{path.name}: the jobs' needs form a cycle")
            for name in ready:
                result.jobs[name] = self._job(path, document, name, jobs[name], result, dict(inputs or {}))
                done.add(name)
        return result

    @staticmethod
    def _needs(job: Mapping[str, Any]) -> list[str]:
        needs = job.get("needs") or []
        return [needs] if isinstance(needs, str) else list(needs)

    def _context(self, document: Mapping[str, Any], run: WorkflowRun, job: Mapping[str, Any],
                 inputs: Mapping[str, Any]) -> dict[str, Any]:
        needs = {}
        for need in self._needs(job):
            last = run.jobs[need][-1]
            needs[need] = {"result": run.result(need), "outputs": last.outputs}
        github = {**self.github, "event": self.event, "event_name": self.event_name}
        return {"github": github, "inputs": inputs, "needs": needs, "matrix": {}, "steps": {},
                "runner": {"os": "Linux", "arch": "X64", "temp": str(self.work / "runner-temp")},
                "env": dict(document.get("env") or {}), "secrets": dict(self.secrets.get("", {})),
                "vars": {}, "strategy": {}, "job": {}}

    def _job(self, path: Path, document: Mapping[str, Any], name: str, job: Mapping[str, Any], run: WorkflowRun,
             inputs: Mapping[str, Any]) -> list[JobRun]:
        context = self._context(document, run, job, inputs)
        results = {need: run.result(need) for need in self._needs(job)}
        status = {"success": all(r == "success" for r in results.values()),
                  "failure": any(r == "failure" for r in results.values()), "cancelled": False}
        if name in self.skip_jobs or not condition(job.get("if"), context, status):
            return [JobRun(name)]
        runs = []
        for combo in _matrix(job.get("strategy"), context):
            context = {**context, "matrix": combo}
            if "uses" in job:
                runs.append(self._call(path, name, job, context))
            else:
                runs.append(self._steps(name, job, context, document))
        return runs

    def _call(self, path: Path, name: str, job: Mapping[str, Any], context: dict[str, Any]) -> JobRun:
        target = job["uses"]
        if not target.startswith("./"):
            raise WorkflowError(f"job {name}: only local reusable workflows run here, not {target}")
        if job.get("secrets") != "inherit":
            raise WorkflowError(f"job {name}: a reusable workflow is called with `secrets: inherit` here")
        called_path = path.parent.parent.parent / target[2:]
        called = self.run(called_path, render(job.get("with") or {}, context))
        result = JobRun(name, matrix=context["matrix"], called=[called])
        outcomes = [called.result(job_name) for job_name in called.jobs]
        result.result = "failure" if "failure" in outcomes else "success" if "success" in outcomes else "skipped"
        return result

    def _workspace(self, name: str) -> Path:
        self._numbers += 1
        workspace = self.work / f"{self._numbers:02d}-{name}"
        subprocess.run(["git", "clone", "-q", str(self.origin), str(workspace)], check=True)
        subprocess.run(["git", "checkout", "-q", self.github["sha"]], cwd=workspace, check=True)
        return workspace

    def _steps(self, name: str, job: Mapping[str, Any], context: dict[str, Any],
               document: Mapping[str, Any]) -> JobRun:
        environment = render(job.get("environment"), context)
        if isinstance(environment, dict):
            environment = environment.get("name")
        secrets = {**self.secrets.get("", {}), **(self.secrets.get(environment, {}) if environment else {})}
        context = {**context, "secrets": secrets}
        run = JobRun(name, environment=environment, matrix=context["matrix"], result="success")
        workspace = self._workspace(name)
        files = workspace.parent / f"{workspace.name}.files"
        files.mkdir()
        event_path = files / "event.json"
        event_path.write_text(json.dumps(self.event))
        env_file, path_file = files / "env", files / "path"
        env_file.touch()
        path_file.touch()
        job_env = {**{k: _text(v) for k, v in render(document.get("env") or {}, context).items()}}
        context["env"] = dict(job_env)
        job_env.update({k: _text(v) for k, v in render(job.get("env") or {}, context).items()})
        prepend: list[str] = []  # newest first: what actions and GITHUB_PATH put before PATH
        path_lines_read = 0
        failed = False
        for index, step in enumerate(job.get("steps") or []):
            step_name = step.get("name") or step.get("uses") or step.get("run", "").strip().splitlines()[0]
            context = {**context, "env": dict(job_env)}
            status = {"success": not failed, "failure": failed, "cancelled": False}
            if not condition(step.get("if"), context, status):
                run.steps.append(StepRun(step_name, "skipped"))
                continue
            output_file = files / f"output-{index}"
            output_file.touch()
            env = {**self.base_env, **job_env,
                   **{k: _text(v) for k, v in render(step.get("env") or {}, context).items()}}
            env.update({"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(workspace),
                        "GITHUB_OUTPUT": str(output_file), "GITHUB_ENV": str(env_file), "GITHUB_PATH": str(path_file),
                        "GITHUB_EVENT_PATH": str(event_path), "GITHUB_EVENT_NAME": self.event_name,
                        "GITHUB_SHA": self.github["sha"], "GITHUB_REF": self.github.get("ref", ""),
                        "GITHUB_BASE_REF": self.github.get("base_ref", ""),
                        "GITHUB_REPOSITORY": self.github.get("repository", ""),
                        "GITHUB_API_URL": self.github.get("api_url", "https://api.github.com"),
                        "RUNNER_OS": "Linux", "RUNNER_TEMP": str(files)})
            env["PATH"] = os.pathsep.join([*prepend, env.get("PATH", "")])
            if "run" in step:
                command = self.stand_in(render(step["run"], context, workspace))
                started = time.monotonic()
                completed = subprocess.run([*SHELL, "-c", command], cwd=workspace, env=env, text=True,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=self.timeout)
                outcome = "success" if completed.returncode == 0 else "failure"
                run.steps.append(StepRun(step_name, outcome, command, completed.stdout, frozenset(env),
                                         time.monotonic() - started))
                for key, value in _parse_kv_file(env_file).items():
                    job_env[key] = value
                added = [line for line in path_file.read_text().splitlines() if line][path_lines_read:]
                path_lines_read += len(added)
                prepend[:0] = list(reversed(added))
            else:
                outcome = self._action(step, files, prepend)
                run.steps.append(StepRun(step_name, outcome, step["uses"], "", frozenset(env)))
            if "id" in step:
                context["steps"] = {**context["steps"], step["id"]: {
                    "outputs": _parse_kv_file(output_file), "outcome": outcome, "conclusion": outcome}}
            if outcome == "failure":
                failed = True
        run.result = "failure" if failed else "success"
        context = {**context, "env": dict(job_env)}
        run.outputs = {key: _text(render(value, context)) for key, value in (job.get("outputs") or {}).items()}
        return run

    def _action(self, step: Mapping[str, Any], files: Path, prepend: list[str]) -> str:
        action = step["uses"].split("@", 1)[0]
        if action == "actions/checkout":
            return "success"  # the workspace is a fresh clone at the event's commit
        if action == "actions/setup-python":
            # A Python of the job's own on PATH, as setup-python's is: what pip installs stays in it.
            python = files / "python"
            venv.EnvBuilder(with_pip=True, symlinks=True).create(python)
            prepend.insert(0, str(python / "bin"))
            return "success"
        if action == "pulumi/actions":
            prepend[:0] = [str(path) for path in self.action_path]
            return "success"
        if action in NOOP_ACTIONS:
            return "success"
        raise WorkflowError(f"action {step['uses']} has no mapping in devenv/workflow_runner.py")
