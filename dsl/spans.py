"""Source positions: 1-based lines and columns, end column exclusive."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Span:
    """Where a piece of source text starts and ends.

    A slotted dataclass, not a pydantic model: a plan holds two or three spans per
    instruction, and a model's instance dictionary made them four times larger (issue 17:
    peak memory per instruction). Pydantic validates and serialises it as a dataclass, so
    a diagnostic's JSON is unchanged."""

    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def join(first: Span, last: Span) -> Span:
        """The span from the start of `first` to the end of `last`."""
        return new_span(first.line, first.column, last.end_line, last.end_column)


_SET_SPAN = tuple(getattr(Span, name).__set__
                  for name in ("line", "column", "end_line", "end_column"))


def new_span(line: int, column: int, end_line: int, end_column: int,
             _new: Any = object.__new__, _set: tuple[Any, ...] = _SET_SPAN) -> Span:
    """A span from positions the parser already guarantees: the hot path of the parser,
    without the frozen dataclass's `__init__` (which goes through `object.__setattr__`)."""
    span = _new(Span)
    _set[0](span, line)
    _set[1](span, column)
    _set[2](span, end_line)
    _set[3](span, end_column)
    return span


UNKNOWN_SPAN = new_span(1, 1, 1, 1)


# LANGUAGE.md section 2: a line ends at `\n`, `\r\n` or a lone `\r`, and nowhere else (not
# at the form feed, vertical tab, NEL or U+2028 that `str.splitlines` also splits at).
_LINE_END = re.compile(r"\r\n?|\n")


def split_lines(text: str) -> list[str]:
    """The lines of a text as an editor counts them (like `str.splitlines()`, but only
    `\\n`, `\\r\\n` and a lone `\\r` end a line), so `split_lines(text)[span.line - 1]` is
    the line a span points into."""
    lines = _LINE_END.split(text)
    if not lines[-1]:
        lines.pop()  # a final line end starts no new line
    return lines


def position(text: str, offset: int) -> tuple[int, int]:
    """The 1-based (line, column) of `text[offset]`, lines counted as `split_lines` does."""
    offset = max(0, min(offset, len(text)))
    if offset and text[offset - 1] == "\r" and text[offset:offset + 1] == "\n":
        offset -= 1  # the `\n` of a `\r\n` belongs to the line end it finishes
    before = text[:offset]
    line = before.count("\n") + before.count("\r") - before.count("\r\n") + 1
    start = max(before.rfind("\n"), before.rfind("\r")) + 1
    return line, offset - start + 1
