"""Plan positions and LSP positions, and the lines both count.

Plan spans count lines by `\\n`, `\\r\\n` or a lone `\\r` and columns in code points, from 1;
LSP positions count from 0, in the encoding negotiated with the client (UTF-16 unless the
client offers another).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lsprotocol import types

from stratplan.dsl.spans import Span

_LINE_END = re.compile(r"\r\n|\r|\n")
Units = Callable[[str], int]


def utf16_units(text: str) -> int:
    """How many UTF-16 code units the text takes (LSP's default character count)."""
    return len(text.encode("utf-16-le")) // 2


def split_lines(text: str) -> list[str]:
    """The text's lines as the language counts them (a final empty line included)."""
    return _LINE_END.split(text)


def contains(span: Span, line: int, column: int) -> bool:
    """Whether a plan position lies inside a span (its end column is exclusive)."""
    return (span.line, span.column) <= (line, column) < (span.end_line, span.end_column)


class Positions:
    """Converts between plan positions (1-based line, 1-based code-point column) and LSP
    positions (0-based line, 0-based character in the client's encoding)."""

    def __init__(self, text: str, units: Units = utf16_units) -> None:
        self.lines = split_lines(text)
        self.units = units

    def to_lsp(self, line: int, column: int) -> types.Position:
        """An LSP position; past the end clamps to the end of the document."""
        if line < 1:
            return types.Position(line=0, character=0)
        if line > len(self.lines):
            last = len(self.lines) - 1
            return types.Position(line=last, character=self.units(self.lines[last]))
        text = self.lines[line - 1]
        return types.Position(line=line - 1, character=self.units(text[:max(column - 1, 0)]))

    def span_range(self, span: Span) -> types.Range:
        """The LSP range of a span (its end column is exclusive in both)."""
        start = self.to_lsp(span.line, span.column)
        end = self.to_lsp(span.end_line, span.end_column)
        if (end.line, end.character) < (start.line, start.character):
            end = start
        return types.Range(start=start, end=end)

    def empty_range(self, line: int, column: int) -> types.Range:
        """The empty LSP range at a plan position (where an edit inserts text)."""
        at = self.to_lsp(line, column)
        return types.Range(start=at, end=at)

    def from_lsp(self, position: types.Position) -> tuple[int, int]:
        """The plan position (line, column) of an LSP position."""
        if position.line >= len(self.lines):
            return len(self.lines), len(self.lines[-1]) + 1
        text = self.lines[position.line]
        count = 0
        for index, char in enumerate(text):
            if count >= position.character:
                return position.line + 1, index + 1
            count += self.units(char)
        return position.line + 1, len(text) + 1

    def end(self) -> types.Position:
        """The position after the last character."""
        last = len(self.lines) - 1
        return types.Position(line=last, character=self.units(self.lines[last]))
