"""Text to typed plan: one LALR pass with the transformer inlined (no parse tree is built).

`parse` never raises on bad input: every problem becomes a diagnostic (SP100 for syntax,
SP110 for limits and for number literals that cannot be held exactly or leave 1e-30..1e30).
Nesting depth, and the height of every expression tree, are bounded while parsing, so no
later tree walk can exhaust the stack. Line ends are `\n`, `\r\n` or a lone `\r`; every
position (diagnostics, spans, the `# noqa` table) counts lines that way.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
import unicodedata
from dataclasses import dataclass, field
from decimal import (
    Clamped,
    Decimal,
    DecimalException,
    Inexact,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
)
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast

from lark import Lark, Token, Transformer
from lark import __version__ as lark_version
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from stratplan.dsl.comments import RawComment, attach_comments, noqa_table
from stratplan.dsl.decimals import PRECISION, arithmetic, in_range
from stratplan.dsl.diagnostics import Diagnostic, error
from stratplan.dsl.lalr import LalrLoop, NoAction
from stratplan.dsl.lexer import FastContextualLexer
from stratplan.dsl.messages import (
    STARTERS,
    glued_number_message,
    lowercase_name_message,
    name_role,
    non_ascii_digit_message,
    syntax_message,
    underscore_message,
)
from stratplan.dsl.models import (
    CONDITION_KINDS,
    AllAmount,
    AnyAmount,
    AnyExpr,
    Assert,
    AssetArg,
    AtomicBlock,
    BinOp,
    BoolOp,
    Call,
    CEXTradeInstruction,
    Compare,
    Duration,
    HoldingAmount,
    HoldingEntry,
    Holdings,
    Let,
    MarketRef,
    MaxAmount,
    NameRef,
    Neg,
    Not,
    Number,
    Phase,
    Plan,
    Repeat,
    SeriesRef,
    Setting,
    SmartContractInstruction,
    Trigger,
    WalletTransferInstruction,
)
from stratplan.dsl.packagedata import data_text
from stratplan.dsl.performance import paused_gc
from stratplan.dsl.spans import Span, new_span, position
from stratplan.dsl.usercache import cache_folder, partial_path

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_EXPRESSION_DEPTH = 100
# A chain of one operator level (`1 + 2 + ... + n`, `a and b and ...`) is not nesting, but
# its tree is as deep as it is long, and every later walk recurses down it (the formatter,
# the evaluator, pydantic's serialiser, which stops at 255 levels): this bounds the number
# of operators on any path from the top of an expression to a leaf, whatever the nesting.
MAX_EXPRESSION_HEIGHT = 200
MAX_BLOCK_NESTING = 8
# Binary operators of one precedence level: a left operand of the same level continues a
# chain (`1 + 2 - 3`) rather than nesting one level deeper.
_LEVEL = {"+": 1, "-": 1, "*": 2, "/": 2, "and": 3, "or": 4}

KEYWORDS = frozenset(
    "plan use market holdings let set phase after atomic via repeat as assert else transfer "
    "from to on spot perp buy sell stake unstake supply withdraw borrow repay swap wrap unwrap "
    "flash all max limit leverage slippage and or not series trigger every when cooldown".split()
)


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


class _Abort(Exception):
    """Stops the parse with one diagnostic (a limit or a misuse the grammar allows)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _symbol(tok: Token) -> str:
    """A token's text as a plain, interned string (assets and keywords repeat a lot)."""
    return sys.intern(str(tok))


def _tok_span(tok: Token) -> Span:
    # Lark fills every position of a lexed token; `or 1` only satisfies the Optional types.
    return new_span(tok.line or 1, tok.column or 1, tok.end_line or 1, tok.end_column or 1)


def _span_of(item: Any) -> Span:
    if isinstance(item, Token):
        return _tok_span(item)
    span: Span = item.span
    return span


def _around(first: Any, last: Any) -> Span:
    return Span.join(_span_of(first), _span_of(last))


