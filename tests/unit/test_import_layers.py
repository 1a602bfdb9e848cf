"""The library's layers, read from its source (every import, those inside functions too): no cycle.

Issue 18 named one: catalog -> objects -> removal -> rollback -> catalog. The object kinds sit
below the catalog (a kind is told what it needs in its props, e.g. the removal's DROPs), and
dualwrite/phases.py sits below everything (it names objects by name and imports nothing).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports() -> dict[str, set[str]]:
    """module -> the dualwrite modules it imports anywhere in its file."""
    modules = {}
    for path in (ROOT / "dualwrite").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[name] |= {target for target in targets if target in modules and target != name}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_nothing_the_catalog_imports_imports_the_catalog_back():
    graph = imports()
    back = sorted(module for module in reachable(graph, "dualwrite.catalog")
                  if "dualwrite.catalog" in reachable(graph, module) or module == "dualwrite.catalog")
    assert not back, f"import cycle through dualwrite.catalog: {back}"


def test_object_kinds_import_only_their_package_and_the_bottom_layers():
    graph = imports()
    allowed_prefixes = ("dualwrite.objects", "dualwrite.db", "dualwrite.parsed_sql", "dualwrite.lock_waits")
    # backfill and drift are what the backfill kind runs at `up`; they read the database only.
    allowed = {"dualwrite.backfill", "dualwrite.drift"}
    for module, targets in graph.items():
        if module.startswith("dualwrite.objects"):
            wrong = sorted(t for t in targets if not t.startswith(allowed_prefixes) and t not in allowed)
            assert not wrong, f"{module} imports {wrong}"


def test_phases_imports_nothing_of_the_project():
    assert imports()["dualwrite.phases"] == set()
