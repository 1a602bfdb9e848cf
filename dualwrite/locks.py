"""Which table locks a piece of deploy SQL takes, read by PostgreSQL's parser (dualwrite/parsed_sql.py).

PostgreSQL 15's rules (docs: "Explicit Locking" and each command's page; where a page is
silent, the lock the command's code takes), for the statements migration 013's kinds run:

| statement                                      | lock                                                    |
| ---------------------------------------------- | ------------------------------------------------------- |
| LOCK TABLE t IN <mode> MODE                    | <mode> on t                                             |
| CREATE INDEX ... ON t                          | SHARE on t                                              |
| CREATE INDEX CONCURRENTLY ... ON t             | SHARE UPDATE EXCLUSIVE on t, outside any transaction    |
| DROP INDEX i                                   | ACCESS EXCLUSIVE on i's table                           |
| DROP INDEX CONCURRENTLY i                      | SHARE UPDATE EXCLUSIVE on i's table, outside any transaction |
| ALTER INDEX i RENAME TO j                      | SHARE UPDATE EXCLUSIVE on i (its table's writers go on)  |
| CREATE POLICY / ALTER POLICY / DROP POLICY ON t | ACCESS EXCLUSIVE on t                                  |
| CREATE [OR REPLACE] TRIGGER ... ON t           | SHARE ROW EXCLUSIVE on t                                |
| DROP TRIGGER ... ON t                          | ACCESS EXCLUSIVE on t                                   |
| ALTER TABLE t ENABLE/DISABLE TRIGGER           | SHARE ROW EXCLUSIVE on t                                |
| ALTER TABLE t VALIDATE CONSTRAINT / SET STATISTICS / CLUSTER ON | SHARE UPDATE EXCLUSIVE on t            |
| ALTER TABLE t (anything else, e.g. ENABLE ROW LEVEL SECURITY) | ACCESS EXCLUSIVE on t                    |
| CREATE TABLE t                                 | ACCESS EXCLUSIVE on the new t only (nobody waits on it); SHARE ROW EXCLUSIVE on a table its foreign keys reference |
| DROP TABLE t                                   | ACCESS EXCLUSIVE on t                                   |
| COMMENT ON TABLE/COLUMN/INDEX/TRIGGER/POLICY/CONSTRAINT | SHARE UPDATE EXCLUSIVE on the table (or index)  |
| SELECT cron.schedule(...) / cron.unschedule(...) | ROW EXCLUSIVE on cron.job (pg_cron's own table)       |
| CREATE OR REPLACE FUNCTION / PROCEDURE, GRANT, REVOKE, COMMENT ON FUNCTION | no table lock              |

An index statement names the index, not its table: the table is the one the catalog's
declared index file (sql/013/idx_*.sql) puts it on, or the one a CREATE INDEX earlier in
the same SQL does. Function bodies run at call time, not at deploy, so what they lock is
not read here; `Analysis.unread` lists any statement whose locks this module does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Mapping

from pglast import ast, enums

from dualwrite import parsed_sql

# PostgreSQL's lock modes, weakest first (LockStmt.mode is this list's index).
MODES = ("", "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE",
         "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE")
_O = enums.ObjectType
_AT = enums.AlterTableType
_TRIGGER_SWITCHES = {_AT.AT_EnableTrig, _AT.AT_EnableAlwaysTrig, _AT.AT_EnableReplicaTrig, _AT.AT_DisableTrig,
                     _AT.AT_EnableTrigAll, _AT.AT_DisableTrigAll, _AT.AT_EnableTrigUser, _AT.AT_DisableTrigUser}
_SHARE_UPDATE_EXCLUSIVE = {_AT.AT_ValidateConstraint, _AT.AT_SetStatistics, _AT.AT_ClusterOn, _AT.AT_DropCluster}
# Objects whose name ends with the table they are on: (schema, table, name) or (table, name).
_ON_TABLE = {_O.OBJECT_TRIGGER, _O.OBJECT_POLICY, _O.OBJECT_TABCONSTRAINT, _O.OBJECT_RULE}
_COMMENT_ON_RELATION = {_O.OBJECT_TABLE, _O.OBJECT_INDEX, _O.OBJECT_VIEW, _O.OBJECT_MATVIEW}
CRON_FUNCTIONS = {("cron", "schedule"), ("cron", "unschedule"), ("cron", "schedule_in_database"),
                  ("cron", "alter_job")}


@dataclass(frozen=True)
class Lock:
    table: str  # the table whose writers may wait (`name` in public, `schema.name` elsewhere)
    mode: str
    statement: str  # the first words of the statement that takes it
    new_table: bool = False  # CREATE TABLE: nobody else can be waiting on it
    outside_transaction: bool = False  # CONCURRENTLY: runs on its own, not in the change's transaction
    on: str = ""  # what the lock is on when it is not the table itself ("index idx_x")

    def bounded(self, lock_timeout: str, retries: int) -> str:
        text = f"LOCK {self.table} {self.mode}, lock_timeout {lock_timeout}, {retries} retries"
        return text + (" (outside any transaction)" if self.outside_transaction else "")

    def describe(self) -> str:
        """`table MODE`, with what exactly is locked and how, for the PR comment's tables."""
        notes = [n for n in (f"on {self.on}" if self.on else "", "new table" if self.new_table else "",
                             "outside any transaction" if self.outside_transaction else "") if n]
        return f"{self.table} {self.mode}" + (f" ({', '.join(notes)})" if notes else "")


