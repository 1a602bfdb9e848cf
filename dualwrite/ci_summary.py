"""The one status check of a workflow: every job it needs succeeded, or was skipped as not needed.

    failures("plan=success test=failure stack=skipped")  ->  ["test: failure"]

A skipped job is one whose `if:` said it was not needed (no stack touched); a job skipped
because one before it failed shows that failure itself. Cancelled (a timeout) fails.
"""

from __future__ import annotations

PASSING = ("success", "skipped")


def failures(results: str) -> list[str]:
    """What failed, from `name=result` pairs separated by spaces; an unparsable pair is a failure too."""
    out = []
    for pair in results.split():
        name, _, result = pair.partition("=")
        if result not in PASSING:
            out.append(f"{name}: {result or 'no result'}")
    return out if results.split() else ["no job results given"]
