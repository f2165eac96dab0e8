"""Evaluating expressions and conditions: constants statically, state functions at dispatch."""

from __future__ import annotations

import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from stratplan.dsl.decimals import in_range, readable
from stratplan.dsl.formatter import format_expr
from stratplan.dsl.models import AnyExpr, Let
from stratplan.dsl.spans import Span
from stratplan.executors.accounts import (
    INFINITE,
    PerpPosition,
    collateral_liquidation_price,
    exposure,
    health_factor,
    lending_terms,
    perp_of,
    portfolio_value,
)
from stratplan.executors.errors import ExecutionError, MarketError
from stratplan.executors.ledger import Ledger
from stratplan.executors.market import LendingVenue, Market
from stratplan.executors.oracle import oracle_price

# name -> (argument kinds); "venue" arguments are names, "asset" arguments asset symbols.
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "balance": ("venue", "asset"), "collateral": ("venue", "asset"),
    "debt": ("venue", "asset"), "position": ("venue", "asset"), "price": ("asset",),
    "health": ("venue",), "exposure": ("asset",),
    # v2 (LANGUAGE.md section 4)
    "value": (), "rate": ("asset",), "funding": ("venue", "asset"),
    "supply_rate": ("venue", "asset"), "borrow_rate": ("venue", "asset"),
    "entry_price": ("venue", "asset"), "liquidation_price": ("venue", "asset"),
    # v3 (LANGUAGE.md section 9)
    "oracle": ("venue", "asset"),
}
# What each function gives, for editors (completion, hover).
FUNCTION_HELP: dict[str, str] = {
    "balance": "the amount of T held at venue V (wallet or CEX)",
    "collateral": "the amount of T supplied as collateral at lending venue V",
    "debt": "the amount of T owed at lending venue V",
    "position": "the signed size of the B perp at V (negative: short)",
    "price": "the USD market price of T",
    "health": "the health factor at lending venue V, at its oracle prices (infinite with no debt)",
    "exposure": "the net amount of B (and of assets whose underlying is B) over every venue",
    "value": "the portfolio's value in USD, at market prices",
    "rate": "the exchange rate of a rate-bearing asset T to its underlying (weETH → ETH)",
    "funding": "the latest funding rate of the B perp at V, per funding interval",
    "supply_rate": "the supply APR of T at lending venue V (a fraction)",
    "borrow_rate": "the borrow APR of T at lending venue V (a fraction)",
    "entry_price": "the entry price of the B perp at V",
    "liquidation_price": "the price at which the B perp at V, or collateral T at lending "
                         "venue V (oracle price, others fixed), would be liquidated",
    "oracle": "the USD price of T that lending venue V uses now: its oracle (the exchange "
              "rate for weETH on aave), or the series' oracle.T",
}
# Functions whose value is fixed by the market alone (allowed in constant expressions).
MARKET_FUNCTIONS = frozenset({"price", "rate", "funding", "supply_rate", "borrow_rate",
                              "oracle"})
# Functions that read the state of the venue named by their first argument, and those that
# read every venue: the DAG orders them after what changes that state.
VENUE_STATE_FUNCTIONS = frozenset({"balance", "collateral", "debt", "position", "health",
                                   "entry_price", "liquidation_price"})
PORTFOLIO_FUNCTIONS = frozenset({"exposure", "value"})
MAX_LET_CHAIN = 64


class EvalError(Exception):
    """An expression that cannot be evaluated: code, message and the span to blame."""

    def __init__(self, code: str, message: str, span: Span) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.span = span


class NotConstant(Exception):
    """Raised when a static evaluation meets state (balances, health...)."""


@dataclass
class Scope:
    """Names an expression can use: `let` constants and loop variables."""

    lets: Mapping[str, Let] = field(default_factory=dict)
    loop: Mapping[str, Decimal] = field(default_factory=dict)
    market: Market | None = None
    ledger: Ledger | None = None
    _depth: int = 0

    def with_loop(self, loop: Mapping[str, Decimal]) -> Scope:
        """The same scope with other loop variables."""
        return Scope(self.lets, loop, self.market, self.ledger)


