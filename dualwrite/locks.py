"""Which table locks a piece of deploy SQL takes, read from the SQL itself.

PostgreSQL's rules (docs: "Explicit Locking", and each command's page), for the statements
migration 013's files and kinds run:

| statement                                   | lock on the table                        |
| ------------------------------------------- | ---------------------------------------- |
| LOCK TABLE t IN <mode> MODE                 | <mode>                                   |
| CREATE TRIGGER ... ON t                     | SHARE ROW EXCLUSIVE                      |
| ALTER TABLE t ENABLE/DISABLE TRIGGER        | SHARE ROW EXCLUSIVE                      |
| CREATE INDEX ... ON t                       | SHARE (CONCURRENTLY: SHARE UPDATE EXCL.) |
| ALTER TABLE t ... (anything else)           | ACCESS EXCLUSIVE                         |
| DROP TRIGGER ... ON t                       | ACCESS EXCLUSIVE                         |
| DROP TABLE t / DROP INDEX (on its table)    | ACCESS EXCLUSIVE                         |
| CREATE TABLE t                              | ACCESS EXCLUSIVE on the new table only   |

Function bodies (dollar-quoted) run later, at call time, not at deploy: they are skipped,
as are comments. CREATE OR REPLACE FUNCTION, GRANT and REVOKE take no table lock that
waits on the app's writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = r'((?:"[^"]+"|[A-Za-z_][\w$]*)(?:\.(?:"[^"]+"|[A-Za-z_][\w$]*))?)'
_RULES: tuple[tuple[re.Pattern[str], str | None], ...] = (
    (re.compile(rf"^LOCK\s+(?:TABLE\s+)?(?:ONLY\s+)?{_NAME}\s+IN\s+([A-Z ]+?)\s+MODE", re.I), None),
    (re.compile(rf"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\s+.*?\bON\s+{_NAME}", re.I | re.S),
     "SHARE ROW EXCLUSIVE"),
    (re.compile(rf"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_NAME}\s+(?:ENABLE|DISABLE)\s+TRIGGER", re.I),
     "SHARE ROW EXCLUSIVE"),
    (re.compile(rf"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+.*?\bON\s+(?:ONLY\s+)?{_NAME}", re.I | re.S),
     "SHARE UPDATE EXCLUSIVE"),
    (re.compile(rf"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+.*?\bON\s+(?:ONLY\s+)?{_NAME}", re.I | re.S), "SHARE"),
    (re.compile(rf"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_NAME}", re.I), "ACCESS EXCLUSIVE"),
    (re.compile(rf"^DROP\s+TRIGGER\s+(?:IF\s+EXISTS\s+)?\S+\s+ON\s+{_NAME}", re.I), "ACCESS EXCLUSIVE"),
    (re.compile(rf"^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?{_NAME}", re.I), "ACCESS EXCLUSIVE"),
    (re.compile(rf"^DROP\s+INDEX\s+(?:IF\s+EXISTS\s+)?{_NAME}", re.I), "ACCESS EXCLUSIVE"),
    (re.compile(rf"^CREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_NAME}", re.I), "ACCESS EXCLUSIVE"),
)


@dataclass(frozen=True)
class Lock:
    table: str
    mode: str
    statement: str  # the first words of the statement that takes it
    new_table: bool = False  # CREATE TABLE: nobody else can be waiting on it

    def bounded(self, lock_timeout: str, retries: int) -> str:
        return f"LOCK {self.table} {self.mode}, lock_timeout {lock_timeout}, {retries} retries"


def _strip(text: str) -> str:
    text = re.sub(r"\$([A-Za-z_]\w*)?\$.*?\$\1\$", "''", text, flags=re.S)  # function bodies
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"--[^\n]*", " ", text)


def statements(text: str) -> list[str]:
    return [" ".join(part.split()) for part in _strip(text).split(";") if part.strip()]


def _table(name: str) -> str:
    parts = [p.strip('"') for p in name.split(".")]
    return parts[-1] if len(parts) == 1 or parts[0] == "public" else ".".join(parts)


def locks(text: str) -> list[Lock]:
    """Every table lock the SQL takes, in statement order (one per statement)."""
    found: list[Lock] = []
    created: set[str] = set()
    for statement in statements(text):
        for pattern, mode in _RULES:
            match = pattern.match(statement)
            if match:
                taken = " ".join(match.group(2).upper().split()) if mode is None else mode
                table = _table(match.group(1))
                if re.match(r"^CREATE\s+(UNLOGGED\s+)?TABLE", statement, re.I):
                    created.add(table)
                found.append(Lock(table, taken, " ".join(statement.split()[:4]), new_table=table in created))
                break
    return found
