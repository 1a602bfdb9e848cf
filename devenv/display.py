"""What `invoke up` leaves out of the engine's line-by-line display: the lines that report nothing.

With --refresh, the engine's non-interactive display prints two lines per resource for its read
(`refreshing`, then `refresh (0.1s)`) and one status line per unchanged resource: 66 lines for a
no-op up of a Phase 1 stack. They are dropped; every line that says something stays: a change
(`+ created`, `~ updated`), a refresh that found a difference (`refresh (0.1s) [diff: ...]`), a
diagnostic, the engine's summary. An unknown line is always kept.
"""

from __future__ import annotations

import re

_RESOURCE = r"[\w.-]+(?::[\w./-]+)+ [\w.-]+"  # `pulumi-python:dynamic/migration013:Table idempotency_log`
_SILENT = re.compile(rf"^ ~  {_RESOURCE} refresh(ing)? \([0-9.]+m?s\)\s*$"  # a read that found nothing
                     rf"|^    {_RESOURCE}( running)?\s*$")  # an unchanged resource's status


def quiet(line: str) -> str:
    """The line, or "" when it reports nothing."""
    return "" if _SILENT.match(line.rstrip("\n")) else line