# The NUMBER terminal, its parts named (ASCII digits only: `\d` and Decimal() also take
# Bengali or fullwidth digits).
_LITERAL = re.compile(r"([0-9]+(?:_[0-9]+)*(?:\.[0-9]+(?:_[0-9]+)*)?)"
                      r"(?:[eE]([+-]?[0-9]+))?(%|bps|x)?").fullmatch
# Powers of ten a suffix scales by: `93%` = 0.93, `30bps` = 0.003, `3x` = 3.
_SUFFIX_SHIFT = {"%": -2, "bps": -4, "x": 0}
_ZERO = Decimal(0)


class LiteralError(ValueError):
    """A number literal that is not a plan number: its code (SP100, SP110) and why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _shown(text: str, limit: int = 48) -> str:
    """A literal as a message quotes it: a huge one is cut in the middle."""
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-limit // 4:]}"


def _out_of_range(text: str) -> LiteralError:
    return LiteralError("SP110", f"number {_shown(text)} is out of range (its magnitude must "
                        "be between 1e-30 and 1e30)")


def number_value(text: str) -> Decimal:
    """The exact value of a number literal, suffix applied: `93%` -> 0.93, `30bps` -> 0.003.

    Nothing is rounded, whatever the decimal context: the value is exactly what is written.
    Raises LiteralError (a ValueError) with SP100 when the text is not a literal the
    grammar accepts (ASCII digits only), and with SP110 when it has more significant digits
    than a plan number holds (decimals.PRECISION) or its value, suffix applied, leaves
    1e-30..1e30 (zero aside); the message says which.
    """
    if len(text) <= 30 and text.isascii() and text.isdigit():
        return Decimal(text)  # the common case, a plain integer: zero or in 1..1e30 - 1
    match = _LITERAL(text)
    if match is None:
        raise LiteralError("SP100", f'"{_shown(text)}" is not a number (numbers are written '
                           "with the ASCII digits 0-9, like 40_000, 0.59 or 1.5e3)")
    mantissa, exponent, suffix = match.groups()
    if "_" in mantissa:
        mantissa = mantissa.replace("_", "")
    if len(mantissa) > PRECISION:
        # The rule of decimals.exact_digits (zeros at either end carry no digit: 100 and
        # 0.001 have one), counted on the text, so a literal of a million digits is never
        # built.
        significant = len(mantissa.replace(".", "").strip("0"))
        if significant > PRECISION:
            raise LiteralError("SP110", f"number {_shown(text)} has {significant:,} "
                               f"significant digits; at most {PRECISION} can be held exactly")
    shift = _SUFFIX_SHIFT[suffix] if suffix else 0
    if exponent is not None or shift:
        if exponent is not None and len(exponent) > 12:  # beyond what Decimal can hold
            if mantissa.replace(".", "").strip("0"):
                raise _out_of_range(text)
            return _ZERO
        # Scaled by a power of ten in the text, so that no context rounds it.
        mantissa = f"{mantissa}E{int(exponent or 0) + shift}"
    value = Decimal(mantissa)
    if not value:
        # Any zero, whatever its exponent (0e999999999 is just 0).
        return value if -PRECISION <= cast(int, value.as_tuple().exponent) <= 0 else _ZERO
    adjusted = value.adjusted()  # |value| is in [10**adjusted, 10**(adjusted + 1))
    # in_range settles the edge (1e30 is in, 1.5e30 out); it computes abs() in the decimal
    # context, which would overflow far beyond the range, so the exponent settles the rest.
    if -30 <= adjusted < 30 or (adjusted == 30 and in_range(value)):
        return value
    raise _out_of_range(text)


def _signal_diagnostic(exc: DecimalException, span: Span) -> Diagnostic:
    """The diagnostic a decimal signal becomes (LANGUAGE.md sections 2 and 6): SP110 when a
    value leaves the range or cannot be held exactly, SP104 when it is not a finite number
    (a division by zero or an invalid operation, and any other signal)."""
    if isinstance(exc, (Overflow, Underflow, Subnormal, Clamped)):
        return error("SP110", "a number is out of range (its magnitude must be between "
                     "1e-30 and 1e30)", span)
    if isinstance(exc, Inexact | Rounded):
        return error("SP110", f"a number cannot be held exactly with {PRECISION} "
                     "significant digits", span)
    return error("SP104", "a number is not finite (a division by zero, or an operation "
                 "with no finite result)", span)


_LEAF = (1, 0)  # (nesting depth, operators below) of a leaf expression


class _Builder(Transformer[Token, Any]):
    """Inline LALR callbacks: tokens and children to models (`keep_all_tokens` is on)."""

    def __init__(self) -> None:
        super().__init__()
        # id(expression) -> (nesting depth, height in operators); leaves are absent: _LEAF.
        self.depth: dict[int, tuple[int, int]] = {}
        self.grouped: set[int] = set()  # ids of expressions written in parentheses
        self.nesting: dict[int, int] = {}
        # Number literals seen in this text: the same literal shares its text and value
        # (Decimal is immutable). Plans repeat their amounts; a Decimal is 104 bytes.
        self.literals: dict[str, tuple[str, Decimal]] = {}

    def reset(self) -> None:
        self.depth.clear()
        self.grouped.clear()
        self.nesting.clear()
        self.literals.clear()

    # --- helpers ----------------------------------------------------------------------
    @staticmethod
    def _name(tok: Token) -> str:
        # Keywords may name things where the contextual lexer allows it (`phase spot`,
        # `atomic leverage`), as the language's own examples do. Interned: a large plan
        # repeats the same few venue names hundreds of thousands of times.
        return sys.intern(str(tok.value))

    def _expr(self, node: Any, *children: Any) -> Any:
        depths = self.depth
        depth, height = 1, 0
        for child in children:
            child_depth, child_height = depths.get(id(child), _LEAF)
            depth = max(depth, child_depth + 1)
            height = max(height, child_height + 1)
        return self._measured(node, depth, height)

    def _chain(self, node: Any, left: Any, right: Any) -> Any:
        """A binary operator: a left operand of its own precedence level, not in
        parentheses, continues a chain (`1 + 2 + 3`) and adds no nesting depth."""
        depths = self.depth
        left_depth, left_height = depths.get(id(left), _LEAF)
        right_depth, right_height = depths.get(id(right), _LEAF)
        if left.kind != node.kind or _LEVEL[left.op] != _LEVEL[node.op] \
                or id(left) in self.grouped:
            left_depth += 1
        return self._measured(node, max(left_depth, right_depth + 1),
                              max(left_height, right_height) + 1)

    def _measured(self, node: Any, depth: int, height: int) -> Any:
        if depth > MAX_EXPRESSION_DEPTH:
            raise _Abort(error("SP110", f"expression nested more than {MAX_EXPRESSION_DEPTH} "
                               "levels deep", node.span, help="split it with `let` constants"))
        if height > MAX_EXPRESSION_HEIGHT:
            raise _Abort(error("SP110", f"expression more than {MAX_EXPRESSION_HEIGHT} "
                               "operations long", node.span,
                               help="split it with `let` constants"))
        self.depth[id(node)] = (depth, height)
        return node

    def _value(self, expr: Any, what: str = "an amount") -> Any:
        if expr.kind in CONDITION_KINDS:
            raise _Abort(error("SP100", f"expected {what}, found a condition", expr.span,
                               help="comparisons and and/or/not belong in `assert`"))
        return expr

    def _condition(self, expr: Any) -> Any:
        if expr.kind not in CONDITION_KINDS:
            raise _Abort(error("SP100", "expected a condition (a comparison such as "
                               "`health(aave) >= 1.05`), found a value", expr.span))
        return expr

    def _plain_number(self, tok: Token, *, allow_x: bool = False) -> Number:
        text = str(tok.value)
        span = _tok_span(tok)
        if text.endswith("x") and not allow_x:
            raise _Abort(error("SP100", 'the "x" suffix is only allowed after `leverage`', span))
        if allow_x and (text.endswith("%") or text.endswith("bps")):
            raise _Abort(error("SP100", "expected a leverage such as 3x", span))
        known = self.literals.get(text)
        if known is None:
            try:
                known = self.literals[text] = (text, number_value(text))
            except LiteralError as problem:
                raise _Abort(error(problem.code, problem.message, span)) from None
            except DecimalException as signal:
                raise _Abort(_signal_diagnostic(signal, span)) from None
        return Number(value=known[1], text=known[0], span=span)

    def _block_nesting(self, node: Any, body: tuple[Any, ...]) -> Any:
        level = 1 + max((self.nesting.get(id(s), 0) for s in body), default=0)
        if level > MAX_BLOCK_NESTING:
            raise _Abort(error("SP110", f"blocks nested more than {MAX_BLOCK_NESTING} deep",
                               node.span))
        self.nesting[id(node)] = level
        return node

    @staticmethod
    def _string(tok: Token) -> str:
        raw = str(tok.value)[1:-1]
        return raw.replace('\\"', '"').replace("\\\\", "\\") if "\\" in raw else raw

    # --- file structure ---------------------------------------------------------------
    def start(self, ch: list[Any]) -> Plan:
        decl = ch[0]
        plan_fields: dict[str, Any] = {"market": None, "series": None, "holdings": None}
        lets: list[Let] = []
        sets: list[Setting] = []
        phases: list[Phase] = []
        triggers: list[Trigger] = []
        for item in ch[1:]:
            if isinstance(item, (MarketRef, SeriesRef, Holdings)):
                field = "market" if isinstance(item, MarketRef) else \
                    "series" if isinstance(item, SeriesRef) else "holdings"
                if plan_fields[field] is not None:
                    what = {"market": "use market", "series": "use series"}.get(field, field)
                    raise _Abort(error("SP100", f"a plan has at most one `{what}`; the first "
                                       f"is at line {plan_fields[field].span.line}",
                                       item.span))
                plan_fields[field] = item
            elif isinstance(item, Let):
                lets.append(item)
            elif isinstance(item, Setting):
                sets.append(item)
            elif isinstance(item, Trigger):
                triggers.append(item)
            else:
                phases.append(item)
        if not phases:
            raise _Abort(error("SP100", "a plan needs at least one phase; triggers run after "
                               "the phases", triggers[0].span))
        last = max((*phases, *triggers), key=lambda item: (item.span.end_line,
                                                          item.span.end_column))
        return Plan(
            name=decl[0], description=decl[1], lets=tuple(lets), sets=tuple(sets),
            phases=tuple(phases), triggers=tuple(triggers),
            span=Span.join(decl[2], last.span), leading=(),
            trailing=None, end_comments=(), **plan_fields)

    def plan_decl(self, ch: list[Any]) -> tuple[str, str | None, Span]:
        desc = self._string(ch[2]) if len(ch) > 2 else None
        return self._name(ch[1]), desc, _around(ch[0], ch[-1])

    def use_market(self, ch: list[Any]) -> MarketRef:
        return MarketRef(path=self._string(ch[2]), span=_around(ch[0], ch[-1]),
                                         leading=(), trailing=None)

    def use_series(self, ch: list[Any]) -> SeriesRef:
        return SeriesRef(path=self._string(ch[2]), span=_around(ch[0], ch[-1]),
                       leading=(), trailing=None)

    def holdings(self, ch: list[Any]) -> Holdings:
        return Holdings(entries=tuple(ch[2:-1]), span=_around(ch[0], ch[-1]),
                                        leading=(), trailing=None, end_comments=())

    def holding(self, ch: list[Any]) -> HoldingEntry:
        amounts = tuple(c for c in ch[2:] if isinstance(c, HoldingAmount))
        return HoldingEntry(venue=self._name(ch[0]), amounts=amounts,
                                            span=_around(ch[0], ch[-1]), leading=(),
                                            trailing=None)

    def holding_amount(self, ch: list[Any]) -> HoldingAmount:
        return HoldingAmount(amount=ch[0], asset=_symbol(ch[1]),
                                             span=_around(ch[0], ch[1]))

    def let_stmt(self, ch: list[Any]) -> Let:
        return Let(name=self._name(ch[1]), value=self._value(ch[3], "a value"),
                                   span=_around(ch[0], ch[3]), leading=(), trailing=None)

    def set_stmt(self, ch: list[Any]) -> Setting:
        return Setting(name=self._name(ch[1]),
                                       value=self._value(ch[3], "a value"),
                                       span=_around(ch[0], ch[3]), leading=(), trailing=None)

    def phase(self, ch: list[Any]) -> Phase:
        after: tuple[str, ...] = ()
        rest = ch[2:]
        if rest and isinstance(rest[0], tuple):
            after, rest = rest[0], rest[1:]
        body = tuple(rest[1:-1])
        return Phase(name=self._name(ch[1]), after=after, body=body,
                                     span=_around(ch[0], ch[-1]), leading=(), trailing=None,
                                     end_comments=())

    def trigger(self, ch: list[Any]) -> Trigger:
        kind, first, cooldown = ch[2]
        body = tuple(ch[4:-1])
        fields: dict[str, Any] = {"every": first, "when": None, "cooldown": None} \
            if kind == "every" else {"every": None, "when": first, "cooldown": cooldown}
        node = Trigger(name=self._name(ch[1]), body=body, span=_around(ch[0], ch[-1]),
                       leading=(), trailing=None, end_comments=(), **fields)
        return node

    def every(self, ch: list[Any]) -> tuple[str, Duration, None]:
        return "every", self._duration(ch[1]), None

    def when(self, ch: list[Any]) -> tuple[str, Any, Duration | None]:
        return "when", self._condition(ch[1]), ch[2] if len(ch) > 2 else None

    def cooldown(self, ch: list[Any]) -> Duration:
        return self._duration(ch[1])

    def _duration(self, tok: Token) -> Duration:
        text = str(tok.value)
        span = _tok_span(tok)
        try:
            # The number rules of section 2 (exact, in 1e-30..1e30), without a suffix.
            value = number_value(text[:-1])
        except LiteralError as exc:
            raise _Abort(error(exc.code, f"duration {_shown(text)}: {exc.message}",
                               span)) from None
        unit = cast(Literal["s", "m", "h", "d", "w"], text[-1])  # the terminal's last letter
        return Duration(value=value, unit=unit, text=text, span=span)

    def after(self, ch: list[Any]) -> tuple[str, ...]:
        return tuple(self._name(t) for t in ch[1::2])

    def atomic(self, ch: list[Any]) -> AtomicBlock:
        via = None
        rest = ch[2:]
        if rest and isinstance(rest[0], str) and not isinstance(rest[0], Token):
            via, rest = rest[0], rest[1:]
        body = tuple(rest[1:-1])
        node = AtomicBlock(name=self._name(ch[1]), via=via, body=body,
                                           span=_around(ch[0], ch[-1]), leading=(),
                                           trailing=None, end_comments=())
        return self._block_nesting(node, body)

    def via(self, ch: list[Any]) -> str:
        return self._name(ch[1])

    def repeat(self, ch: list[Any]) -> Repeat:
        count = self._value(ch[1], "a repeat count")
        var = None
        rest = ch[2:]
        if rest and isinstance(rest[0], str) and not isinstance(rest[0], Token):
            var, rest = rest[0], rest[1:]
        body = tuple(rest[1:-1])
        node = Repeat(count=count, var=var, body=body,
                                      span=_around(ch[0], ch[-1]), leading=(), trailing=None,
                                      end_comments=())
        return self._block_nesting(node, body)

    def loop_var(self, ch: list[Any]) -> str:
        return self._name(ch[1])

    def assert_stmt(self, ch: list[Any]) -> Assert:
        message = ch[2][0] if len(ch) > 2 else None
        last = ch[2][1] if len(ch) > 2 else ch[1]
        return Assert(condition=self._condition(ch[1]), message=message,
                                      span=_around(ch[0], last), leading=(), trailing=None)

    def else_msg(self, ch: list[Any]) -> tuple[str, Token]:
        return self._string(ch[1]), ch[1]

    # --- instructions -----------------------------------------------------------------
    def transfer(self, ch: list[Any]) -> WalletTransferInstruction:
        return WalletTransferInstruction(
            amount=ch[1], token=_symbol(ch[2]), source_venue=self._name(ch[4]),
            target_venue=self._name(ch[6]), span=_around(ch[0], ch[6]), leading=(),
            trailing=None)

    def _trade(self, ch: list[Any], market: str) -> CEXTradeInstruction:
        extra: dict[str, Any] = {"limit": None, "leverage": None}
        if len(ch) > 6:
            extra[ch[6][0]] = ch[6][1]
        base, quote = ch[3]
        return CEXTradeInstruction(
            market=cast(Any, market), side=cast(Any, _symbol(ch[1])), amount=ch[2], base=base, quote=quote,
            venue=self._name(ch[5]), span=_around(ch[0], ch[-1] if len(ch) <= 6 else ch[6][2]),
            leading=(), trailing=None, **extra)

    def spot(self, ch: list[Any]) -> CEXTradeInstruction:
        return self._trade(ch, "spot")

    def perp(self, ch: list[Any]) -> CEXTradeInstruction:
        return self._trade(ch, "perp")

    def side(self, ch: list[Any]) -> Token:
        return ch[0]

    def pair(self, ch: list[Any]) -> tuple[str, str]:
        return _symbol(ch[0]), _symbol(ch[2])

    def limit(self, ch: list[Any]) -> tuple[str, Any, Any]:
        return "limit", self._value(ch[1], "a limit price"), ch[1]

    def leverage(self, ch: list[Any]) -> tuple[str, Any, Any]:
        return "leverage", self._plain_number(ch[1], allow_x=True), ch[1]

    def _op(self, operation: str, ch: list[Any], amount: Any, token_in: Token,
            token_out: Any = None, venue: Any = None, slippage: Any = None,
            last: Any = None) -> SmartContractInstruction:
        return SmartContractInstruction(
            operation=cast(Any, operation), amount=amount, token_in=_symbol(token_in),
            token_out=None if token_out is None else _symbol(token_out),
            venue=None if venue is None else self._name(venue), slippage=slippage,
            span=_around(ch[0], last if last is not None else ch[-1]), leading=(),
            trailing=None)

    def stake(self, ch: list[Any]) -> SmartContractInstruction:
        return self._op("stake", ch, ch[1], ch[2], token_out=ch[6], venue=ch[4])

    def unstake(self, ch: list[Any]) -> SmartContractInstruction:
        return self._op("unstake", ch, ch[1], ch[2], token_out=ch[6], venue=ch[4])

    def supply(self, ch: list[Any]) -> SmartContractInstruction:
        return self._op("supply", ch, ch[1], ch[2], venue=ch[4])

    def withdraw(self, ch: list[Any]) -> SmartContractInstruction:
        return self._op("withdraw", ch, ch[1], ch[2], venue=ch[4])

    def borrow(self, ch: list[Any]) -> SmartContractInstruction:
        return self._op("borrow", ch, ch[1], ch[2], venue=ch[4])

    def repay(self, ch: list[Any]) -> SmartContractInstruction:
        return self._op("repay", ch, ch[1], ch[2], venue=ch[4])

    def swap(self, ch: list[Any]) -> SmartContractInstruction:
        slippage = ch[7][1] if len(ch) > 7 else None
        last = ch[7][2] if len(ch) > 7 else ch[6]
        return self._op("swap", ch, ch[1], ch[2], token_out=ch[4], venue=ch[6],
                        slippage=slippage, last=last)

    def slippage(self, ch: list[Any]) -> tuple[str, Any, Any]:
        return "slippage", self._value(ch[1], "a slippage"), ch[1]

    def wrap(self, ch: list[Any]) -> SmartContractInstruction:
        return self._op("wrap", ch, ch[1], ch[2])

    def unwrap(self, ch: list[Any]) -> SmartContractInstruction:
        return self._op("unwrap", ch, ch[1], ch[2])

    def flash_borrow(self, ch: list[Any]) -> SmartContractInstruction:
        return self._op("flash_borrow", ch, ch[2], ch[3], venue=ch[5])

    def flash_repay(self, ch: list[Any]) -> SmartContractInstruction:
        return self._op("flash_repay", ch, ch[2], ch[3], venue=ch[5])

    def amount(self, ch: list[Any]) -> AnyAmount:
        item = ch[0]
        if isinstance(item, Token):
            if item.type == "ALL":
                return AllAmount(span=_tok_span(item))
            return MaxAmount(span=_tok_span(item))
        result: AnyAmount = self._value(item)
        return result

    # --- expressions ------------------------------------------------------------------
    def number(self, ch: list[Any]) -> Number:
        return self._plain_number(ch[0])

    def name(self, ch: list[Any]) -> NameRef:
        return NameRef(name=self._name(ch[0]), span=_tok_span(ch[0]))

    def asset_arg(self, ch: list[Any]) -> AssetArg:
        return AssetArg(symbol=_symbol(ch[0]), span=_tok_span(ch[0]))

    def call(self, ch: list[Any]) -> Call:
        args = tuple(self._value(c, "an argument") for c in ch[2:-1]
                     if c is not None and not isinstance(c, Token))
        node = Call(func=self._name(ch[0]), args=args,
                                    span=_around(ch[0], ch[-1]))
        return self._expr(node, *args)

    def group(self, ch: list[Any]) -> AnyExpr:
        inner: AnyExpr = ch[1]
        depth, height = self.depth.get(id(inner), _LEAF)
        if depth + 1 > MAX_EXPRESSION_DEPTH:
            raise _Abort(error("SP110", f"expression nested more than {MAX_EXPRESSION_DEPTH} "
                               "levels deep", _around(ch[0], ch[-1])))
        self.depth[id(inner)] = (depth + 1, height)
        self.grouped.add(id(inner))
        return inner

    def neg(self, ch: list[Any]) -> Neg:
        operand = self._value(ch[1], "a number")
        return self._expr(Neg(operand=operand, span=_around(ch[0], ch[1])),
                          operand)

    def _binop(self, ch: list[Any]) -> BinOp:
        left, right = self._value(ch[0], "a number"), self._value(ch[2], "a number")
        node = BinOp(op=cast(Any, str(ch[1])), left=left, right=right,
                                     span=_around(left, right))
        return self._chain(node, left, right)

    add = sub = mul = div = _binop

    def cmp(self, ch: list[Any]) -> Token:
        return ch[0]

    def compare_op(self, ch: list[Any]) -> Compare:
        left, right = self._value(ch[0], "a number"), self._value(ch[2], "a number")
        node = Compare(op=cast(Any, str(ch[1])), left=left, right=right,
                                       span=_around(left, right))
        return self._expr(node, left, right)

    def _boolop(self, ch: list[Any]) -> BoolOp:
        left, right = self._condition(ch[0]), self._condition(ch[2])
        node = BoolOp(op=cast(Any, str(ch[1])), left=left, right=right,
                                      span=_around(left, right))
        return self._chain(node, left, right)

    or_op = and_op = _boolop

    def not_op(self, ch: list[Any]) -> Not:
        operand = self._condition(ch[1])
        return self._expr(Not(operand=operand, span=_around(ch[0], operand)),
                          operand)


_LOCK = threading.Lock()
_BUILDER = _Builder()
_COMMENTS: list[RawComment] = []


@cache
def grammar_text() -> str:
    """The grammar shipped inside the installed package."""
    return data_text("stratplan.grammar", "plan.lark")


def _lark_options() -> dict[str, Any]:
    return {
        "parser": "lalr", "lexer": "contextual", "keep_all_tokens": True,
        "maybe_placeholders": True, "transformer": _BUILDER,
        "_plugins": {"ContextualLexer": FastContextualLexer},
        "lexer_callbacks": {"COMMENT": lambda tok: _COMMENTS.append(
            RawComment(tok.line, tok.column, str(tok.value).rstrip()))},
    }


def grammar_cache_path(grammar: str) -> Path | None:
    """Where the analysed grammar is kept between processes: the user's cache folder
    ($XDG_CACHE_HOME/stratplan, else ~/.cache/stratplan), one file per grammar text, Lark
    release and Python version; None when STRATPLAN_GRAMMAR_CACHE=0."""
    if os.environ.get("STRATPLAN_GRAMMAR_CACHE") == "0":
        return None
    key = hashlib.sha256("\0".join([grammar, lark_version, sys.version]).encode()).hexdigest()
    return cache_folder() / f"grammar-{key[:24]}.lark"


def build_lark(cache_path: Path | None) -> Lark:
    """The parser. Building Lark's LALR tables from the grammar takes about 0.1 s, longer
    than everything else a small lint does, so the built parser is kept in `cache_path`
    (Lark's own cache: the file starts with the SHA-256 of the grammar and Lark's options,
    checked on load; a stale or damaged file is rebuilt). The file is written beside its
    final name and renamed, so a concurrent process never reads half of it; a folder that
    cannot be written only costs the build. The transformer, the lexer plugin and the
    comment callback are not in the file: they are attached on load."""
    text = grammar_text()
    if cache_path is None:
        lark = Lark(text, cache=False, **_lark_options())
    elif cache_path.is_file():
        lark = Lark(text, cache=str(cache_path), **_lark_options())
    else:
        partial: Path | None = partial_path(cache_path)
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            partial = None
        lark = Lark(text, cache=str(partial) if partial else False, **_lark_options())
        if partial is not None:
            try:
                os.replace(partial, cache_path)
            except OSError:  # Lark could not write it: parse without a cache
                partial.unlink(missing_ok=True)
    # Lark's grammar loader leaves rule names as Tokens (a str subclass whose `==` is
    # Python code); the LALR loop looks up the next state by that name after every
    # reduction. Equal plain strings make that lookup C-fast (about 5% of a parse).
    for rule in lark.rules:
        rule.origin.name = str(rule.origin.name)
    return lark


@cache
def _lark() -> Lark:
    return build_lark(grammar_cache_path(grammar_text()))


@cache
def _lark_for_errors() -> Lark:
    # A tree-building twin, used only to re-lex text when explaining a syntax error.
    return Lark(grammar_text(), parser="lalr", lexer="basic")


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
        _BUILDER.reset()
        _COMMENTS.clear()
        lark = _lark()
        try:
            plan = cast(Plan, _parse_text(lark, lark_text))
            comments = list(_COMMENTS)
        except _Abort as abort:
            return ParseResult(None, [_pathed(abort.diagnostic, path)], source=text)
        except UnexpectedInput as exc:
            diagnostic = _syntax_error(lark_text, exc)
            return ParseResult(None, [_pathed(diagnostic, path)], source=text)
        except DecimalException as exc:
            diagnostic = _signal_diagnostic(exc, _last_token_span(lark))
            return ParseResult(None, [_pathed(diagnostic, path)], source=text)
        except (LarkError, RecursionError, MemoryError) as exc:
            diagnostic = error("SP100", f"cannot parse the plan: {type(exc).__name__}",
                               Span(line=1, column=1, end_line=1, end_column=1))
            return ParseResult(None, [_pathed(diagnostic, path)], source=text)
        finally:
            _BUILDER.reset()
            _COMMENTS.clear()
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
        _BUILDER.reset()
        _COMMENTS.clear()
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
    return _tok_span(token) if isinstance(token, Token) else \
        Span(line=1, column=1, end_line=1, end_column=1)


def _forget_text(lark: Lark) -> None:
    """Drop the lexer's hold on the last text (up to 16 MiB) once the parse is over."""
    lexer = getattr(lark.parser, "lexer", None)
    if isinstance(lexer, FastContextualLexer):
        lexer.lexer_state = None


def _pathed(diagnostic: Diagnostic, path: str | None) -> Diagnostic:
    return diagnostic.with_path(path) if path else diagnostic


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


def _syntax_error(text: str, exc: UnexpectedInput) -> Diagnostic:
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