def evaluate(expr: AnyExpr | Any, scope: Scope) -> Decimal:
    """The value of an arithmetic expression; EvalError or NotConstant when it has none.

    The value may be infinite (`health(V)` with no debt); `amount` refuses that."""
    try:
        return _eval(expr, scope)
    except decimal.DecimalException as exc:
        raise _signal(exc, expr.span) from None


def amount(expr: AnyExpr | Any, scope: Scope, what: str = "amount") -> Decimal:
    """The value of an expression used as a quantity: finite, or EvalError SP104."""
    value = evaluate(expr, scope)
    if not value.is_finite():
        raise EvalError("SP104", f"the {what} `{format_expr(expr)}` is not finite ({value}); "
                        "`health(V)` with no debt is infinite", expr.span)
    return value


def _signal(exc: decimal.DecimalException, span: Span) -> EvalError:
    """The diagnostic a decimal signal becomes (LANGUAGE.md: SP110 out of range, SP104 not
    finite)."""
    if isinstance(exc, decimal.Overflow):
        return EvalError("SP110", "a value in the expression is out of range (its magnitude "
                         "must stay between 1e-30 and 1e30)", span)
    return EvalError("SP104", "division by zero, or an operation whose result is not a "
                     "finite number (such as infinity minus infinity)", span)


def _checked(value: Decimal, expr: Any) -> Decimal:
    """An arithmetic result, refused (SP110) when finite but out of range."""
    if value.is_finite() and not in_range(value):
        raise EvalError("SP110", f"`{format_expr(expr)}` is {value:.6E}, out of range (a value's "
                        "magnitude must stay between 1e-30 and 1e30, or be zero)", expr.span)
    return value


def _eval(expr: Any, scope: Scope) -> Decimal:
    kind = expr.kind
    if kind == "number":
        value: Decimal = expr.value
        return value
    if kind == "name":
        return _name(expr, scope)
    if kind == "neg":
        return -_eval(expr.operand, scope)
    if kind == "binop":
        left, right = _eval(expr.left, scope), _eval(expr.right, scope)
        op = expr.op
        if op == "+":
            return _checked(left + right, expr)
        if op == "-":
            return _checked(left - right, expr)
        if op == "*":
            return _checked(left * right, expr)
        if right == 0:
            raise EvalError("SP104", "division by zero", expr.span)
        return _checked(left / right, expr)
    if kind == "call":
        return _call(expr, scope)
    raise EvalError("SP100", "expected a value, found a condition", expr.span)


def _name(expr: Any, scope: Scope) -> Decimal:
    if expr.name in scope.loop:
        return scope.loop[expr.name]
    let = scope.lets.get(expr.name)
    if let is None:
        raise EvalError("SP108", f"undefined name `{expr.name}`", expr.span)
    if scope._depth > MAX_LET_CHAIN:
        raise EvalError("SP110", "constants refer to each other too deeply", expr.span)
    scope._depth += 1
    try:
        return _eval(let.value, scope)
    finally:
        scope._depth -= 1


def _call(expr: Any, scope: Scope) -> Decimal:
    signature = FUNCTIONS.get(expr.func)
    if signature is None:
        raise EvalError("SP108", f"unknown function `{expr.func}`", expr.span)
    args = [_argument(arg, kind) for arg, kind in zip(expr.args, signature, strict=False)]
    if len(expr.args) != len(signature):
        raise EvalError("SP108", f"`{expr.func}` takes {len(signature)} argument(s)", expr.span)
    market = scope.market
    if expr.func not in MARKET_FUNCTIONS and scope.ledger is None:
        raise NotConstant(expr.func)
    if market is None:
        raise NotConstant(expr.func)
    try:
        value = _state(expr.func, args, scope.ledger, market)
    except (MarketError, ExecutionError) as exc:
        raise EvalError("SP103", str(exc), expr.span) from None
    return ranged(value, expr)


def ranged(value: Decimal, expr: Any) -> Decimal:
    """A function's value as the evaluator gives it: refused (SP110) beyond 1e30 (a series'
    huge price, the health of a dust debt); compiled conditions read theirs through it."""
    if value.is_finite() and value.adjusted() >= 30:
        return _checked(value, expr)
    return value


