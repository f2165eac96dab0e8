"""Text to typed plan: one LALR pass with the transformer inlined (no parse tree is built).

`parse` never raises on bad input: every problem becomes a diagnostic (SP100 for syntax,
SP110 for limits and for number literals that cannot be held exactly or leave 1e-30..1e30).
Nesting depth, and the height of every expression tree, are bounded while parsing, so no
later tree walk can exhaust the stack. Line ends are `\n`, `\r\n` or a lone `\r`; every
position (diagnostics, spans, the `# noqa` table) counts lines that way.

Its parts: the tree builder, which makes the models and keeps the limits (`builder.py`); the
number literals (`numbers.py`); the Lark parser and its shipped tables (`grammar.py`); the
messages of syntax errors (`syntax_errors.py`).
"""

from __future__ import annotations

import re
import sys
import threading
from dataclasses import dataclass, field
from decimal import DecimalException
from functools import cache
from typing import Any, cast

from lark import Lark, Token
from lark.exceptions import LarkError, UnexpectedInput

# MAX_EXPRESSION_DEPTH, MAX_EXPRESSION_HEIGHT, MAX_BLOCK_NESTING: LANGUAGE.md's limits, kept
# by the tree builder while parsing. grammar_text and number_value are imported from here by
# modules outside dsl/.
from stratplan.dsl.builder import (
    BUILDER,
    COMMENTS,
    MAX_BLOCK_NESTING,
    MAX_EXPRESSION_DEPTH,
    MAX_EXPRESSION_HEIGHT,
    Abort,
    tok_span,
)
from stratplan.dsl.comments import attach_comments, noqa_table
from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.diagnostics import Diagnostic, error
from stratplan.dsl.grammar import grammar_text, plan_lark
from stratplan.dsl.lalr import LalrLoop, NoAction
from stratplan.dsl.lexer import FastContextualLexer
from stratplan.dsl.models import Plan
from stratplan.dsl.numbers import number_value, signal_diagnostic
from stratplan.dsl.performance import paused_gc
from stratplan.dsl.spans import Span, position
from stratplan.dsl.syntax_errors import syntax_error

__all__ = ["MAX_BLOCK_NESTING", "MAX_EXPRESSION_DEPTH", "MAX_EXPRESSION_HEIGHT",
           "MAX_FILE_BYTES", "ParseResult", "decode", "file_too_large", "grammar_text",
           "number_value", "parse"]

MAX_FILE_BYTES = 16 * 1024 * 1024

def __getattr__(name: str) -> object:
    """`KEYWORDS`, the reserved words, read from the grammar on first use (dsl/keywords.py:
    no hand-written list can drift from it; a parse does not need it)."""
    if name == "KEYWORDS":
        from stratplan.dsl.keywords import keywords
        return keywords()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class ParseResult:
    """The plan (None when the text does not parse) and what was found wrong."""

    plan: Plan | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    noqa: dict[int, frozenset[str] | None] = field(default_factory=dict)
    source: str = ""

    @property
    def ok(self) -> bool:
        """True when a plan was produced."""
        return self.plan is not None


_LOCK = threading.Lock()


def decode(data: str | bytes, max_bytes: int | None = MAX_FILE_BYTES
           ) -> tuple[str | None, Diagnostic | None]:
    """Text from bytes, or an SP100/SP110 saying why the bytes are not a plan.

    `max_bytes` is LANGUAGE.md's file limit; only a program embedding the parser may lift
    it (None), as the benchmark does for its flat plan of a million instructions. The
    command line, the language server and the linter keep it."""
    limit = max_bytes if max_bytes is not None else sys.maxsize
    if isinstance(data, bytes):
        if len(data) > limit:
            return None, file_too_large(len(data), limit)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            before = data[: exc.start].decode("utf-8", "replace")
            line, column = position(before, len(before))
            return None, error("SP100", f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                               Span(line=line, column=column, end_line=line,
                                    end_column=column + 1),
                               help="save the plan as UTF-8 text")
    else:
        text = data
        if len(text) > limit and len(text.encode("utf-8", "replace")) > limit:
            return None, file_too_large(len(text.encode("utf-8", "replace")), limit)
    nul = text.find("\x00")
    if nul >= 0:
        line, column = position(text, nul)
        return None, error("SP100", "the file contains a NUL byte; a plan is plain text",
                           Span(line=line, column=column, end_line=line, end_column=column + 1))
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, None


