"""The package layout's rules: which package may import which, no import circles, no giant modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "notifyd"

# What each part may never import (issue 19; each package's __init__ docstring says the same).
FORBIDDEN = {
    "api": {"*"},
    "records": {"channel", "daemon", "config", "recipients", "handlers", "tools", "commands"},
    "handlers": {"channel", "daemon", "config", "recipients", "records", "tools", "commands"},
    "recipients": {"channel", "daemon", "tools", "commands"},
    "config": {"channel", "daemon", "tools", "commands"},
    "channel": {"daemon", "tools", "commands"},
    "daemon": {"tools", "commands"},
    "tools": {"channel", "daemon", "commands"},
    "ledger": {"channel", "daemon", "tools", "commands"},
}
MAX_MODULE_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, *, top_level_only: bool) -> set[str]:
    """The notifyd modules ``path`` imports (``from notifyd.x import y`` counts ``notifyd.x.y`` when a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("notifyd"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("notifyd"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_module_imports_a_forbidden_part(module: str) -> None:
    known = modules()
    forbidden = FORBIDDEN.get(part_of(module), set())
    imported = {part_of(name) for name in imports_of(known[module], top_level_only=False) if name in known}
    bad = {part for part in imported if part != part_of(module) and ("*" in forbidden or part in forbidden)}
    assert not bad, f"{module} imports from {sorted(bad)}"


def test_there_are_no_import_circles() -> None:
    known = modules()
    graph = {name: {m for m in imports_of(path, top_level_only=True) if m in known and m != name}
             for name, path in known.items()}
    # A package's __init__ imports nothing here, so its submodules' edges stand alone.
    circle = find_circle(graph)
    assert circle is None, " -> ".join(circle or ())


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph``, or None (depth-first search with colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_circle_finder_finds_one() -> None:
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_module_is_over_300_lines(module: str) -> None:
    lines = len(modules()[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines"
