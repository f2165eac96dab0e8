"""Comments: attached to the plan items they belong to, and the `# noqa` table."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from stratplan.dsl.models import Block, Holdings, Phase, Plan

# `noqa` in any case; codes are ASCII letters then digits. An ignore-case `[A-Za-z]` would
# take the Kelvin sign and the long s, which upper() turns into K and S. `\d` (any digit)
# is deliberate: a code mistyped with a fullwidth or Bengali digit is kept as written and
# silences nothing, rather than failing to match and reading as a bare noqa comment.
# Comment lines are the lexer's, so `\r\n` and a lone `\r` each end one line here too.
NOQA = re.compile(r"#.*?\b(?i:noqa)\b(?::\s*(?P<codes>[A-Za-z]+\d+(?:[\s,]+[A-Za-z]+\d+)*))?")


class RawComment(NamedTuple):
    """A comment as the lexer saw it."""

    line: int
    column: int
    text: str


def noqa_table(comments: list[RawComment]) -> dict[int, frozenset[str] | None]:
    """Line -> codes silenced there (None: every code)."""
    table: dict[int, frozenset[str] | None] = {}
    for comment in comments:
        match = NOQA.match(comment.text)
        if match:
            codes = match.group("codes")
            table[comment.line] = (frozenset(c.upper() for c in re.split(r"[\s,]+", codes) if c)
                                   if codes else None)
    return table


class _Cursor:
    """Hands out comments in source order; each comment goes to exactly one item."""

    def __init__(self, comments: list[RawComment]) -> None:
        self.comments = sorted(comments)
        self.index = 0

    def before(self, line: int, column: int) -> tuple[str, ...]:
        taken = []
        while self.index < len(self.comments) and \
                (self.comments[self.index].line, self.comments[self.index].column) < (line, column):
            taken.append(self.comments[self.index].text)
            self.index += 1
        return tuple(taken)

    def through_line(self, line: int) -> tuple[str, ...]:
        taken = []
        while self.index < len(self.comments) and self.comments[self.index].line <= line:
            taken.append(self.comments[self.index].text)
            self.index += 1
        return tuple(taken)

    def rest(self) -> tuple[str, ...]:
        taken = tuple(c.text for c in self.comments[self.index:])
        self.index = len(self.comments)
        return taken


def _trailing(texts: tuple[str, ...]) -> str | None:
    return " ".join(texts) if texts else None


def _item(node: Any, cursor: _Cursor) -> Any:
    leading = cursor.before(node.span.line, node.span.column)
    if isinstance(node, Block):
        children = _children(node)
        first = next((c for items in children.values() for c in items), None)
        if first is not None and first.span.line == node.span.line:
            header = cursor.before(first.span.line, first.span.column)
        else:
            header = cursor.through_line(node.span.line)
        trailing = _trailing(header)
        updated = {name: tuple(_item(child, cursor) for child in items)
                   for name, items in children.items()}
        end = cursor.before(node.span.end_line, node.span.end_column) + \
            cursor.through_line(node.span.end_line)
        return node.model_copy(update={"leading": leading, "trailing": trailing,
                                       "end_comments": end, **updated})
    trailing = _trailing(cursor.through_line(node.span.end_line))
    return node.model_copy(update={"leading": leading, "trailing": trailing})


def _children(block: Any) -> dict[str, tuple[Any, ...]]:
    if isinstance(block, Holdings):
        return {"entries": block.entries}
    if isinstance(block, Phase) or hasattr(block, "body"):
        return {"body": block.body}
    return {}


def attach_comments(plan: Plan, comments: list[RawComment]) -> Plan:
    """The plan with every comment attached to an item, so the formatter can keep it."""
    if not comments:
        return plan
    cursor = _Cursor(comments)
    leading = cursor.before(plan.span.line, plan.span.column)
    trailing = _trailing(cursor.through_line(plan.span.line))
    items: list[tuple[str, Any]] = []
    if plan.market is not None:
        items.append(("market", plan.market))
    if plan.series is not None:
        items.append(("series", plan.series))
    if plan.holdings is not None:
        items.append(("holdings", plan.holdings))
    items += [("lets", x) for x in plan.lets] + [("sets", x) for x in plan.sets]
    items += [("phases", x) for x in plan.phases] + [("triggers", x) for x in plan.triggers]
    items.sort(key=lambda pair: (pair[1].span.line, pair[1].span.column))
    update: dict[str, Any] = {"lets": [], "sets": [], "phases": [], "triggers": []}
    for field, node in items:
        done = _item(node, cursor)
        if field in ("market", "series", "holdings"):
            update[field] = done
        else:
            update[field].append(done)
    for field in ("lets", "sets", "phases", "triggers"):
        update[field] = tuple(update[field])
    return plan.model_copy(update={"leading": leading, "trailing": trailing,
                                   "end_comments": cursor.rest(), **update})
