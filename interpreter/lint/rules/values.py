"""Values in range (SP104, and SP110 for `let` and `set`): amounts, prices, leverage,
slippage, durations and options, and constants that can be computed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from stratplan.dsl.diagnostics import Diagnostic
from stratplan.dsl.formatter import format_expr
from stratplan.dsl.models import Let, Repeat, Setting
from stratplan.dsl.spans import Span
from stratplan.interpreter.dag import repeat_count
from stratplan.interpreter.evaluate import EvalError, Scope, constant, names_used
from stratplan.interpreter.lint.rules.registry import OPTIONS, RuleContext, diag, rule

MAX_CHECKED_ITERATIONS = 10_000


def _iterations(repeats: tuple[Repeat, ...], scope: Scope) -> Iterator[dict[str, Decimal]] | None:
    """Every loop-variable binding of nested repeats, or None when too many or unknown."""
    ranges = []
    total = 1
    for repeat in repeats:
        count = repeat_count(repeat, scope)
        if count is None:
            return None
        total *= count
        ranges.append((repeat.var, range(count)))
    if total > MAX_CHECKED_ITERATIONS:
        return None
    names = [name for name, _ in ranges]
    return ({n: Decimal(v) for n, v in zip(names, values, strict=True) if n}
            for values in itertools.product(*(r for _, r in ranges)))


def _values(ctx: RuleContext, expr: Any, repeats: tuple[Repeat, ...]) -> Iterator[tuple[Decimal, str]]:
    """Constant values of an expression over its iterations, with an iteration label."""
    if expr.kind == "number":
        yield expr.value, ""
        return
    bindings = _iterations(repeats, ctx.scope)
    if bindings is None:
        return
    for loop in bindings:
        try:
            value = constant(expr, ctx.scope.with_loop(loop))
        except EvalError:
            return
        if value is None:
            return
        label = (" in iteration " + ", ".join(f"{k}={v}" for k, v in loop.items())) if loop else ""
        yield value, label


def _positive(value: Decimal) -> bool:
    return value > 0


def _fraction(value: Decimal) -> bool:
    return 0 <= value < 1


# The values SP104 checks in each kind of instruction: (field, what it is, valid).
_RANGES: dict[str, tuple[tuple[str, str, Callable[[Decimal], bool]], ...]] = {
    "wallet_transfer": (("amount", "amount", _positive),),
    "cex_trade": (("amount", "amount", _positive), ("limit", "limit price", _positive),
                  ("leverage", "leverage", _positive)),
    "contract": (("amount", "amount", _positive), ("slippage", "slippage", _fraction)),
}


@rule("SP104")
def non_positive(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Constant amounts, prices, leverage and options must be in range."""
    if ctx.plan.holdings:
        for entry in ctx.plan.holdings.entries:
            for amount in entry.amounts:
                if amount.amount.value <= 0:
                    yield diag("SP104", f"holding of {amount.asset} is not positive",
                               amount.amount.span)
    for stmt, place in ctx.instructions():
        for name, what, valid in _RANGES[stmt.kind]:
            expr = getattr(stmt, name)
            if expr is None or expr.kind == "all" or expr.kind == "max":
                continue
            for value, label in _values(ctx, expr, place.repeats):
                if not valid(value):
                    yield diag("SP104", f"the {what} is {value.normalize():f}{label}; "
                               f"it must be {'from 0 to below 1' if what == 'slippage' else 'positive'}",
                               expr.span)
                    break
    limits: dict[str, tuple[Callable[[Decimal], bool], str]] = {
        "min_health": (lambda v: v > 0, "positive"),
        "max_slippage": (lambda v: 0 <= v < 1, "from 0 to below 1"),
        "gas_price_gwei": (lambda v: v >= 0, "zero or more")}
    for trigger in ctx.plan.triggers:
        for duration in (trigger.every, trigger.cooldown):
            if duration is not None and duration.value <= 0:
                yield diag("SP104", f"the duration {duration.text} is not positive",
                           duration.span, "write a positive duration such as 1h or 1d")
    for setting in ctx.plan.sets:
        if setting.name not in limits:
            continue
        valid, wanted = limits[setting.name]
        try:
            option = constant(setting.value, ctx.scope)
        except EvalError:
            continue  # reported by the constants rule (SP110), at the expression
        if option is not None and not (option.is_finite() and valid(option)):
            yield diag("SP104", f"`{setting.name}` cannot be {option.normalize():f}: it must be "
                       f"{wanted}", setting.value.span)


@rule("SP110")
def constants(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Every `let` and `set` has a value that can be computed: no division by zero, nothing
    out of range; an option's value is a constant (no run-time state)."""
    lets = {let.name: let for let in ctx.plan.lets}
    reported: set[tuple[str, Span]] = set()
    items: list[tuple[Let | Setting, str]] = [
        *((let, "constant") for let in ctx.plan.lets),
        *((setting, "option") for setting in ctx.plan.sets if setting.name in OPTIONS)]
    for item, what in items:
        if names_used(item.value) - set(lets):
            continue  # undefined names: SP108
        try:
            value = constant(item.value, ctx.scope)
        except EvalError as exc:
            # Unknown functions are SP108's own; a let used by others is reported once.
            if exc.code != "SP108" and (exc.code, exc.span) not in reported:
                reported.add((exc.code, exc.span))
                yield diag(exc.code, f"{what} `{item.name}`: {exc.message}", exc.span)
            continue
        if value is None and what == "option":
            yield diag("SP108", f"option `{item.name}` must be a constant; "
                       f"`{format_expr(item.value)}` depends on the run's state",
                       item.value.span, "write a number, or an expression of `let` constants "
                       "and `price(...)`")
