"""The message of a syntax error (SP100): what was expected and what was found, with a
specific message for common slips (a non-ASCII digit, a misplaced underscore, a number glued
to its asset, a name in capitals), pointing where the fix belongs."""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from lark import Lark, Token
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from stratplan.dsl.diagnostics import Diagnostic, error
from stratplan.dsl.grammar import grammar_text
from stratplan.dsl.messages import (
    STARTERS,
    glued_number_message,
    lowercase_name_message,
    name_role,
    non_ascii_digit_message,
    syntax_message,
    underscore_message,
)
from stratplan.dsl.spans import Span

# What the text at a syntax error may be, for the messages of common slips.
_WORD = re.compile(r"[A-Za-z0-9_]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GLUED = re.compile(r"(?P<number>[0-9](?:[0-9_.]*[0-9])?(?:[eE][+-]?[0-9]+)?)"
                    r"(?P<asset>[a-z]*[A-Z][A-Za-z0-9.]*)")
_LOOSE_NUMBER = re.compile(r"[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]*)?(?:%|bps|x)?")
# The rest of a number as written, Unicode digits and letters included (2.5 or 1e-4 written
# with a Devanagari or Bengali last digit).
_NUMBER_RUN = re.compile(r"(?:[\w.]|(?<=[eE])[+-])*")


def _non_ascii_digit(text: str, offset: int) -> int | None:
    """The offset of a non-ASCII digit at `offset` or later in the number written there."""
    if not ("0" <= text[offset - 1:offset] <= "9" or "0" <= text[offset:offset + 1] <= "9"):
        return None  # not inside a number: a digit anywhere else is found where it stands
    run = _NUMBER_RUN.match(text, offset)
    assert run is not None  # the pattern matches the empty string
    return next((offset + i for i, c in enumerate(run.group())
                 if not c.isascii() and c.isdigit()), None)


def _slip(text: str, offset: int, expected: set[str],
          previous: list[Token]) -> tuple[str, str, int, int] | None:
    """A specific message for a common slip at `offset`: (message, help, start, width)."""
    char = text[offset] if 0 <= offset < len(text) else ""
    digit = offset if char and not char.isascii() and char.isdigit() else \
        _non_ascii_digit(text, offset)
    if digit is not None:
        char = text[digit]
        message, help_text = non_ascii_digit_message(char, unicodedata.name(char, "a digit"))
        return message, help_text, digit, 1
    if "0" <= char <= "9":
        loose = _LOOSE_NUMBER.match(text, offset)
        literal = loose.group() if loose else char
        exponent = next((i for i, c in enumerate(literal) if c in "eE"), len(literal))
        for index, c in enumerate(literal):
            # Between two digits of the mantissa, one at a time; never in the exponent.
            if c == "_" and (index > exponent or not (literal[index - 1:index].isdigit()
                                                      and literal[index + 1:index + 2].isdigit())):
                run = len(literal[index:]) - len(literal[index:].lstrip("_"))
                message, help_text = underscore_message(literal)
                return message, help_text, offset + index, run
        glued = _GLUED.match(text, offset)
        if glued is not None:
            message, help_text = glued_number_message(glued["number"], glued["asset"])
            return message, help_text, offset, glued.end() - offset
        return None
    if "NAME" in expected and (word := _IDENTIFIER.match(text, offset)) is not None:
        whole = _WORD.match(text, offset)
        name = whole.group() if whole else word.group()
        role = name_role(previous)
        if role is not None and name != name.lower() and _IDENTIFIER.fullmatch(name):
            message, help_text = lowercase_name_message(role, name)
            return message, help_text, offset, len(name)
    return None


@cache
def _lark_for_errors() -> Lark:
    # A tree-building twin, used only to re-lex text when explaining a syntax error.
    return Lark(grammar_text(), parser="lalr", lexer="basic")


def syntax_error(text: str, exc: UnexpectedInput) -> Diagnostic:
    """The SP100 diagnostic of a text Lark could not parse (`text` as Lark read it)."""
    line = max(getattr(exc, "line", 1) or 1, 1)
    column = max(getattr(exc, "column", 1) or 1, 1)
    at_end = isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    offset = -1
    if at_end:
        line, column = _end_position(text)
        found_text, width = "end of file", 1
    elif isinstance(exc, UnexpectedToken):
        found_text, width = f'"{exc.token.value}"', max(len(str(exc.token.value)), 1)
        offset = exc.token.start_pos if exc.token.start_pos is not None else -1
    elif isinstance(exc, UnexpectedCharacters):
        offset = exc.pos_in_stream or 0
        char = text[offset] if 0 <= offset < len(text) else "?"
        found_text, width = f"unexpected character {char!r}", 1
    else:
        found_text, width = "something unexpected", 1
    expected = _expected_terminals(exc)
    previous = _previous_tokens(text, line + 1 if at_end else line, column)
    slip = _slip(text, offset, expected, previous) if offset >= 0 else None
    if slip is not None:
        slip_message, slip_help, start, width = slip
        column += start - offset  # the slip's text is on the error's line
        return error("SP100", slip_message,
                     Span(line=line, column=column, end_line=line, end_column=column + width),
                     help=slip_help)
    message, help_text = syntax_message(expected, previous, found_text)
    starts_next = isinstance(exc, UnexpectedToken) and exc.token.type in STARTERS
    if previous and (at_end or (starts_next and (previous[-1].end_line or 0) < line)):
        # Something is missing at the end of a line: point where it belongs, right after
        # the last good token, not at the next line's first token (or a trailing comment).
        last = previous[-1]
        line, column, width = last.end_line or line, last.end_column or column, 1
    return error("SP100", message,
                 Span(line=line, column=column, end_line=line, end_column=column + width),
                 help=help_text)


def _expected_terminals(exc: UnexpectedInput) -> set[str]:
    if isinstance(exc, UnexpectedToken):
        parser = exc.interactive_parser
        if parser is not None:
            try:
                return set(parser.accepts())
            except Exception:  # accepts() replays the parser; fall back to the table
                pass
        return set(exc.expected or ())
    if isinstance(exc, UnexpectedCharacters):
        return set(exc.allowed or ())
    return set()


def _previous_tokens(text: str, line: int, column: int) -> list[Token]:
    """The tokens before (line, column), at most the last eight, for the error's context."""
    found: list[Token] = []
    try:
        for tok in _lark_for_errors().lex(text):
            if (tok.line, tok.column) >= (line, column):
                break
            found.append(tok)
            if len(found) > 8:
                found.pop(0)
    except LarkError:
        pass
    return found


def _end_position(text: str) -> tuple[int, int]:
    stripped = text.rstrip()
    if not stripped:
        return 1, 1
    line = stripped.count("\n") + 1
    column = len(stripped) - (stripped.rfind("\n") + 1) + 1
    return line, column

