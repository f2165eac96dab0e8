"""A faster scanning loop for Lark's contextual lexer: the same terminals, the same tokens.

Lark's contextual lexer matches every token with the regex of the parser state's
terminals, and every run of whitespace with a second match, creating a Token for each
through two Python-level constructors and feeding a line counter twice. On a large plan
that was half of the parse. This subclass keeps Lark's terminal tables (built by Lark from
the grammar, per parser state) and changes only the loop: one match per token that skips
the whitespace before it, a keyword table instead of a regex for keyword-named tokens, and
the token built directly.

Anything the fast path does not handle exactly as Lark does (comments, whose callback
collects them; the end of the text; any character no terminal matches) is handed to
Lark's own code for that one token, so every syntax error comes from Lark unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from functools import cache
from typing import Any, NamedTuple

from lark import Token
from lark.lexer import BasicLexer, ContextualLexer, LexerState, PatternStr

# Lark internals the fast path reads (issue 22, item 6: `lark` is pinned below the next
# untested minor release). Without them every parser state keeps Lark's own loop: the
# scan builder's AttributeError/TypeError fallback below turns a None here into that.
_create_unless: Any
UnlessCallback: Any
try:
    from lark.lexer import UnlessCallback, _create_unless
except ImportError:
    UnlessCallback = _create_unless = None

_new_str = str.__new__
# Characters an ignored whitespace terminal consumes; a terminal that could start with one
# of them would make skipping whitespace first change the result, so it disables the
# fast path for its parser state.
_SPACES = " \t\f\r\n"
# What may follow that whitespace in the probe (grammar changes are also caught by the
# property tests, which compare this lexer with Lark's on edited plans).
_PROBES = ("", " ", "\n", "a", "A", "0", "_", "#", '"', "(", "-", ".")


class _Scan(NamedTuple):
    """What the fast path needs for one parser state."""

    pattern: re.Pattern[str]
    keywords: dict[str, dict[str, str]]  # terminal -> {keyword text: keyword terminal}
    callbacks: dict[str, Callable[[Token], Token]]  # other callbacks, as Lark runs them
    newline_types: frozenset[str]
    ignored: frozenset[str]  # ignored terminals left to Lark's loop (comments)


def _keyword_table(callback: Any) -> dict[str, str] | None:
    """{text: terminal} for Lark's keyword check on a terminal, when it is plain strings."""
    if UnlessCallback is None or not isinstance(callback, UnlessCallback):
        return None
    table: dict[str, str] = {}
    for terminal in callback.scanner.terminals:
        pattern = terminal.pattern
        if not isinstance(pattern, PatternStr) or pattern.flags:
            return None
        # The scanner tries its terminals in order: the first to match the text wins.
        table.setdefault(pattern.value, terminal.name)
    return table


@cache
def _matches_space(regexp: str, flags: int) -> bool:
    """Whether a terminal could match at whitespace the fast path skips. Terminals recur
    in most parser states: asked once per terminal, not once per state (issue 17)."""
    compiled = re.compile(regexp, flags)
    return any(compiled.match(space + after) for space in _SPACES for after in _PROBES)


def _could_start_with_space(pattern: Any, regexp: str, flags: int) -> bool:
    """Whether a terminal could match at whitespace the fast path skips. A plain string
    (a keyword or a punctuation mark: most terminals) only if it starts with a space
    character, which needs no regex compiled; a regex terminal is probed."""
    if isinstance(pattern, PatternStr) and not pattern.flags:
        return pattern.value[:1] in _SPACES
    return _matches_space(regexp, flags)


def scanner_tables(lexer: BasicLexer) -> tuple[list[Any], dict[str, Any]] | None:
    """The terminals in the order Lark's scanner tries them, and the callbacks by terminal,
    as `BasicLexer._build_scanner` makes them, without compiling Lark's own scanner
    regex: the fast path has its own, and Lark's is needed only in the states where Lark's
    loop runs (comments, the end, errors). That halves the regex compilations of a
    process's first parse (~7 ms of a small lint). None when a user callback would be
    chained to a keyword check (Lark's `CallChain`): such a state keeps Lark's loop.
    A test compares these tables with Lark's scanner in every parser state."""
    if _create_unless is None:
        raise AttributeError("this Lark has no _create_unless")
    terminals, callbacks = _create_unless(lexer.terminals, lexer.g_regex_flags, lexer.re,
                                          lexer.use_bytes)
    for name, callback in lexer.user_callbacks.items():
        if name in callbacks:
            return None
        callbacks[name] = callback
    return terminals, callbacks


