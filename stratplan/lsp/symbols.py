"""The declarations of a plan, from its tokens: outline, go to definition, document symbols.

Built on tokens rather than on the parsed plan, so that they work while the text does not
parse (a plan being typed): blocks are found by their keyword and their braces.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from lsprotocol import types

from stratplan.dsl.keywords import words_before_names
from stratplan.dsl.spans import Span
from stratplan.lsp.positions import Positions, contains, split_lines
from stratplan.lsp.tokens import COMMENT, OPEN_STRING, Token, tokens, word_at

# Keywords whose next word is what the symbol is called.
_NAMING = ("phase", "trigger", "atomic", "let", "as")


@dataclass
class Symbol:
    """A declaration: a phase, trigger, atomic block, repeat (loop variable) or `let`."""

    kind: str
    name: str
    name_token: Token | None
    start: tuple[int, int]
    end: tuple[int, int] | None = None
    children: list[Symbol] = field(default_factory=list)
    after: list[Token] = field(default_factory=list)

    @property
    def span(self) -> Span:
        """From the keyword to the closing brace (or the end of the line for a `let`)."""
        end = self.end or self.start
        return Span(line=self.start[0], column=self.start[1], end_line=end[0],
                    end_column=end[1])


@dataclass
class Outline:
    """The declarations of a plan, found lexically."""

    symbols: list[Symbol]

    def walk(self) -> Iterator[Symbol]:
        """Every symbol, depth first."""
        stack = list(reversed(self.symbols))
        while stack:
            symbol = stack.pop()
            yield symbol
            stack.extend(reversed(symbol.children))


def outline(text: str) -> Outline:
    """Phases, triggers, atomic blocks, repeats and `let`s with their ranges, by braces."""
    # After these words (`phase`, `from`, ...: the grammar has a NAME follow them) the
    # next word is a name or a venue, never a keyword (`phase spot`).
    name_slots = words_before_names()
    top: list[Symbol] = []
    stack: list[Symbol | None] = []  # open braces: the block each belongs to (None: other)
    pending: Symbol | None = None  # a block header waiting for its `{`
    named: Symbol | None = None  # the symbol the next name belongs to
    lines = split_lines(text)
    previous, in_after = "", False
    for token in tokens(text):
        word = token.text
        if token.kind in (COMMENT, "STRING", OPEN_STRING):
            continue
        if token.is_word and (previous in name_slots or (previous == "," and in_after)):
            if named is not None and previous in _NAMING:
                named.name, named.name_token = word, token
            elif pending is not None and previous in ("after", ","):
                pending.after.append(token)
            named, previous = None, "<name>"
            continue
        if token.is_word and word in ("phase", "trigger", "atomic", "repeat"):
            pending = named = Symbol(word, "", None, (token.line, token.column))
            in_after = False
        elif token.is_word and word == "let":
            named = Symbol("let", "", None, (token.line, token.column),
                           (token.line, len(lines[token.line - 1]) + 1))
            _attach(top, stack, named)
        elif token.is_word and word == "as" and pending is not None:
            named = pending
        elif token.is_word and word == "after" and pending is not None:
            in_after = True
        elif word == "{":
            if pending is not None:
                _attach(top, stack, pending)
            stack.append(pending)
            pending, named, in_after = None, None, False
        elif word == "}":
            if stack:
                closed = stack.pop()
                if closed is not None:
                    closed.end = (token.line, token.end_column)
        previous = word
    return Outline(top)


def _attach(top: list[Symbol], stack: list[Symbol | None], symbol: Symbol) -> None:
    parent = next((s for s in reversed(stack) if s is not None), None)
    (parent.children if parent is not None else top).append(symbol)


def definition(text: str, line: int, column: int) -> Token | None:
    """Where the name at a position is declared: an enclosing loop variable, a `let`, a
    phase or a trigger (None when the word declares nothing)."""
    word = word_at(text, line, column)
    if word is None:
        return None
    found = outline(text)
    repeats = [s for s in found.walk() if s.kind == "repeat" and s.name == word.text
               and s.end is not None and contains(s.span, line, column)]
    if repeats:
        return repeats[-1].name_token
    for kind in ("let", "phase", "trigger"):
        for symbol in found.walk():
            if symbol.kind == kind and symbol.name == word.text:
                return symbol.name_token
    return None


_SYMBOL_KIND = {"phase": types.SymbolKind.Namespace, "trigger": types.SymbolKind.Event,
                "atomic": types.SymbolKind.Struct, "let": types.SymbolKind.Constant}


def document_symbols(text: str, positions: Positions) -> list[types.DocumentSymbol]:
    """Phases and triggers with their atomic blocks, and `let` constants."""

    def convert(symbol: Symbol) -> types.DocumentSymbol | None:
        if symbol.kind not in _SYMBOL_KIND or not symbol.name or symbol.name_token is None:
            return None
        children = [c for c in (convert(child) for child in _flatten(symbol.children)) if c]
        span = symbol.span
        selection = positions.span_range(symbol.name_token.span)
        whole = positions.span_range(span)
        if (whole.end.line, whole.end.character) < (selection.end.line, selection.end.character):
            whole = types.Range(start=whole.start, end=selection.end)
        return types.DocumentSymbol(
            name=symbol.name, kind=_SYMBOL_KIND[symbol.kind], range=whole,
            selection_range=selection, detail=symbol.kind, children=children or None)

    return [s for s in (convert(symbol) for symbol in outline(text).symbols) if s]


def _flatten(symbols: list[Symbol]) -> Iterator[Symbol]:
    """Children shown in the outline: repeats are see-through."""
    for symbol in symbols:
        if symbol.kind == "repeat":
            yield from _flatten(symbol.children)
        else:
            yield symbol
