"""YAML parsing that keeps where each value stood and refuses duplicate keys.

PyYAML's ``safe_load`` silently keeps the last of two equal keys and forgets
positions, so the node tree is walked here instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from notifyd.config.findings import Path


@dataclass
class Positions:
    """1-based (line, column) of every value and every mapping key, by key path."""

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    plain_scalars: set[Path] = field(default_factory=set)

    def of_value(self, path: Path) -> tuple[int, int]:
        """Position of the value at ``path``, or of its nearest existing ancestor."""
        for end in range(len(path), -1, -1):
            found = self.values.get(tuple(path[:end]))
            if found:
                return found
        return (1, 1)

    def of_key(self, path: Path) -> tuple[int, int]:
        return self.keys.get(tuple(path)) or self.of_value(path)


class YamlProblem(Exception):
    """A syntax error or duplicate key, with its 1-based position."""

    def __init__(self, message: str, line: int, column: int, path: Path = ()) -> None:
        super().__init__(message)
        self.message, self.line, self.column, self.path = message, line, column, path


# Values of one file, aliases expanded: a config holds hundreds; "billion laughs" a billion.
MAX_VALUES = 100_000


def _position(mark: yaml.Mark | None) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark else (1, 1)


def parse(text: str) -> tuple[Any, Positions, list[YamlProblem]]:
    """Parse one YAML document; returns data, positions and duplicate-key problems.

    Raises ``YamlProblem`` for a syntax error or an empty document.
    """
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        line, column = _position(exc.problem_mark or exc.context_mark)
        raise YamlProblem(f"YAML syntax error: {exc.problem or exc.context}", line, column) from None
    finally:
        loader.dispose()
    if root is None:
        raise YamlProblem("the file is empty", 1, 1)
    walker = _NodeWalker(loader)
    data = walker.build(root, ())
    return data, walker.positions, walker.problems


class _NodeWalker:
    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.positions = Positions()
        self.problems: list[YamlProblem] = []
        self._values = 0
        self._open: set[int] = set()  # the collections being built: an alias to one of them is a cycle

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.positions.values[path] = _position(node.start_mark)
        self._count(node)
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            return self._collection(node, path)
        if isinstance(node, yaml.ScalarNode) and node.style is None:
            self.positions.plain_scalars.add(path)
        return self.loader.construct_object(node, deep=True)

    def _count(self, node: yaml.Node) -> None:
        """Stop at ``MAX_VALUES`` values, aliases expanded: "billion laughs" took 5.6 GB and a minute."""
        self._values += 1
        if self._values > MAX_VALUES:
            raise YamlProblem(f"the file expands to more than {MAX_VALUES:,} values (aliases of aliases?)",
                              *_position(node.start_mark))

    def _collection(self, node: yaml.Node, path: Path) -> Any:
        if id(node) in self._open:  # `a: &a [*a]` recursed until a RecursionError
            raise YamlProblem("an alias refers to a collection that contains it", *_position(node.start_mark))
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return [self.build(item, path + (index,)) for index, item in enumerate(node.value)]
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        own_pairs = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
        self.loader.flatten_mapping(node)  # resolves "<<" merge keys in place, merged pairs first
        merged_pairs = len(node.value) - own_pairs
        result: dict[Any, Any] = {}
        overridable: set[str] = set()  # keys that came in by a merge may be overridden
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                line, column = _position(key_node.start_mark)
                self.problems.append(YamlProblem("a mapping key must be a scalar", line, column, path))
                continue
            key = str(key) if not isinstance(key, str) else key
            key_path = path + (key,)
            if key in result and key in overridable:
                overridable.discard(key)
            elif key in result:
                line, column = _position(key_node.start_mark)
                first_line, _ = self.positions.keys[key_path]
                self.problems.append(
                    YamlProblem(f"duplicate key {key!r} (first defined on line {first_line})", line, column, key_path)
                )
                continue
            self.positions.keys[key_path] = _position(key_node.start_mark)
            result[key] = self.build(value_node, key_path)
            if index < merged_pairs:
                overridable.add(key)
        return result