def _argument(arg: Any, kind: str) -> str:
    if kind == "asset":
        if arg.kind != "asset":
            raise EvalError("SP108", "expected an asset symbol here", arg.span)
        return str(arg.symbol)
    if arg.kind != "name":
        raise EvalError("SP108", "expected a venue name here", arg.span)
    return str(arg.name)


def _state(func: str, args: list[str], ledger: Ledger | None, market: Market) -> Decimal:
    if func == "price":
        return market.price(args[0])
    if func == "rate":
        market.price(args[0])  # an unknown asset is an error, not a rate of 1
        return market.rate(args[0])
    if func == "funding":
        return market.funding_rate(args[0], args[1])
    if func in ("supply_rate", "borrow_rate"):
        return _lending_rate(func, args[0], args[1], market)
    if func == "oracle":
        return _oracle(args[0], args[1], market)
    assert ledger is not None
    if func == "health":
        health = health_factor(ledger, market, args[0])
        return INFINITE if health is None else health
    if func == "exposure":
        return exposure(ledger, market, args[0])
    if func == "value":
        return portfolio_value(ledger, market)
    if func == "entry_price":
        perp = _perp(args[0], args[1], ledger, market)
        return perp.entry_price if perp is not None else Decimal(0)
    if func == "liquidation_price":
        return _liquidation_price(args[0], args[1], ledger, market)
    if func == "position":
        return sum((size for pair, size in ledger.items("position", args[0]).items()
                    if pair.split("/")[0] == args[1]), Decimal(0))
    book = {"balance": "balance", "collateral": "collateral", "debt": "debt"}[func]
    return ledger.get(book, args[0], args[1])  # type: ignore[arg-type]


def market_reading(expr: Any, market: Market) -> Callable[[], Decimal] | None:
    """For a call of a market function (`price`, `rate`, `funding`, `supply_rate`,
    `borrow_rate`) that the evaluator accepts on `market`, a function giving the value the
    evaluator would give now, read from the market as it is when called (a backtest's
    market changes its prices and rates step by step, not its venues or priced assets);
    None for any other expression, or for a call the evaluator refuses."""
    if expr.kind != "call" or expr.func not in MARKET_FUNCTIONS:
        return None
    signature = FUNCTIONS[expr.func]
    if len(expr.args) != len(signature):
        return None
    try:
        args = [_argument(arg, kind) for arg, kind in zip(expr.args, signature, strict=True)]
        _state(expr.func, args, None, market)
    except (EvalError, MarketError, ExecutionError, decimal.DecimalException):
        return None
    func = expr.func
    read: Callable[[], Decimal]
    if func == "price":
        read = partial(market.price, args[0])
    elif func == "rate":  # its asset is priced (checked above): what remains is the rate
        read = partial(market.rate, args[0])
    elif func == "funding":
        read = partial(market.funding_rate, args[0], args[1])
    elif func == "supply_rate":  # the venue takes the asset (checked above)
        read = partial(market.supply_rate, args[0], args[1])
    elif func == "oracle":  # the venue lists the asset (checked above)
        read = partial(oracle_price, market, args[0], args[1])
    else:
        read = partial(market.borrow_rate, args[0], args[1])

    def reading() -> Decimal:  # out of range as the evaluator finds it (SP110)
        return ranged(read(), expr)
    return reading


def _oracle(venue: str, asset: str, market: Market) -> Decimal:
    """`oracle(V, T)`: the USD price of T that lending venue V uses now (LANGUAGE.md
    section 9); MarketError when V does not list T."""
    if asset not in lending_terms(market, venue).assets:
        raise MarketError(f"{venue} does not list {asset}")
    return oracle_price(market, venue, asset)


def _lending_rate(func: str, venue: str, asset: str, market: Market) -> Decimal:
    """`supply_rate(V, T)` / `borrow_rate(V, T)`: the APR, 0 where the market gives none."""
    terms = lending_terms(market, venue).assets.get(asset)
    if func == "supply_rate":
        if terms is None:
            raise MarketError(f"{venue} does not take {asset}")
        return market.supply_rate(venue, asset)
    if terms is None or not terms.borrowable:
        raise MarketError(f"{venue} does not lend {asset}")
    return market.borrow_rate(venue, asset)


