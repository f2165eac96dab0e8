"""A faster loop over Lark's own LALR tables, for plans that parse.

Lark's `ParserState.feed_token` is a general loop: every reduction slices the value
stack, looks its callback up by `Rule` (whose `__hash__` and `__eq__` are Python code) and
calls it, even for the rules of the expression ladder (`?sum: product`, `?product: unary`,
...) whose callback only hands its single child back. A bare amount such as `0.5` climbs
the whole ladder: about half of all reductions of a plan are such unit steps.

`LalrLoop` reads the same tables once into plain tuples keyed by state and symbol, and
replaces a unit step of an inlined (`?`) rule by the goto it amounts to, without calling
anything. Everything else (the callbacks, the lexer, the order of calls) is Lark's. The
grammar stays the one definition of the language: nothing here knows a rule by name.

The loop only handles plans that parse. When the next token has no action, it raises
`NoAction` and the caller parses the text again with Lark's own loop, so every syntax
error (its token, expected set, interactive parser and position) is Lark's, unchanged.
Tests compare the two loops on generated, edited and arbitrary text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any

from lark import Lark, Token
from lark.lexer import LexerState, LexerThread

# Lark internals the loop reads; without them `LalrLoop` refuses (AttributeError) and the
# parser keeps Lark's own loop, with the same results (issue 22, item 6).
ExpandSingleChild: Any
Shift: Any
try:
    from lark.parse_tree_builder import ExpandSingleChild
    from lark.parsers.lalr_analysis import Shift
except ImportError:
    ExpandSingleChild = Shift = None

# The three kinds of table entry. A shift holds its next state and the terminal's
# callback (None if none); a reduce holds the rule's size, callback and the nonterminal
# it makes; a unit step holds the nonterminal only.
SHIFT, REDUCE, UNIT = 0, 1, 2


class NoAction(Exception):
    """The next token has no action in the current state: a syntax error (Lark reports it)."""


class _Position:
    """What the contextual lexer asks of the parser: the state on top of the stack."""

    __slots__ = ("stack",)

    def __init__(self, stack: list[int]) -> None:
        self.stack = stack

    @property
    def position(self) -> int:
        return self.stack[-1]


def _is_unit(rule: Any, callback: Callable[[list[Any]], Any]) -> bool:
    """True when reducing `rule` only hands its one child back (an inlined `?` rule)."""
    if len(rule.expansion) != 1 or rule.alias or not rule.options.expand1:
        return False
    if not isinstance(callback, ExpandSingleChild):
        return False
    probe = object()
    return callback([probe]) is probe


class LalrLoop:
    """Lark's LALR tables as tuples, driven without a call per unit step."""

    def __init__(self, lark: Lark) -> None:
        if Shift is None or ExpandSingleChild is None:
            raise AttributeError("this Lark's LALR internals are not the ones the loop reads")
        frontend: Any = lark.parser
        parser = frontend.parser.parser
        table = parser.parse_table
        callbacks = parser.callbacks
        (start,) = frontend.parser_conf.start
        self.lark = lark
        self.start_state: int = table.start_states[start]
        self.end_state: int = table.end_states[start]
        rules: dict[Any, tuple[Any, ...]] = {}
        self.states: dict[int, dict[str, tuple[Any, ...]]] = {}
        for state, actions in table.states.items():
            row: dict[str, tuple[Any, ...]] = {}
            for symbol, (action, arg) in actions.items():
                if action is Shift:
                    row[symbol] = (SHIFT, arg, callbacks.get(symbol))
                    continue
                entry = rules.get(arg)
                if entry is None:
                    callback = callbacks[arg]
                    origin = str(arg.origin.name)
                    entry = rules[arg] = ((UNIT, origin) if _is_unit(arg, callback)
                                          else (REDUCE, len(arg.expansion), callback, origin))
                row[symbol] = entry
            self.states[state] = row
        self.unit_rules = sum(1 for entry in rules.values() if entry[0] == UNIT)

    def parse(self, text: str) -> Any:
        """What `lark.parse(text)` returns, for a text that parses; `NoAction` otherwise
        (also raises whatever the callbacks or the lexer raise, as Lark's loop would)."""
        states = self.states
        end_state = self.end_state
        stack = [self.start_state]
        values: list[Any] = []
        frontend: Any = self.lark.parser
        thread = LexerThread.from_text(frontend.lexer, text)
        for token in chain(thread.lex(_Position(stack)), _end_after(thread.state)):
            kind = token.type
            while True:
                entry = states[stack[-1]].get(kind)
                if entry is None:
                    raise NoAction(kind)
                op = entry[0]
                if op == SHIFT:  # never on `$END`: Lark's tables reduce there
                    stack.append(entry[1])
                    values.append(token if entry[2] is None else entry[2](token))
                    break
                if op == UNIT:
                    # The value stays where it is; only the state under it changes.
                    stack[-1] = states[stack[-2]][entry[1]][1]
                else:
                    size = entry[1]
                    if size:
                        children = values[-size:]
                        del stack[-size:]
                        del values[-size:]
                    else:
                        children = []
                    values.append(entry[2](children))
                    stack.append(states[stack[-1]][entry[3]][1])
                # Only a reduction on `$END` reaches the end state (the start rule is
                # followed by nothing else): Lark checks there, after every reduction.
                if stack[-1] == end_state:
                    return values[-1]
        raise NoAction("$END")


def _end_after(state: LexerState | None) -> Iterator[Token]:
    """The `$END` token, made as Lark makes it once the lexer has no more tokens: at the
    position of the last token the lexer handed out (which the lexer keeps)."""
    last = state.last_token if state is not None else None
    yield Token.new_borrow_pos("$END", "", last) if last else Token("$END", "", 0, 1, 1)
