"""The tokens of a plan being typed, by the grammar's own lexer.

The parser lexes contextually (`dsl/lexer.py`: the parser state picks the terminals), so
on text that does not parse its tokens stop at the first error, and everything after it
(the later phases) would be lost to the outline. The language server lexes with the
grammar's terminals all at once instead (`stratplan.dsl.keywords.grammar_lexer`, Lark's
basic lexer; the parser explains syntax errors with the same one): on text that parses
the tokens have the parser's texts and positions (a keyword in a name's place aside: the
parser reads `phase spot` as a NAME, this lexer as SPOT; the outline goes by position).

Where no terminal matches, the lexer stops; the text there becomes one BAD token (a run of
the characters a word or number is made of, else one character) and lexing goes on after
it. A `"` with no closing quote starts an OPEN_STRING to the end of its line (a string
being typed; a string never spans lines). No token spans lines either, so each line is lexed
on its own. Comments, which the grammar ignores, are kept as COMMENT tokens.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import NamedTuple

from lark.exceptions import UnexpectedCharacters

from stratplan.dsl.keywords import grammar_lexer, keyword_terminals
from stratplan.dsl.spans import Span
from stratplan.lsp.positions import split_lines

COMMENT = "COMMENT"
OPEN_STRING = "OPEN_STRING"  # a string with no closing quote yet
BAD = "BAD"
# What a word or a number is made of: the grammar lets none of these follow one.
_WORDISH = re.compile(r"[A-Za-z0-9_.]+")
_SPACE = " \t\f"
# A line with more unlexable runs than this is taken as BAD from there on (lexing resumes
# on what is left of the line after each one: this bounds the work on a line of noise).
_MAX_BAD_PER_LINE = 256


class Token(NamedTuple):
    """One token: the grammar's terminal (NAME, ASSET, NUMBER, STRING, PHASE, LBRACE,
    ...), COMMENT, OPEN_STRING or BAD; its text; its 1-based line and code-point column."""

    kind: str
    text: str
    line: int
    column: int

    @property
    def end_column(self) -> int:
        """The column after the token."""
        return self.column + len(self.text)

    @property
    def span(self) -> Span:
        """The token's span."""
        return Span(line=self.line, column=self.column, end_line=self.line,
                    end_column=self.end_column)

    @property
    def is_word(self) -> bool:
        """A name, an asset or a keyword."""
        return self.kind in _word_kinds()


@cache
def _word_kinds() -> frozenset[str]:
    return frozenset({"NAME", "ASSET", *keyword_terminals()})


def tokens(text: str) -> list[Token]:
    """The text's tokens, comments included, whitespace left out."""
    found: list[Token] = []
    for number, line in enumerate(split_lines(text), start=1):
        found.extend(line_tokens(line, number))
    return found


def line_tokens(line: str, number: int) -> list[Token]:
    """The tokens of one line (no line end in it), numbered `number`."""
    return [Token(kind, text, number, column) for kind, text, column in _lexed(line)]


@lru_cache(maxsize=16384)
def _lexed(line: str) -> tuple[tuple[str, str, int], ...]:
    """(kind, text, column) of a line's tokens. Kept by line text: between two keystrokes
    one line of a document changes, and only that one is lexed again."""
    lexer = grammar_lexer()
    found: list[tuple[str, str, int]] = []
    start, bad = 0, 0
    while start < len(line):
        end = start
        try:
            for token in lexer.lex(line[start:]):
                column = start + (token.column or 1)
                end = column - 1 + len(token)
                found.append((token.type, str(token), column))
        except UnexpectedCharacters as exc:
            at = start + (exc.pos_in_stream or 0)
            bad += 1
            if line[at] == '"':
                found.append((OPEN_STRING, line[at:], at + 1))
                break
            run = _WORDISH.match(line, at)
            stop = run.end() if run else at + 1
            if bad >= _MAX_BAD_PER_LINE:
                stop = len(line)
            found.append((BAD, line[at:stop], at + 1))
            start = stop
            continue
        rest = line[end:].lstrip(_SPACE)
        if rest.startswith("#"):  # what the grammar ignores after the last token
            found.append((COMMENT, rest, len(line) - len(rest) + 1))
        break
    return tuple(found)


def word_at(text: str, line: int, column: int) -> Token | None:
    """The word (name, asset, keyword) at a plan position, if any."""
    lines = split_lines(text)
    if not 1 <= line <= len(lines):
        return None
    for token in line_tokens(lines[line - 1], line):
        if token.is_word and token.column <= column < token.end_column:
            return token
    return None


def code_at(text: str, line: int, column: int) -> str | None:
    """The diagnostic code (`SP400`) written in a comment at a plan position, if any."""
    lines = split_lines(text)
    if not 1 <= line <= len(lines):
        return None
    for token in line_tokens(lines[line - 1], line):
        if token.kind != COMMENT:
            continue
        for match in re.finditer(r"\bSP\d{3}\b", token.text, re.IGNORECASE):
            if token.column + match.start() <= column <= token.column + match.end() - 1:
                return match.group().upper()
    return None