@dataclass
class Analysis:
    locks: list[Lock] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)  # statements whose locks this module does not know


@cache
def declared_index_tables() -> dict[str, str]:
    """Index name -> its table, for every index migration 013 declares (and its `_new` build name)."""
    from dualwrite.catalog import MIGRATION_013
    from dualwrite.objects import Index

    found: dict[str, str] = {}
    for obj in MIGRATION_013:
        if obj.kind is Index:
            index = Index(obj.props(0))
            table = parsed_sql.display(index.statement().relation)
            found[index.name] = found[index.temporary_name] = table
    return found


class _Reader:
    def __init__(self, index_tables: Mapping[str, str]) -> None:
        self.index_tables = dict(index_tables)
        self.created: set[str] = set()
        self.result = Analysis()

    def add(self, statement: parsed_sql.Statement, table: str, mode: str, **how: Any) -> None:
        self.result.locks.append(Lock(table, mode, statement.head(), new_table=table in self.created, **how))

    def index_table(self, parts: Any) -> str:
        name = parsed_sql.names(parts)[-1]
        return self.index_tables.get(name, f"(the table of index {parsed_sql.display(parts)}: not declared in 013)")

    def read(self, statement: parsed_sql.Statement) -> None:
        node = statement.node
        handler = getattr(self, f"_{type(node).__name__}", None)
        if handler is None:
            self.result.unread.append(statement.head(6))
        else:
            handler(statement, node)

    # --- one method per statement type (pglast's node names) ---------------------------

    def _LockStmt(self, s: parsed_sql.Statement, node: ast.LockStmt) -> None:
        for relation in node.relations:
            self.add(s, parsed_sql.display(relation), MODES[node.mode])

    def _IndexStmt(self, s: parsed_sql.Statement, node: ast.IndexStmt) -> None:
        table = parsed_sql.display(node.relation)
        if node.idxname:
            self.index_tables[node.idxname] = table
        if node.concurrent:
            self.add(s, table, "SHARE UPDATE EXCLUSIVE", outside_transaction=True)
        else:
            self.add(s, table, "SHARE")

    def _DropStmt(self, s: parsed_sql.Statement, node: ast.DropStmt) -> None:
        kind = node.removeType
        for parts in node.objects or ():
            if kind == _O.OBJECT_INDEX:
                if node.concurrent:
                    self.add(s, self.index_table(parts), "SHARE UPDATE EXCLUSIVE", outside_transaction=True)
                else:
                    self.add(s, self.index_table(parts), "ACCESS EXCLUSIVE")
            elif kind in (_O.OBJECT_TABLE, _O.OBJECT_VIEW, _O.OBJECT_MATVIEW, _O.OBJECT_SEQUENCE):
                self.add(s, parsed_sql.display(parts), "ACCESS EXCLUSIVE")
            elif kind in _ON_TABLE:
                self.add(s, parsed_sql.display(parsed_sql.names(parts)[:-1]), "ACCESS EXCLUSIVE")
            # functions, procedures, types, schemas, extensions: no table lock

    def _RenameStmt(self, s: parsed_sql.Statement, node: ast.RenameStmt) -> None:
        kind = node.renameType
        if kind == _O.OBJECT_INDEX:
            self.add(s, self.index_table(node.relation), "SHARE UPDATE EXCLUSIVE",
                     on=f"index {parsed_sql.display(node.relation)}")
            self.index_tables[node.newname] = self.index_table(node.relation)
        elif node.relation is not None:  # a table, its column, trigger, policy or constraint
            self.add(s, parsed_sql.display(node.relation), "ACCESS EXCLUSIVE")

    def _CreatePolicyStmt(self, s: parsed_sql.Statement, node: ast.CreatePolicyStmt) -> None:
        self.add(s, parsed_sql.display(node.table), "ACCESS EXCLUSIVE")

    def _AlterPolicyStmt(self, s: parsed_sql.Statement, node: ast.AlterPolicyStmt) -> None:
        self.add(s, parsed_sql.display(node.table), "ACCESS EXCLUSIVE")

    def _CreateTrigStmt(self, s: parsed_sql.Statement, node: ast.CreateTrigStmt) -> None:
        self.add(s, parsed_sql.display(node.relation), "SHARE ROW EXCLUSIVE")

    def _AlterTableStmt(self, s: parsed_sql.Statement, node: ast.AlterTableStmt) -> None:
        def level(cmd: ast.AlterTableCmd) -> int:
            if cmd.subtype in _TRIGGER_SWITCHES:
                return MODES.index("SHARE ROW EXCLUSIVE")
            if cmd.subtype in _SHARE_UPDATE_EXCLUSIVE:
                return MODES.index("SHARE UPDATE EXCLUSIVE")
            return MODES.index("ACCESS EXCLUSIVE")

        mode = MODES[max(level(cmd) for cmd in node.cmds)]
        if node.objtype == _O.OBJECT_INDEX:
            self.add(s, self.index_table(node.relation), mode, on=f"index {parsed_sql.display(node.relation)}")
        else:
            self.add(s, parsed_sql.display(node.relation), mode)

    def _CreateStmt(self, s: parsed_sql.Statement, node: ast.CreateStmt) -> None:
        table = parsed_sql.display(node.relation)
        self.created.add(table)
        self.add(s, table, "ACCESS EXCLUSIVE")
        for element in node.tableElts or ():
            constraints = element.constraints if isinstance(element, ast.ColumnDef) else (element,)
            for constraint in constraints or ():
                if isinstance(constraint, ast.Constraint) and constraint.contype == enums.ConstrType.CONSTR_FOREIGN:
                    self.add(s, parsed_sql.display(constraint.pktable), "SHARE ROW EXCLUSIVE",
                             on=f"table referenced by {table}'s foreign key")

    def _CommentStmt(self, s: parsed_sql.Statement, node: ast.CommentStmt) -> None:
        kind = node.objtype
        if kind == _O.OBJECT_INDEX:
            self.add(s, self.index_table(node.object), "SHARE UPDATE EXCLUSIVE",
                     on=f"index {parsed_sql.display(node.object)}")
        elif kind in _COMMENT_ON_RELATION:
            self.add(s, parsed_sql.display(node.object), "SHARE UPDATE EXCLUSIVE")
        elif kind == _O.OBJECT_COLUMN or kind in _ON_TABLE:
            self.add(s, parsed_sql.display(parsed_sql.names(node.object)[:-1]), "SHARE UPDATE EXCLUSIVE")
        # COMMENT ON FUNCTION, SCHEMA, ...: no table lock

    def _SelectStmt(self, s: parsed_sql.Statement, node: Any) -> None:
        calls = set(parsed_sql.function_calls(node))
        if calls & CRON_FUNCTIONS:
            self.add(s, "cron.job", "ROW EXCLUSIVE", on="pg_cron's job table; no table of the app")
        other = sorted(".".join(c) for c in calls - CRON_FUNCTIONS)
        if other:  # what a called function locks is in its body, which is not read here
            self.result.unread.append(f"{s.head(6)} (calls {', '.join(other)})")

    _CallStmt = _SelectStmt

    def _no_table_lock(self, s: parsed_sql.Statement, node: Any) -> None:
        pass

    _CreateFunctionStmt = _GrantStmt = _GrantRoleStmt = _AlterDefaultPrivilegesStmt = _no_table_lock
    _AlterFunctionStmt = _CreateExtensionStmt = _CreateSchemaStmt = _VariableSetStmt = _no_table_lock


def analyse(text: str, where: str = "SQL", index_tables: Mapping[str, str] | None = None) -> Analysis:
    """Every table lock the SQL takes, in statement order, and the statements whose locks are not known."""
    reader = _Reader(declared_index_tables() if index_tables is None else index_tables)
    for statement in parsed_sql.statements(text, where):
        reader.read(statement)
    return reader.result


def locks(text: str, where: str = "SQL", index_tables: Mapping[str, str] | None = None) -> list[Lock]:
    return analyse(text, where, index_tables).locks


def exclusive_tables(statements: list[str], where: str = "SQL") -> list[str]:
    """The tables `statements` lock ACCESS EXCLUSIVE inside their transaction, in the order they first
    appear: what a change that drops on several tables locks up front (db.lock_in_turn)."""
    named: list[str] = []
    for text in statements:
        named += [lock.table for lock in locks(text, where)
                  if lock.mode == "ACCESS EXCLUSIVE" and not lock.outside_transaction and lock.table not in named]
    return named
