"""The tree builder: Lark's inline LALR callbacks, tokens and children to typed models.

No parse tree is built: `BUILDER` is handed to Lark as its transformer, and each rule's
callback makes its model as soon as the rule is reduced. Nesting depth, and the height of
every expression tree, are bounded here (SP110), so no later tree walk can exhaust the
stack; a limit or a misuse the grammar allows stops the parse with `Abort`. The lexer hands
every comment to `COMMENTS` while the parse runs. `BUILDER` and `COMMENTS` are the one
transformer and comment list of the process: `parser.parse` uses them under its lock.
"""

from __future__ import annotations

import sys
from decimal import Decimal, DecimalException
from typing import Any, Literal, cast

from lark import Token, Transformer

from stratplan.dsl.comments import RawComment
from stratplan.dsl.diagnostics import Diagnostic, error
from stratplan.dsl.durations import DurationError, value_ms
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
from stratplan.dsl.numbers import LiteralError, number_value, shown_literal, signal_diagnostic
from stratplan.dsl.spans import Span, new_span

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


class Abort(Exception):
    """Stops the parse with one diagnostic (a limit or a misuse the grammar allows)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _symbol(tok: Token) -> str:
    """A token's text as a plain, interned string (assets and keywords repeat a lot)."""
    return sys.intern(str(tok))


def tok_span(tok: Token) -> Span:
    # Lark fills every position of a lexed token; `or 1` only satisfies the Optional types.
    return new_span(tok.line or 1, tok.column or 1, tok.end_line or 1, tok.end_column or 1)


def _span_of(item: Any) -> Span:
    if isinstance(item, Token):
        return tok_span(item)
    span: Span = item.span
    return span


def _around(first: Any, last: Any) -> Span:
    return Span.join(_span_of(first), _span_of(last))

_LEAF = (1, 0)  # (nesting depth, operators below) of a leaf expression


class Builder(Transformer[Token, Any]):
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
            raise Abort(error("SP110", f"expression nested more than {MAX_EXPRESSION_DEPTH} "
                               "levels deep", node.span, help="split it with `let` constants"))
        if height > MAX_EXPRESSION_HEIGHT:
            raise Abort(error("SP110", f"expression more than {MAX_EXPRESSION_HEIGHT} "
                               "operations long", node.span,
                               help="split it with `let` constants"))
        self.depth[id(node)] = (depth, height)
        return node

    def _value(self, expr: Any, what: str = "an amount") -> Any:
        if expr.kind in CONDITION_KINDS:
            raise Abort(error("SP100", f"expected {what}, found a condition", expr.span,
                               help="comparisons and and/or/not belong in `assert`"))
        return expr

    def _condition(self, expr: Any) -> Any:
        if expr.kind not in CONDITION_KINDS:
            raise Abort(error("SP100", "expected a condition (a comparison such as "
                               "`health(aave) >= 1.05`), found a value", expr.span))
        return expr

    def _plain_number(self, tok: Token, *, allow_x: bool = False) -> Number:
        text = str(tok.value)
        span = tok_span(tok)
        if text.endswith("x") and not allow_x:
            raise Abort(error("SP100", 'the "x" suffix is only allowed after `leverage`', span))
        if allow_x and (text.endswith("%") or text.endswith("bps")):
            raise Abort(error("SP100", "expected a leverage such as 3x", span))
        known = self.literals.get(text)
        if known is None:
            try:
                known = self.literals[text] = (text, number_value(text))
            except LiteralError as problem:
                raise Abort(error(problem.code, problem.message, span)) from None
            except DecimalException as signal:
                raise Abort(signal_diagnostic(signal, span)) from None
        return Number(value=known[1], text=known[0], span=span)

    def _block_nesting(self, node: Any, body: tuple[Any, ...]) -> Any:
        level = 1 + max((self.nesting.get(id(s), 0) for s in body), default=0)
        if level > MAX_BLOCK_NESTING:
            raise Abort(error("SP110", f"blocks nested more than {MAX_BLOCK_NESTING} deep",
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
                    raise Abort(error("SP100", f"a plan has at most one `{what}`; the first "
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
            raise Abort(error("SP100", "a plan needs at least one phase; triggers run after "
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
        span = tok_span(tok)
        try:
            # The number rules of section 2 (exact, in 1e-30..1e30), without a suffix.
            value = number_value(text[:-1])
        except LiteralError as exc:
            raise Abort(error(exc.code, f"duration {shown_literal(text)}: {exc.message}",
                               span)) from None
        unit = cast(Literal["s", "m", "h", "d", "w"], text[-1])  # the terminal's last letter
        if value > 0:  # zero is SP104 of the rules, with the plan's other diagnostics
            try:
                value_ms(value, unit, text)  # a whole number of milliseconds (dsl/durations)
            except DurationError as exc:
                raise Abort(error(exc.code, exc.message, span)) from None
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
                return AllAmount(span=tok_span(item))
            return MaxAmount(span=tok_span(item))
        result: AnyAmount = self._value(item)
        return result

    # --- expressions ------------------------------------------------------------------
    def number(self, ch: list[Any]) -> Number:
        return self._plain_number(ch[0])

    def name(self, ch: list[Any]) -> NameRef:
        return NameRef(name=self._name(ch[0]), span=tok_span(ch[0]))

    def asset_arg(self, ch: list[Any]) -> AssetArg:
        return AssetArg(symbol=_symbol(ch[0]), span=tok_span(ch[0]))

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
            raise Abort(error("SP110", f"expression nested more than {MAX_EXPRESSION_DEPTH} "
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


BUILDER = Builder()
COMMENTS: list[RawComment] = []
