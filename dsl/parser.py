"""Text to typed plan: one LALR pass with the transformer inlined (no parse tree is built).

`parse` never raises on bad input: every problem becomes a diagnostic (SP100 for syntax,
SP110 for limits). Nesting depth is bounded while parsing, so no later tree walk can
exhaust the stack.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any, cast

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from stratplan.dsl.comments import RawComment, attach_comments, noqa_table
from stratplan.dsl.diagnostics import Diagnostic, error
from stratplan.dsl.lexer import FastContextualLexer
from stratplan.dsl.messages import STARTERS, syntax_message
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
    Setting,
    SmartContractInstruction,
    WalletTransferInstruction,
)
from stratplan.dsl.performance import paused_gc
from stratplan.dsl.spans import Span, trusted

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_EXPRESSION_DEPTH = 100
MAX_BLOCK_NESTING = 8
MAX_NUMBER_EXPONENT = 30

KEYWORDS = frozenset(
    "plan use market holdings let set phase after atomic via repeat as assert else transfer "
    "from to on spot perp buy sell stake unstake supply withdraw borrow repay swap wrap unwrap "
    "flash all max limit leverage slippage and or not".split()
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
    return trusted(Span, line=tok.line or 1, column=tok.column or 1,
                                end_line=tok.end_line or 1, end_column=tok.end_column or 1)


def _span_of(item: Any) -> Span:
    if isinstance(item, Token):
        return _tok_span(item)
    span: Span = item.span
    return span


def _around(first: Any, last: Any) -> Span:
    return Span.join(_span_of(first), _span_of(last))


def number_value(text: str) -> Decimal:
    """The value of a number literal, suffix applied: `93%` -> 0.93, `30bps` -> 0.003."""
    body, scale = text, Decimal(1)
    if body.endswith("%"):
        body, scale = body[:-1], Decimal("0.01")
    elif body.endswith("bps"):
        body, scale = body[:-3], Decimal("0.0001")
    elif body.endswith("x"):
        body = body[:-1]
    return Decimal(body.replace("_", "")) * scale


class _Builder(Transformer[Token, Any]):
    """Inline LALR callbacks: tokens and children to models (`keep_all_tokens` is on)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth: dict[int, int] = {}
        self.nesting: dict[int, int] = {}

    def reset(self) -> None:
        self.depth.clear()
        self.nesting.clear()

    # --- helpers ----------------------------------------------------------------------
    @staticmethod
    def _name(tok: Token) -> str:
        # Keywords may name things where the contextual lexer allows it (`phase spot`,
        # `atomic leverage`), as the language's own examples do. Interned: a large plan
        # repeats the same few venue names hundreds of thousands of times.
        return sys.intern(str(tok.value))

    def _expr(self, node: Any, *children: Any) -> Any:
        depth = 1 + max((self.depth.get(id(c), 1) for c in children), default=0)
        if depth > MAX_EXPRESSION_DEPTH:
            raise _Abort(error("SP110", f"expression nested more than {MAX_EXPRESSION_DEPTH} "
                               "levels deep", node.span, help="split it with `let` constants"))
        self.depth[id(node)] = depth
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
        try:
            value = number_value(text)
        except (InvalidOperation, ValueError):
            raise _Abort(error("SP100", f'"{text}" is not a number', span)) from None
        if value and value.adjusted() > MAX_NUMBER_EXPONENT:
            raise _Abort(error("SP110", f"number {text} is out of range (above 1e"
                               f"{MAX_NUMBER_EXPONENT})", span))
        return trusted(Number, value=value, text=text, span=span)

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
        plan_fields: dict[str, Any] = {"market": None, "holdings": None}
        lets: list[Let] = []
        sets: list[Setting] = []
        phases: list[Phase] = []
        for item in ch[1:]:
            if isinstance(item, (MarketRef, Holdings)):
                field = "market" if isinstance(item, MarketRef) else "holdings"
                if plan_fields[field] is not None:
                    what = "use market" if field == "market" else "holdings"
                    raise _Abort(error("SP100", f"a plan has at most one `{what}`; the first "
                                       f"is at line {plan_fields[field].span.line}",
                                       item.span))
                plan_fields[field] = item
            elif isinstance(item, Let):
                lets.append(item)
            elif isinstance(item, Setting):
                sets.append(item)
            else:
                phases.append(item)
        return trusted(Plan,
            name=decl[0], description=decl[1], lets=tuple(lets), sets=tuple(sets),
            phases=tuple(phases), span=Span.join(decl[2], phases[-1].span), leading=(),
            trailing=None, end_comments=(), **plan_fields)

    def plan_decl(self, ch: list[Any]) -> tuple[str, str | None, Span]:
        desc = self._string(ch[2]) if len(ch) > 2 else None
        return self._name(ch[1]), desc, _around(ch[0], ch[-1])

    def use_market(self, ch: list[Any]) -> MarketRef:
        return trusted(MarketRef, path=self._string(ch[2]), span=_around(ch[0], ch[-1]),
                                         leading=(), trailing=None)

    def holdings(self, ch: list[Any]) -> Holdings:
        return trusted(Holdings, entries=tuple(ch[2:-1]), span=_around(ch[0], ch[-1]),
                                        leading=(), trailing=None, end_comments=())

    def holding(self, ch: list[Any]) -> HoldingEntry:
        amounts = tuple(c for c in ch[2:] if isinstance(c, HoldingAmount))
        return trusted(HoldingEntry, venue=self._name(ch[0]), amounts=amounts,
                                            span=_around(ch[0], ch[-1]), leading=(),
                                            trailing=None)

    def holding_amount(self, ch: list[Any]) -> HoldingAmount:
        return trusted(HoldingAmount, amount=ch[0], asset=_symbol(ch[1]),
                                             span=_around(ch[0], ch[1]))

    def let_stmt(self, ch: list[Any]) -> Let:
        return trusted(Let, name=self._name(ch[1]), value=self._value(ch[3], "a value"),
                                   span=_around(ch[0], ch[3]), leading=(), trailing=None)

    def set_stmt(self, ch: list[Any]) -> Setting:
        return trusted(Setting, name=self._name(ch[1]),
                                       value=self._value(ch[3], "a value"),
                                       span=_around(ch[0], ch[3]), leading=(), trailing=None)

    def phase(self, ch: list[Any]) -> Phase:
        after: tuple[str, ...] = ()
        rest = ch[2:]
        if rest and isinstance(rest[0], tuple):
            after, rest = rest[0], rest[1:]
        body = tuple(rest[1:-1])
        return trusted(Phase, name=self._name(ch[1]), after=after, body=body,
                                     span=_around(ch[0], ch[-1]), leading=(), trailing=None,
                                     end_comments=())

    def after(self, ch: list[Any]) -> tuple[str, ...]:
        return tuple(self._name(t) for t in ch[1::2])

    def atomic(self, ch: list[Any]) -> AtomicBlock:
        via = None
        rest = ch[2:]
        if rest and isinstance(rest[0], str) and not isinstance(rest[0], Token):
            via, rest = rest[0], rest[1:]
        body = tuple(rest[1:-1])
        node = trusted(AtomicBlock, name=self._name(ch[1]), via=via, body=body,
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
        node = trusted(Repeat, count=count, var=var, body=body,
                                      span=_around(ch[0], ch[-1]), leading=(), trailing=None,
                                      end_comments=())
        return self._block_nesting(node, body)

    def loop_var(self, ch: list[Any]) -> str:
        return self._name(ch[1])

    def assert_stmt(self, ch: list[Any]) -> Assert:
        message = ch[2][0] if len(ch) > 2 else None
        last = ch[2][1] if len(ch) > 2 else ch[1]
        return trusted(Assert, condition=self._condition(ch[1]), message=message,
                                      span=_around(ch[0], last), leading=(), trailing=None)

    def else_msg(self, ch: list[Any]) -> tuple[str, Token]:
        return self._string(ch[1]), ch[1]

    # --- instructions -----------------------------------------------------------------
    def transfer(self, ch: list[Any]) -> WalletTransferInstruction:
        return trusted(WalletTransferInstruction,
            amount=ch[1], token=_symbol(ch[2]), source_venue=self._name(ch[4]),
            target_venue=self._name(ch[6]), span=_around(ch[0], ch[6]), leading=(),
            trailing=None)

    def _trade(self, ch: list[Any], market: str) -> CEXTradeInstruction:
        extra: dict[str, Any] = {"limit": None, "leverage": None}
        if len(ch) > 6:
            extra[ch[6][0]] = ch[6][1]
        base, quote = ch[3]
        return trusted(CEXTradeInstruction,
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
        return trusted(SmartContractInstruction,
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
                return trusted(AllAmount, span=_tok_span(item))
            return trusted(MaxAmount, span=_tok_span(item))
        result: AnyAmount = self._value(item)
        return result

    # --- expressions ------------------------------------------------------------------
    def number(self, ch: list[Any]) -> Number:
        return self._plain_number(ch[0])

    def name(self, ch: list[Any]) -> NameRef:
        return trusted(NameRef, name=self._name(ch[0]), span=_tok_span(ch[0]))

    def asset_arg(self, ch: list[Any]) -> AssetArg:
        return trusted(AssetArg, symbol=_symbol(ch[0]), span=_tok_span(ch[0]))

    def call(self, ch: list[Any]) -> Call:
        args = tuple(self._value(c, "an argument") for c in ch[2:-1]
                     if c is not None and not isinstance(c, Token))
        node = trusted(Call, func=self._name(ch[0]), args=args,
                                    span=_around(ch[0], ch[-1]))
        return self._expr(node, *args)

    def group(self, ch: list[Any]) -> AnyExpr:
        inner: AnyExpr = ch[1]
        self.depth[id(inner)] = self.depth.get(id(inner), 1) + 1
        if self.depth[id(inner)] > MAX_EXPRESSION_DEPTH:
            raise _Abort(error("SP110", f"expression nested more than {MAX_EXPRESSION_DEPTH} "
                               "levels deep", _around(ch[0], ch[-1])))
        return inner

    def neg(self, ch: list[Any]) -> Neg:
        operand = self._value(ch[1], "a number")
        return self._expr(trusted(Neg, operand=operand, span=_around(ch[0], ch[1])),
                          operand)

    def _binop(self, ch: list[Any]) -> BinOp:
        left, right = self._value(ch[0], "a number"), self._value(ch[2], "a number")
        node = trusted(BinOp, op=cast(Any, str(ch[1])), left=left, right=right,
                                     span=_around(left, right))
        return self._expr(node, left, right)

    add = sub = mul = div = _binop

    def cmp(self, ch: list[Any]) -> Token:
        return ch[0]

    def compare_op(self, ch: list[Any]) -> Compare:
        left, right = self._value(ch[0], "a number"), self._value(ch[2], "a number")
        node = trusted(Compare, op=cast(Any, str(ch[1])), left=left, right=right,
                                       span=_around(left, right))
        return self._expr(node, left, right)

    def _boolop(self, ch: list[Any]) -> BoolOp:
        left, right = self._condition(ch[0]), self._condition(ch[2])
        node = trusted(BoolOp, op=cast(Any, str(ch[1])), left=left, right=right,
                                      span=_around(left, right))
        return self._expr(node, left, right)

    or_op = and_op = _boolop

    def not_op(self, ch: list[Any]) -> Not:
        operand = self._condition(ch[1])
        return self._expr(trusted(Not, operand=operand, span=_around(ch[0], operand)),
                          operand)


_LOCK = threading.Lock()
_BUILDER = _Builder()
_COMMENTS: list[RawComment] = []


def grammar_text() -> str:
    """The grammar shipped inside the installed package."""
    return resources.files("stratplan.grammar").joinpath("plan.lark").read_text(encoding="utf-8")


@cache
def _lark() -> Lark:
    lark = Lark(
        grammar_text(), parser="lalr", lexer="contextual", keep_all_tokens=True,
        maybe_placeholders=True, transformer=_BUILDER, cache=False,
        _plugins={"ContextualLexer": FastContextualLexer},
        lexer_callbacks={"COMMENT": lambda tok: _COMMENTS.append(
            RawComment(tok.line, tok.column, str(tok.value).rstrip()))},
    )
    # Lark's grammar loader leaves rule names as Tokens (a str subclass whose `==` is
    # Python code); the LALR loop looks up the next state by that name after every
    # reduction. Equal plain strings make that lookup C-fast (about 5% of a parse).
    for rule in lark.rules:
        rule.origin.name = str(rule.origin.name)
    return lark


@cache
def _lark_for_errors() -> Lark:
    # A tree-building twin, used only to re-lex text when explaining a syntax error.
    return Lark(grammar_text(), parser="lalr", lexer="basic")


def decode(data: str | bytes) -> tuple[str | None, Diagnostic | None]:
    """Text from bytes, or an SP100/SP110 saying why the bytes are not a plan."""
    if isinstance(data, bytes):
        if len(data) > MAX_FILE_BYTES:
            return None, _file_too_large(len(data))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            before = data[: exc.start]
            line = before.count(b"\n") + 1
            column = exc.start - (before.rfind(b"\n") + 1) + 1
            return None, error("SP100", f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                               Span(line=line, column=column, end_line=line,
                                    end_column=column + 1),
                               help="save the plan as UTF-8 text")
    else:
        text = data
        if len(text) > MAX_FILE_BYTES and len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
            return None, _file_too_large(len(text.encode("utf-8", "replace")))
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        return None, error("SP100", "the file contains a NUL byte; a plan is plain text",
                           Span(line=line, column=column, end_line=line, end_column=column + 1))
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, None


def _file_too_large(size: int) -> Diagnostic:
    return error("SP110", f"the file is {size:,} bytes, above the limit of {MAX_FILE_BYTES:,}",
                 Span(line=1, column=1, end_line=1, end_column=1),
                 help="split the plan into several files")


def parse(data: str | bytes, path: str | None = None) -> ParseResult:
    """Parse plan text (or bytes) into a typed plan; never raises on any input."""
    text, problem = decode(data)
    if text is None:
        assert problem is not None
        return ParseResult(None, [_pathed(problem, path)])
    with _LOCK, paused_gc():
        _BUILDER.reset()
        _COMMENTS.clear()
        try:
            plan = cast(Plan, _lark().parse(text))
            comments = list(_COMMENTS)
        except _Abort as abort:
            return ParseResult(None, [_pathed(abort.diagnostic, path)], source=text)
        except UnexpectedInput as exc:
            diagnostic = _syntax_error(text, exc)
            return ParseResult(None, [_pathed(diagnostic, path)], source=text)
        except (LarkError, RecursionError, MemoryError) as exc:
            diagnostic = error("SP100", f"cannot parse the plan: {type(exc).__name__}",
                               Span(line=1, column=1, end_line=1, end_column=1))
            return ParseResult(None, [_pathed(diagnostic, path)], source=text)
        finally:
            _BUILDER.reset()
            _COMMENTS.clear()
    plan = attach_comments(plan, comments)
    return ParseResult(plan, [], noqa=noqa_table(comments), source=text)


def _pathed(diagnostic: Diagnostic, path: str | None) -> Diagnostic:
    return diagnostic.with_path(path) if path else diagnostic


def _syntax_error(text: str, exc: UnexpectedInput) -> Diagnostic:
    line = max(getattr(exc, "line", 1) or 1, 1)
    column = max(getattr(exc, "column", 1) or 1, 1)
    at_end = isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    if at_end:
        line, column = _end_position(text)
        found_text, width = "end of file", 1
    elif isinstance(exc, UnexpectedToken):
        found_text, width = f'"{exc.token.value}"', max(len(str(exc.token.value)), 1)
    elif isinstance(exc, UnexpectedCharacters):
        position = exc.pos_in_stream or 0
        char = text[position] if 0 <= position < len(text) else "?"
        found_text, width = f"unexpected character {char!r}", 1
    else:
        found_text, width = "something unexpected", 1
    expected = _expected_terminals(exc)
    previous = _previous_tokens(text, line + 1 if at_end else line, column)
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

