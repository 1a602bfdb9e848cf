"""The library's imports, read from each module's syntax tree (ast), never from its text.

- `dualwrite` imports nothing from `devenv`: the engine, the stack's secrets and its history are
  passed in (dualwrite/stack_engine.py), so the library runs where devenv's workstation pieces
  (the embedded cluster, the CLI built here) do not exist.
- No import cycle inside `dualwrite`. An import inside a function counts like one at the top: it
  only hides the cycle until that function runs. Importing `dualwrite.objects.x` from outside that
  package also imports `dualwrite/objects/__init__.py`, as Python does.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = "dualwrite"
def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_modules(root: Path = ROOT) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted((root / LIBRARY).rglob("*.py"))
            if "__pycache__" not in path.parts}


def imported_names(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, dotted name) of every module `path` imports, at any depth: `from a import b` names both
    `a` and `a.b` (b may be a module); a relative import is resolved against the module's package."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def import_graph(modules: dict[str, Path], root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the library modules it imports (a package's __init__ included when entered from outside)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for _, imported in imported_names(path, root):
            parts = imported.split(".")
            for depth in range(1, len(parts) + 1):
                target = ".".join(parts[:depth])
                # A package that holds the importer is being imported already (Python enters it first).
                if target in modules and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan), as a path
    `a -> b -> ... -> a` through that component, starting at its first module by name."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_path_through(graph, component) for component in sorted(components, key=min)]


def _path_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """The shortest way from the component's first module back to itself (breadth first)."""
    start = min(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, node, start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {sorted(component)}")  # a component of 2+ always has one


def test_the_library_imports_nothing_from_devenv():
    reaching = sorted({f"{path.relative_to(ROOT)}:{line}" for path in library_modules().values()
                       for line, name in imported_names(path) if name == "devenv" or name.startswith("devenv.")})
    assert not reaching, ("dualwrite must not import devenv (pass the engine, secrets or history in: "
                          "dualwrite/stack_engine.py):\n" + "\n".join(reaching))


def test_the_library_has_no_import_cycle():
    found = cycles(import_graph(library_modules()))
    assert not found, "import cycles inside dualwrite:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_the_graph_reader_sees_an_import_inside_a_function_and_a_cycle(tmp_path: Path):
    """The reader itself, on a library of three modules written here: a cycle closed by an import
    inside a function, a relative import, a package's __init__, and a devenv import are all seen."""
    library = tmp_path / LIBRARY
    (library / "pkg").mkdir(parents=True)
    (library / "pkg" / "__init__.py").write_text("from dualwrite.pkg.leaf import LEAF\n")
    (library / "pkg" / "leaf.py").write_text("from . import sibling\nLEAF = 1\n")
    (library / "pkg" / "sibling.py").write_text("")
    (library / "a.py").write_text("from dualwrite import b\n")
    (library / "b.py").write_text("def later():\n    import dualwrite.a\n    from devenv import engine\n")
    (library / "c.py").write_text("from dualwrite.pkg.leaf import LEAF\n")
    graph = import_graph(library_modules(tmp_path), tmp_path)
    assert graph["dualwrite.c"] == {"dualwrite.pkg", "dualwrite.pkg.leaf"}
    assert graph["dualwrite.pkg.leaf"] == {"dualwrite.pkg.sibling"}
    assert cycles(graph) == [["dualwrite.a", "dualwrite.b", "dualwrite.a"]]
    assert (3, "devenv.engine") in imported_names(library / "b.py", tmp_path)
