"""Edits of `Pulumi.<stack>.yaml` that a reviewer can read in one line of diff.

`invoke phase N` and the printed follow-up of an emergency rollback change exactly one
`habit-tracker-db:<key>: <value>` line, keep every comment and the order of the file,
and deploy nothing: the change lands through a reviewed pull request and `pulumi up`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from dualwrite import phases
from dualwrite.config import PROJECT, ROOT, ConfigError, check_file, parse, read_stack_file, stack_file_name


@dataclass(frozen=True)
class StackFileEdit:
    path: Path
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        name = self.path.name
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True), self.after.splitlines(keepends=True), f"a/{name}", f"b/{name}"
            )
        )


def config_line(key: str, value: str | int) -> str:
    return f"{PROJECT}:{key}: {value}"


def set_value(stack: str, key: str, value: str | int, root: Path = ROOT, *, write: bool = True) -> StackFileEdit:
    """Set one existing-or-new config key of a stack file, touching no other line."""
    path = root / stack_file_name(stack)
    if not path.is_file():
        existing = sorted(p.name for p in root.glob("Pulumi.*.yaml"))
        raise ConfigError(
            f"Stack '{stack}': {path.name} does not exist, so there is nothing to edit; "
            f"stack files here: {', '.join(existing) or 'none'}."
        )
    before = path.read_text(encoding="utf-8")
    pattern = re.compile(
        rf"^(?P<indent>[ \t]*){re.escape(PROJECT)}:{re.escape(key)}:[ \t]*(?P<quote>[\"']?)[^\n#]*?(?P<comment>[ \t]*#.*)?$",
        re.M,
    )
    matches = list(pattern.finditer(before))
    if len(matches) > 1:
        raise ConfigError(f"Stack '{stack}' ({path.name}): '{PROJECT}:{key}' appears {len(matches)} times; keep one.")
    if matches:
        match = matches[0]
        # Keep the line's style: Pulumi itself writes numbers quoted ("0"), people may not.
        quote = match["quote"]
        line = f"{match['indent']}{PROJECT}:{key}: {quote}{value}{quote}{match['comment'] or ''}"
        after = before[: match.start()] + line + before[match.end() :]
    else:
        config_header = re.search(r"^config:[ \t]*\n", before, re.M)
        if not config_header:
            raise ConfigError(f"Stack '{stack}' ({path.name}) has no 'config:' section to add '{PROJECT}:{key}' to.")
        insert_at = config_header.end()
        after = before[:insert_at] + f"  {config_line(key, value)}\n" + before[insert_at:]
    edit = StackFileEdit(path, before, after)
    if write and edit.changed:
        path.write_text(after, encoding="utf-8")
    return edit


def set_phase(stack: str, phase: int | str, root: Path = ROOT, *, write: bool = True) -> StackFileEdit:
    """The GitOps edit: only the phase line changes (the phases: dualwrite/phases.py)."""
    target = phases.parse(phase)
    if target is None:
        raise ConfigError(
            f"Stack '{stack}' ({stack_file_name(stack)}): '{PROJECT}:phase' cannot be {phase!r}; "
            f"allowed: {phases.described()}."
        )
    # A file that does not parse, or sets a key this project does not read, is refused as it is:
    # an edit would hide the problem in a one-line diff that a reviewer approves.
    check_file(stack, root)
    # The file as it will read, by every rule (e.g. a dual_write the new phase does not allow), before it changes.
    raw = {**read_stack_file(stack, root), "phase": target.key}
    raw.pop("db_password", None)
    parse(stack, raw, has_password=True)
    return set_value(stack, "phase", target.key, root, write=write)


def remove_value(stack: str, key: str, root: Path = ROOT, *, write: bool = True) -> StackFileEdit:
    """Drop a one-line key (e.g. the gate_override a later phase change ends), touching no other line."""
    path = root / stack_file_name(stack)
    before = path.read_text(encoding="utf-8")
    after = re.sub(rf"^[ \t]*{re.escape(PROJECT)}:{re.escape(key)}:.*(\n|\Z)", "", before, flags=re.M)
    edit = StackFileEdit(path, before, after)
    if write and edit.changed:
        path.write_text(after, encoding="utf-8")
    return edit