def _state_scan(lexer: BasicLexer, skip: str, skipped: frozenset[str]) -> _Scan | None:
    """The fast path for one state's lexer, or None when it cannot match Lark exactly."""
    tables = scanner_tables(lexer)
    if tables is None:
        return None
    terminals, lark_callbacks = tables
    ignored = lexer.ignore_types
    alternatives: list[str] = []
    keywords: dict[str, dict[str, str]] = {}
    callbacks: dict[str, Callable[[Token], Token]] = {}
    for terminal in terminals:
        if terminal.name in skipped:
            continue
        regexp = terminal.pattern.to_regexp()
        if skip and _could_start_with_space(terminal.pattern, regexp, lexer.g_regex_flags):
            return None  # Lark could match it where the fast path skips whitespace
        # Ignored terminals stay in Lark's order: one that matches (a comment) sends the
        # token to the slow path instead of letting a later terminal match in its place.
        alternatives.append(f"(?P<{terminal.name}>{regexp})")
    for name, callback in lark_callbacks.items():
        if name in ignored:
            continue
        table = _keyword_table(callback)
        if table is not None:
            keywords[name] = table
        else:
            callbacks[name] = callback
    if not alternatives:
        return None
    try:
        pattern = re.compile(f"(?>{skip})(?:{'|'.join(alternatives)})", lexer.g_regex_flags)
    except (re.error, AssertionError):  # the re module's group limit, for huge grammars
        return None
    return _Scan(pattern, keywords, callbacks, lexer.newline_types, frozenset(ignored))


class FastContextualLexer(ContextualLexer):
    """Lark's ContextualLexer with a faster loop (plugged in through Lark's `_plugins`)."""

    def __init__(self, conf: Any, states: dict[int, Collection[str]],
                 always_accept: Collection[str] = ()) -> None:
        super().__init__(conf, states, always_accept)
        # Whitespace terminals that are ignored and have no callback can be skipped inside
        # the token's match; ignored terminals with a callback (comments) cannot.
        spaces = [t for t in conf.terminals
                  if t.name in conf.ignore and t.name not in conf.callbacks
                  and all(re.fullmatch(t.pattern.to_regexp(), c) for c in _SPACES)]
        self._skipped = frozenset(t.name for t in spaces)
        self._skip = (f"(?:{'|'.join(t.pattern.to_regexp() for t in spaces)})*"
                      if spaces else "")
        self._scans: dict[int, _Scan | None] = {}
        # The state of the text being lexed, so that a caller whose parse stopped on an
        # error of its own (not Lark's) can tell where: `lexer_state.last_token`.
        self.lexer_state: LexerState | None = None

    def _build_scan(self, state: int) -> _Scan | None:
        """The fast path of a parser state the first time the loop meets it. Lark gives
        states that accept the same terminals one lexer; they share one scan too (its
        pattern compiles once: about half as many compilations on a process's first
        parse)."""
        lexer = self.lexers[state]
        for other, known in self._scans.items():
            if self.lexers[other] is lexer:
                self._scans[state] = known
                return known
        try:
            scan = (_state_scan(lexer, self._skip, self._skipped)
                    if isinstance(lexer, BasicLexer) else None)
        except (AttributeError, TypeError):
            # A Lark release whose lexer tables look different: its own loop still works.
            scan = None
        self._scans[state] = scan
        return scan

    def lex(self, lexer_state: LexerState, parser_state: Any) -> Iterator[Token]:
        """Tokens as Lark's contextual lexer makes them."""
        self.lexer_state = lexer_state
        # Lark 1.2+ hands the text over as a TextSlice; older releases as a str.
        source: Any = lexer_state.text
        text: str = getattr(source, "text", source)
        end: int = getattr(source, "end", len(text))
        counter = lexer_state.line_ctr
        scans = self._scans
        slow = super().lex
        while True:
            state = parser_state.position
            scan = scans[state] if state in scans else self._build_scan(state)
            if scan is None or (match := scan.pattern.match(text, counter.char_pos, end)) is None \
                    or (kind := match.lastgroup) in scan.ignored:
                # Lark's own loop for this one token: comments, the end, and every error.
                token = next(slow(lexer_state, parser_state), None)
                if token is None:
                    return
                yield token
                continue
            assert kind is not None  # every alternative is a named group
            start, stop = match.span(kind)
            line = counter.line
            skipped = text.count("\n", counter.char_pos, start)
            if skipped:
                line += skipped
                counter.line_start_pos = text.rindex("\n", counter.char_pos, start) + 1
            column = start - counter.line_start_pos + 1
            value = text[start:stop]
            token = _new_str(Token, value)
            token.type = kind
            token.value = value
            token.start_pos = start
            token.line = line
            token.column = column
            token.end_pos = stop
            if kind in scan.newline_types and "\n" in value:
                line += value.count("\n")
                counter.line_start_pos = start + value.rindex("\n") + 1
            counter.line = line
            counter.char_pos = stop
            counter.column = stop - counter.line_start_pos + 1
            token.end_line = line
            token.end_column = counter.column
            table = scan.keywords.get(kind)
            if table is not None:
                token.type = table.get(value, kind)
            else:
                callback = scan.callbacks.get(kind)
                if callback is not None:
                    token = callback(token)
            lexer_state.last_token = token
            yield token