def _liquidation_price(venue: str, asset: str, ledger: Ledger, market: Market) -> Decimal:
    """The price at which the perp in `asset` at a CEX, or the collateral `asset` at a
    lending venue (other prices fixed), would be liquidated; 0 when no price would (no
    position, no debt, or a long whose margin covers it)."""
    terms = market.venues.get(venue)
    if isinstance(terms, LendingVenue):
        if asset not in terms.assets:
            raise MarketError(f"{venue} does not take {asset} as collateral")
        found = collateral_liquidation_price(ledger, market, venue, asset)
    else:
        perp = _perp(venue, asset, ledger, market)
        found = perp.liquidation_price if perp is not None else None
    return Decimal(0) if found is None else found


def _perp(venue: str, base: str, ledger: Ledger, market: Market) -> PerpPosition | None:
    """The open `base` perp at `venue` (None: none open); MarketError when it lists none."""
    if not market.lists_perp(venue, base):
        raise MarketError(f"{venue} lists no {base} perp")
    return perp_of(ledger, market, venue, base)


def holds(expr: Any, scope: Scope) -> bool:
    """The truth of a condition."""
    try:
        return _holds(expr, scope)
    except decimal.DecimalException as exc:
        raise _signal(exc, expr.span) from None


def _holds(expr: Any, scope: Scope) -> bool:
    kind = expr.kind
    if kind == "not":
        return not _holds(expr.operand, scope)
    if kind == "boolop":
        if expr.op == "and":
            return _holds(expr.left, scope) and _holds(expr.right, scope)
        return _holds(expr.left, scope) or _holds(expr.right, scope)
    if kind == "compare":
        left, right = _eval(expr.left, scope), _eval(expr.right, scope)
        return bool({"<": left < right, "<=": left <= right, ">": left > right,
                     ">=": left >= right, "==": left == right, "!=": left != right}[expr.op])
    raise EvalError("SP100", "expected a condition, found a value", expr.span)


def constant(expr: Any, scope: Scope) -> Decimal | None:
    """The value when it needs no run-time state, else None (errors still raise)."""
    static = Scope(scope.lets, scope.loop, scope.market, None)
    try:
        return evaluate(expr, static)
    except NotConstant:
        return None


def names_used(expr: Any) -> set[str]:
    """Every name an expression refers to (not function names)."""
    found: set[str] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        kind = node.kind
        if kind == "name":
            found.add(node.name)
        elif kind in ("neg", "not"):
            stack.append(node.operand)
        elif kind in ("binop", "compare", "boolop"):
            stack += [node.left, node.right]
        elif kind == "call":
            # A call's bare names are venues, never constants (and under an unknown
            # function, only the function is reported).
            stack += [a for a in node.args if a.kind != "name"]
    return found


# Expression kinds that hold no call: most amounts are one of these, and callers ask per
# statement (venues, rules), so they are answered without a walk.
_NO_CALLS = frozenset({"number", "name", "asset", "all", "max"})


def calls(expr: Any) -> list[Any]:
    """Every function call inside an expression."""
    if expr.kind in _NO_CALLS:
        return []
    found = []
    stack = [expr]
    while stack:
        node = stack.pop()
        kind = node.kind
        if kind == "call":
            found.append(node)
            stack += list(node.args)
        elif kind in ("neg", "not"):
            stack.append(node.operand)
        elif kind in ("binop", "compare", "boolop"):
            stack += [node.left, node.right]
    return found


def why_false(expr: Any, scope: Scope) -> str:
    """Why a condition that does not hold fails, with the values it compared:
    `exposure(BTC) = -10.01676, not <= 0.001`."""
    kind = expr.kind
    if kind == "compare":
        left, right = _eval(expr.left, scope), _eval(expr.right, scope)
        shown = readable(right) if expr.right.kind == "number" else \
            f"{format_expr(expr.right)} = {readable(right)}"
        return f"{format_expr(expr.left)} = {readable(left)}, not {expr.op} {shown}"
    if kind == "boolop":
        parts = [part for part in (expr.left, expr.right) if not _holds(part, scope)]
        if expr.op == "and":
            return why_false(parts[0], scope)
        return " and ".join(why_false(part, scope) for part in parts)
    if kind == "not":
        return f"{format_expr(expr.operand)} holds"
    return format_expr(expr)
