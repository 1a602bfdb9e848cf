"""SQL text read by PostgreSQL's own parser (pglast, libpg_query), never by regular expressions.

Every place that needs to know what a piece of SQL says (the locks it takes, a table file's
CREATE TABLE and policies, an index file's definition, a function's SECURITY and
search_path, who a GRANT names) asks this module. The parser sees what PostgreSQL sees:
comments, dollar-quoted bodies, quoted identifiers and semicolons inside strings need no
special care, and a file that PostgreSQL would refuse is refused here too, with its line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import pglast
from pglast import ast
from pglast.stream import RawStream

DEFAULT_SCHEMA = "public"


class SqlSyntaxError(ValueError):
    """SQL that PostgreSQL's parser refuses; the message names where it came from and the line."""


@dataclass(frozen=True)
class Statement:
    node: Any  # a pglast.ast node: CreateStmt, IndexStmt, ...
    text: str  # the statement as written (comments inside it kept), without its semicolon
    line: int  # 1-based line of its first character in the text it came from

    @property
    def kind(self) -> str:
        return type(self.node).__name__

    def head(self, words: int = 4) -> str:
        """Its first words: enough for a reader to recognise it."""
        return " ".join(_without_comments(self.text).split()[:words])


def _without_comments(text: str) -> str:
    # The scanner's own comment tokens, blanked: a `--` inside a string is not a comment.
    try:
        tokens = pglast.parser.scan(text)
    except pglast.parser.ParseError:
        return text
    kept = list(text)
    for token in tokens:
        if token.name in ("C_COMMENT", "SQL_COMMENT"):
            kept[token.start:token.end + 1] = " " * (token.end + 1 - token.start)
    return "".join(kept)


def without_comments(text: str) -> str:
    """`text` without its comments outside function bodies (a dollar-quoted body keeps its own),
    and without the lines they leave empty."""
    return "\n".join(line.rstrip() for line in _without_comments(text).splitlines() if line.strip())


def statements(text: str, where: str = "SQL") -> list[Statement]:
    """The top-level statements of `text`, in order. SqlSyntaxError if PostgreSQL would refuse it."""
    try:
        parsed = pglast.parse_sql(text)
    except pglast.parser.ParseError as error:
        message, position = (list(error.args) + [None])[:2]
        line = f" at line {text.count(chr(10), 0, position) + 1}" if position is not None else ""
        raise SqlSyntaxError(f"{where}: PostgreSQL's parser refuses this SQL{line}: {message}. "
                             "Fix the statement there; nothing was run.") from None
    found = []
    for raw in parsed:
        start = raw.stmt_location or 0
        end = start + raw.stmt_len if raw.stmt_len else len(text)
        body = text[start:end].strip()
        found.append(Statement(raw.stmt, body, text.count("\n", 0, start) + 1))
    return found


def names(parts: Any) -> tuple[str, ...]:
    """A qualified name as the parser gives it (String nodes, or a RangeVar), as strings."""
    if isinstance(parts, ast.RangeVar):
        return tuple(p for p in (parts.catalogname, parts.schemaname, parts.relname) if p)
    return tuple(p if isinstance(p, str) else p.sval for p in parts)


def display(parts: Any) -> str:
    """`name` for an object in public, `schema.name` otherwise: how the PR comment names tables."""
    found = names(parts)
    return found[-1] if len(found) == 1 or found[-2] == DEFAULT_SCHEMA else ".".join(found[-2:])


def deparse(node: Any) -> str:
    """The statement as PostgreSQL's grammar prints it back: canonical spacing and case, no comments."""
    return RawStream()(node)


def function_calls(node: Any) -> Iterator[tuple[str, ...]]:
    """The qualified names of every function a statement calls (not inside dollar-quoted bodies)."""
    for child in _walk(node):
        if isinstance(child, ast.FuncCall):
            yield names(child.funcname)


def _walk(node: Any) -> Iterator[Any]:
    if isinstance(node, ast.Node):
        yield node
        for attr in node:
            yield from _walk(getattr(node, attr))
    elif isinstance(node, (tuple, list)):
        for item in node:
            yield from _walk(item)


# --- functions and procedures -------------------------------------------------------


@dataclass(frozen=True)
class FunctionAttributes:
    name: tuple[str, ...]
    security_definer: bool
    search_path: str | None  # the SET search_path value, None when not pinned
    body: str | None  # the dollar-quoted body, as written
    language: str | None

    @property
    def security(self) -> str:
        return "DEFINER" if self.security_definer else "INVOKER"


def function_attributes(text: str, where: str = "SQL") -> list[FunctionAttributes]:
    """Each CREATE [OR REPLACE] FUNCTION/PROCEDURE of `text`, with the attributes a reviewer checks."""
    found = []
    for statement in statements(text, where):
        node = statement.node
        if not isinstance(node, ast.CreateFunctionStmt):
            continue
        definer, search_path, body, language = False, None, None, None
        for option in node.options or ():
            if option.defname == "language":
                language = option.arg.sval
            elif option.defname == "security":
                definer = bool(option.arg.boolval)
            elif option.defname == "set" and option.arg.name == "search_path":
                search_path = ", ".join(_constant(a) for a in option.arg.args or ())
            elif option.defname == "as":
                body = "".join(part.sval for part in option.arg)
        found.append(FunctionAttributes(names(node.funcname), definer, search_path, body, language))
    return found


def bodies_folded(text: str, where: str = "SQL") -> str:
    """`text` with each function body it creates folded to one line saying how long it is: what a
    reviewer of a new function needs beside its file is its header (SECURITY, search_path, grants)."""
    for function in function_attributes(text, where):
        if function.body and function.body.strip():
            lines = function.body.strip("\n").count("\n") + 1
            text = text.replace(function.body, f"\n    -- body: {lines} lines, as in its file under sql/ at this commit\n", 1)
    return text


def _constant(node: Any) -> str:
    value = node.val if isinstance(node, ast.A_Const) else node
    for attr in ("sval", "ival", "fval", "boolval"):
        if hasattr(value, attr):
            return str(getattr(value, attr))
    return deparse(node)


# --- what a statement writes ------------------------------------------------------------


_WRITES = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)


def writes_to(text: str, schema: str, table: str) -> bool:
    """Whether `text` (say, a query pg_stat_statements normalised) inserts into, updates or deletes
    from `schema.table`; False for text the parser refuses."""
    try:
        found = statements(text)
    except SqlSyntaxError:
        return False
    return any(isinstance(s.node, _WRITES) and s.node.relation.relname == table
               and s.node.relation.schemaname in (None, schema) for s in found)


# --- GRANT / REVOKE -----------------------------------------------------------------


def grantees(text: str, where: str = "SQL") -> list[str]:
    """Every role a GRANT of `text` grants to (REVOKE takes nothing away from this list)."""
    found = []
    for statement in statements(text, where):
        node = statement.node
        if isinstance(node, ast.GrantStmt) and node.is_grant:
            found += [role.rolename or "PUBLIC" for role in node.grantees or ()]
        elif isinstance(node, ast.GrantRoleStmt) and node.is_grant:
            found += [role.rolename for role in node.grantee_roles or ()]
    return found
