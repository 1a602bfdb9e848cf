"""A procedure (it may COMMIT, which a function cannot): otherwise handled like a function."""

from __future__ import annotations

from dualwrite.objects.function import Function


class Procedure(Function):
    kind = "procedure"
    keyword = "PROCEDURE"
