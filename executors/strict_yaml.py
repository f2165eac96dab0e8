"""A safe YAML loader that refuses duplicate keys and keeps numbers exact.

`StrictSafeLoader` is PyYAML's `SafeLoader` (no Python objects, no code) with two changes:

- a mapping that repeats a key, at any depth, is a `yaml.constructor.ConstructorError`
  naming the key's path, its line and the line of the first one (PyYAML keeps the last
  value silently). Keys brought in by a merge (`<<: *anchor`) may be overridden: that is
  what merging is for.
- a float is a `Decimal` made from its text (`0.0004` stays exactly 0.0004, and so does
  `0.123456789012345678901234`); `.inf` and `.nan` stay text for the caller to refuse; an
  integer too long for `int()` is a `Decimal` instead of a `ValueError`.

Use it as `yaml.load(text, Loader=StrictSafeLoader)` (or `load_strict(text)`): it subclasses
`SafeLoader`, so it is as safe as `yaml.safe_load`.
"""

from __future__ import annotations

import re
from decimal import Decimal, DecimalException, Inexact, Rounded
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from stratplan.dsl.decimals import arithmetic

_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"  # the `=` key, which SafeLoader turns into the text "="


_PLAIN = re.compile(r"[A-Za-z0-9_.$/-]{1,40}\Z")


def path_part(key: Any) -> str:
    """A key as one step of a field path: as written when plain, else quoted and shortened."""
    text = key if isinstance(key, str) else str(key)
    if _PLAIN.match(text):
        return text
    quoted = repr(text)
    return quoted if len(quoted) <= 40 else quoted[:36] + "...'"


def _node_part(key: Node) -> str:
    return path_part(key.value) if isinstance(key, ScalarNode) else f"<{type(key).__name__.removesuffix('Node').lower()}>"


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


class StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader without silent duplicate keys, with floats as exact Decimals."""

    def construct_document(self, node: Node) -> Any:
        self._refuse_duplicate_keys(node)
        return super().construct_document(node)

    def _refuse_duplicate_keys(self, root: Node) -> None:
        """One walk over the node graph (each node once, however many aliases name it)."""
        stack: list[tuple[Node, str]] = [(root, "")]
        visited: set[int] = set()
        while stack:
            node, path = stack.pop()
            if id(node) in visited:
                continue
            visited.add(id(node))
            if isinstance(node, SequenceNode):
                stack.extend((item, f"{path}[{index}]") for index, item in enumerate(node.value))
            elif isinstance(node, MappingNode):
                first: dict[Any, int] = {}
                for key_node, value_node in node.value:
                    where = _join(path, _node_part(key_node))
                    stack.append((value_node, where))
                    if key_node.tag == _MERGE or not isinstance(key_node, ScalarNode):
                        stack.append((key_node, where))
                        continue  # a complex key is refused (unhashable) when constructed
                    key = "=" if key_node.tag == _VALUE else self.construct_object(key_node)
                    if key in first:
                        raise ConstructorError(
                            "while constructing a mapping", node.start_mark,
                            f"{where}: duplicate key (first at line {first[key]})",
                            key_node.start_mark)
                    first[key] = key_node.start_mark.line + 1

    def construct_exact_float(self, node: ScalarNode) -> Decimal | str:
        """A YAML float as the Decimal its text says; `.inf`, `.nan` and oddities as text."""
        text = str(self.construct_scalar(node))
        cleaned = text.replace("_", "").lower()
        sign = -1 if cleaned.startswith("-") else 1
        body = cleaned.lstrip("+-")
        try:
            with arithmetic() as context:
                context.traps[Inexact] = context.traps[Rounded] = True  # exact, or text
                if ":" in body:  # YAML 1.1 base 60: 1:30.5 is 90.5
                    value = Decimal(0)
                    for part in body.split(":"):
                        value = value * 60 + Decimal(part)
                else:
                    value = Decimal(body)  # exact, whatever the context
                if not value.is_finite():
                    return text
                return value if sign > 0 else value.copy_negate()
        except DecimalException:
            return text  # the caller says what is wrong with it, with the field's path

    def construct_exact_int(self, node: ScalarNode) -> int | Decimal | str:
        """A YAML int; one too long for `int()` (4300 digits) becomes a Decimal."""
        try:
            return int(super().construct_yaml_int(node))
        except ValueError:
            text = str(self.construct_scalar(node))
            try:
                return Decimal(text.replace("_", ""))
            except DecimalException:
                return text


StrictSafeLoader.add_constructor("tag:yaml.org,2002:float", StrictSafeLoader.construct_exact_float)
StrictSafeLoader.add_constructor("tag:yaml.org,2002:int", StrictSafeLoader.construct_exact_int)


def load_strict(text: str) -> Any:
    """Parse one YAML document with `StrictSafeLoader`."""
    return yaml.load(text, Loader=StrictSafeLoader)  # a SafeLoader subclass: safe
