"""The house's floors: `custody` <- `exporters` <- `requisition` <- `cli.py`. A module never
imports from a floor above its own, not even inside a function, and no two modules import
each other (directly or round a longer cycle)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
FLOORS = {"custody": 0, "exporters": 1, "requisition": 2, "cli": 3}


def modules() -> dict[str, Path]:
    found = {"cli": ROOT / "cli.py"}
    for package in ("custody", "exporters", "requisition"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module an import names, anywhere in the file (functions and TYPE_CHECKING
    blocks included), with its line."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # `from custody import audit` names a module too
                yield node.lineno, f"{node.module}.{alias.name}"


def floor(module: str) -> int | None:
    return FLOORS.get(module.split(".")[0])


def upward(path: Path, own: int) -> list[str]:
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return [
        f"{shown}:{line} imports {name}"
        for line, name in imports(path)
        if (other := floor(name)) is not None and other > own
    ]


def test_no_module_imports_from_a_floor_above_its_own() -> None:
    found = [v for name, path in modules().items() for v in upward(path, floor(name) or 0)]
    assert found == []


def test_the_check_sees_an_upward_import_even_inside_a_function(tmp_path: Path) -> None:
    """The check above must be able to fail."""
    planted = tmp_path / "planted.py"
    planted.write_text("def later() -> None:\n    from requisition.purge import purge\n")
    assert upward(planted.resolve(), FLOORS["custody"]) != []
    planted.write_text("if True:\n    import exporters.index\n")
    assert upward(planted.resolve(), FLOORS["custody"]) != []


def _graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for _line, target in imports(path):
            if target in known and target != name:
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_circular_imports_between_modules() -> None:
    assert cycles(_graph()) == []


@pytest.mark.parametrize(
    "graph",
    [{"a": {"b"}, "b": {"a"}}, {"a": {"b"}, "b": {"c"}, "c": {"a"}}],
    ids=["two", "three"],
)
def test_the_cycle_check_finds_cycles(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) != []
