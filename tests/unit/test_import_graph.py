"""No import circle in src/harken: the graph is built from the source with ``ast``, not imported.

Edges: every ``import``/``from ... import`` anywhere in a module (at module level and inside
functions, since a function-level import runs too), relative imports resolved, and
``from pkg import name`` pointing at ``pkg.name`` when that is a module. Importing
``a.b.c`` also runs ``a`` and ``a.b`` first, so those packages are edges too (except the
importer's own ancestors, which are already being imported). Imports under
``if TYPE_CHECKING:`` are left out: they never run, and typing a parameter with a class
from a module that imports yours is not a circle at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "harken"

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement, skipping the bodies of ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom,
             modules: dict[str, Path]) -> set[str]:
    """The harken modules one import statement names."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    out = {base}
    for alias in node.names:
        if f"{base}.{alias.name}" in modules:
            out.add(f"{base}.{alias.name}")
    return out


def build_graph() -> dict[str, set[str]]:
    """Map each harken module to the harken modules importing it runs."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        ancestors = {name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)}
        for node in _import_nodes(tree):
            for target in _targets(name, path.name == "__init__.py", node, modules):
                if not (target == PACKAGE or target.startswith(PACKAGE + ".")):
                    continue
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    step = ".".join(parts[:i])
                    if step in modules and step != name and step not in ancestors:
                        graph[name].add(step)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a closed path) in each strongly connected component that has one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan; the graph has ~100 nodes, recursion is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: set[str] = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_cycle_in(graph, component) for component in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest closed path through the component's first module (breadth-first)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    return [*paths[v], start]
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle in {sorted(component)}")  # pragma: no cover


def _report(cycles: list[list[str]]) -> str:
    return "import circles:\n" + "\n".join("  " + " -> ".join(c) for c in cycles)


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = build_graph()
    # A relative module-level import, and the packages it runs.
    assert {"harken.errors", "harken.units", "harken.wake.names", "harken.wake"} <= \
        graph["harken.config"]
    # A function-level import (files.py builds a FileSource inside a function).
    assert "harken.sources.file" in graph["harken.files"]
    # "from . import name" where name is a module of the package.
    assert "harken.cli.serve" in graph["harken.cli.main"]
    # TYPE_CHECKING-only imports are left out: harken/__init__ resolves its names lazily.
    assert graph["harken"] == {"harken._lazy"}


def test_cycle_finder_prints_the_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
    assert sorted(find_cycles(graph)) == [["a", "b", "c", "a"], ["d", "d"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_ground_floor_stands_on_nothing_above_it() -> None:
    """units and errors import no harken module; the config only them and the two pure name
    tables (whose packages resolve their names lazily). lint-imports checks it as well."""
    graph = build_graph()
    assert graph["harken.units"] == set() and graph["harken.errors"] == set()
    assert graph["harken.config"] <= {"harken.errors", "harken.units", "harken.vad",
                                      "harken.vad.backends", "harken.wake", "harken.wake.names"}
    for table in ("harken.vad.backends", "harken.wake.names"):
        assert graph[table] == {"harken.errors"}, table


def test_no_import_circle() -> None:
    cycles = find_cycles(build_graph())
    assert not cycles, _report(cycles)