def file_too_large(size: int, limit: int) -> Diagnostic:
    return error("SP110", f"the file is {size:,} bytes, above the limit of {limit:,}",
                 Span(line=1, column=1, end_line=1, end_column=1),
                 help="split the plan into several files")


_LONE_CR = re.compile(r"\r(?!\n)")


def _one_line_end(text: str) -> str:
    """The text with each lone `\r` turned into `\n`, for Lark, which counts lines by
    `\n` only. One character for one: every offset, line and column stays what it is in
    the original text (where `\r\n` and a lone `\r` each end one line)."""
    return _LONE_CR.sub("\n", text) if "\r" in text else text


def parse(data: str | bytes, path: str | None = None,
          max_bytes: int | None = MAX_FILE_BYTES) -> ParseResult:
    """Parse plan text (or bytes) into a typed plan; never raises on any input.

    Decimal work is done in `decimals.arithmetic()` (40 significant digits); a decimal
    signal becomes a diagnostic at the line where it arose (SP110 out of range, SP104 not
    finite). `ParseResult.source` is the text as given (a BOM aside). `max_bytes`: see
    `decode`."""
    text, problem = decode(data, max_bytes)
    if text is None:
        assert problem is not None
        return ParseResult(None, [_pathed(problem, path)])
    lark_text = _one_line_end(text)
    with _LOCK, paused_gc(), arithmetic():
        BUILDER.reset()
        COMMENTS.clear()
        lark = plan_lark()
        try:
            plan = cast(Plan, _parse_text(lark, lark_text))
            comments = list(COMMENTS)
        except Abort as abort:
            return ParseResult(None, [_pathed(abort.diagnostic, path)], source=text)
        except UnexpectedInput as exc:
            diagnostic = syntax_error(lark_text, exc)
            return ParseResult(None, [_pathed(diagnostic, path)], source=text)
        except DecimalException as exc:
            diagnostic = signal_diagnostic(exc, _last_token_span(lark))
            return ParseResult(None, [_pathed(diagnostic, path)], source=text)
        except (LarkError, RecursionError, MemoryError) as exc:
            diagnostic = error("SP100", f"cannot parse the plan: {type(exc).__name__}",
                               Span(line=1, column=1, end_line=1, end_column=1))
            return ParseResult(None, [_pathed(diagnostic, path)], source=text)
        finally:
            BUILDER.reset()
            COMMENTS.clear()
            _forget_text(lark)
    plan = attach_comments(plan, comments)
    return ParseResult(plan, [], noqa=noqa_table(comments), source=text)


def _parse_text(lark: Lark, text: str) -> Any:
    """The plan of a text, through the faster loop over Lark's tables (`dsl/lalr.py`);
    a text that does not parse is parsed again by Lark's own loop, from a clean start, so
    that its syntax error is exactly Lark's. (Broken text costs two parses; it is short
    while being typed, and a long file with an error is rare.)"""
    loop = _loop(lark)
    if loop is None:
        return lark.parse(text)
    try:
        return loop.parse(text)
    except (NoAction, UnexpectedInput):
        BUILDER.reset()
        COMMENTS.clear()
        return lark.parse(text)


@cache
def _loop(lark: Lark) -> LalrLoop | None:
    try:
        return LalrLoop(lark)
    except (AttributeError, TypeError, KeyError, ValueError):
        # A Lark release whose tables look different: its own loop still works.
        return None


def _last_token_span(lark: Lark) -> Span:
    """Where the parse was when it stopped: the last token the lexer handed out."""
    lexer = getattr(lark.parser, "lexer", None)
    state = getattr(lexer, "lexer_state", None)
    token = getattr(state, "last_token", None)
    return tok_span(token) if isinstance(token, Token) else \
        Span(line=1, column=1, end_line=1, end_column=1)


def _forget_text(lark: Lark) -> None:
    """Drop the lexer's hold on the last text (up to 16 MiB) once the parse is over."""
    lexer = getattr(lark.parser, "lexer", None)
    if isinstance(lexer, FastContextualLexer):
        lexer.lexer_state = None


def _pathed(diagnostic: Diagnostic, path: str | None) -> Diagnostic:
    return diagnostic.with_path(path) if path else diagnostic
