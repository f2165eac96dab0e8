"""Triggers: when a plan's `every` and `when` blocks fire (LANGUAGE.md section 8, step 4).

- `every D` fires at the first step at or after start + k·D for each k >= 1 not yet fired,
  once a step however many periods passed (a catch-up fires once).
- `when C` fires when C holds at t and did not hold at its previous evaluation (before the
  first step it counts as not holding): edge-triggered. C is evaluated at every step, in
  cooldown too, so a condition that stays true fires once.
- `cooldown D`: not again before the firing time + D.

A firing runs the trigger's body like a phase named after the trigger, so node ids are
`TRIGGER/...` (the backtest adds `@` and the step time).

A `when` condition is evaluated at every step. `compile_condition` turns the common shape —
comparisons of `health(V)` at a lending venue, of a market function (`price`, `rate`,
`funding`, `supply_rate`, `borrow_rate`, `oracle`: read from the step's market, which carries the
series' values in force), of what the books hold (`balance`, `position`, `exposure`,
`value()`, ...: through the evaluator) and of constants, joined by `and`, `or`, `not` — into a closure
over the step's health readings (interpreter/readings.py), with the constants worked out
once; any other condition goes through the evaluator each step.
"""

from __future__ import annotations

import decimal
import operator
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stratplan.dsl.models import Phase, Plan
from stratplan.executors.errors import ExecutionError, MarketError
from stratplan.executors.market import LendingVenue
from stratplan.interpreter.evaluate import (
    EvalError,
    Scope,
    constant,
    evaluate,
    holds,
    market_reading,
    ranged,
)

_MS = Decimal(1000)
_INFINITE = Decimal("Infinity")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne}
Health = Mapping[str, "Decimal | None"]
Condition = Callable[[Health], bool]


def duration_ms(duration: Any) -> int:
    """A duration model (or a number of seconds) in whole milliseconds."""
    seconds = getattr(duration, "seconds", duration)
    return int(Decimal(seconds) * _MS)


_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000))


def duration_text(ms: int) -> str:
    """Milliseconds as the language writes a duration: `1d`, `8h`, `1h30m`, `1.5s`."""
    if ms <= 0:
        return "0s"
    parts = []
    for unit, size in _UNITS:
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    if ms:  # below a second: the seconds part with its fraction
        whole = int(parts.pop()[:-1]) if parts and parts[-1].endswith("s") else 0
        parts.append(f"{format((Decimal(whole * 1000 + ms) / 1000).normalize(), 'f')}s")
    return "".join(parts)


@dataclass
class TriggerState:
    """What a trigger remembers between steps."""

    trigger: Any
    start: int
    next_due: int = 0            # `every`: the next start + k·D not yet fired
    held: bool = False           # `when`: the condition at the previous evaluation
    blocked_until: int = -1      # `cooldown`: no firing before this time
    compiled: Condition | None = None  # `when`: the condition over health readings

    def __post_init__(self) -> None:
        every = getattr(self.trigger, "every", None)
        self.period = duration_ms(every) if every is not None else 0
        self.next_due = self.start + self.period
        cooldown = getattr(self.trigger, "cooldown", None)
        self.cooldown = duration_ms(cooldown) if cooldown is not None else 0


def every_due(state: TriggerState, now: int) -> bool:
    """`every`: True at the first step at or after a period not yet fired; moves past
    every period that has passed (once a step)."""
    if now < state.next_due:
        return False
    passed = (now - state.start) // state.period
    state.next_due = state.start + (passed + 1) * state.period
    return True


def first_every_row(states: Sequence[TriggerState], times: Sequence[int], row: int,
                    stop: int) -> int:
    """The first row in [row, stop) where an `every` trigger is due, else `stop` (rows
    are in time order: found by bisection)."""
    for state in states:
        if state.period:
            stop = min(stop, bisect_left(times, state.next_due, row, stop))
    return stop


def when_due(state: TriggerState, now: int, value: bool) -> bool:
    """`when`: True on a rising edge of the condition outside the cooldown."""
    rising = value and not state.held
    state.held = value
    if not rising or now < state.blocked_until:
        return False
    state.blocked_until = now + state.cooldown if state.cooldown else -1
    return True


def due(state: TriggerState, now: int, scope: Scope, result: Any,
        health: Callable[[], Health] | None = None) -> bool:
    """Whether the trigger fires at `now`; a condition that cannot be evaluated counts as
    not holding and is recorded once as a failed firing. `health` gives the step's health
    readings, for a compiled condition (`compile_condition`)."""
    if state.period:
        return now >= state.next_due and every_due(state, now)
    trigger = state.trigger
    condition = getattr(trigger, "when", None)
    if condition is None:
        return False
    try:
        if state.compiled is not None and health is not None:
            value = state.compiled(health())
        else:
            value = holds(condition, scope)
    except EvalError as exc:
        _condition_failed(result, trigger, now, exc.code, exc.message, exc.span)
        value = False
    except (MarketError, ExecutionError, decimal.DecimalException) as exc:
        _condition_failed(result, trigger, now, "SP304",
                          f"the condition could not be evaluated: {exc}", condition.span)
        value = False
    return when_due(state, now, value)


def fixed_value(expr: Any, scope: Scope) -> Decimal | None:
    """The value of a constant expression (numbers and the scope's `let`s, worked out
    without the books or the market), None for any other."""
    try:
        return constant(expr, Scope(scope.lets, {}, None, None))
    except (EvalError, decimal.DecimalException):
        return None


@dataclass(frozen=True, slots=True)
class HealthVsConstant:
    """`health(V) <op> constant`, the common compiled condition: a function of the health
    readings, whose parts a stretch of rows reads to test a whole column of V's health at
    once (time/accruing.py)."""

    venue: str
    test: Callable[[Decimal, Decimal], bool]
    bound: Decimal
    call: Any  # the `health(V)` expression, for its SP110 (`evaluate.ranged`)

    def __call__(self, health: Health) -> bool:
        value = health.get(self.venue)
        return self.test(_INFINITE if value is None else ranged(value, self.call), self.bound)


def compile_condition(condition: Any, scope: Scope) -> Condition | None:
    """The condition as a function of the health readings {venue: health or None}, when it
    compares only `health(V)` at lending venues, market functions the evaluator accepts on
    the scope's market (read from that market when called) and constants (`let`s and
    numbers, worked out once here); None for any other condition (the evaluator runs it
    each step).

    Equal to `holds(condition, scope)`: the same comparisons of the same values, with
    `health(V)` infinite where V has no debt (None, or no reading at all)."""
    market = scope.market

    def health_of(expr: Any) -> str | None:
        """V when `expr` is `health(V)` at a lending venue V."""
        if expr.kind == "call" and expr.func == "health" and len(expr.args) == 1 \
                and expr.args[0].kind == "name" and market is not None \
                and isinstance(market.venues.get(expr.args[0].name), LendingVenue):
            return str(expr.args[0].name)
        return None

    def fixed(expr: Any) -> Decimal | None:
        return fixed_value(expr, scope)

    def compare(expr: Any) -> Condition | None:
        test = _COMPARE[expr.op]
        left, right = health_of(expr.left), health_of(expr.right)
        if left is not None and (bound := fixed(expr.right)) is not None:
            return HealthVsConstant(left, test, bound, expr.left)  # the common case
        if right is not None and (bound := fixed(expr.left)) is not None:
            def constant_vs_health(health: Health) -> bool:
                value = health.get(right)
                return test(bound, _INFINITE if value is None else ranged(value, expr.right))
            return constant_vs_health
        if left is not None and right is not None:
            def health_vs_health(health: Health) -> bool:
                one, two = health.get(left), health.get(right)
                return test(_INFINITE if one is None else ranged(one, expr.left),
                            _INFINITE if two is None else ranged(two, expr.right))
            return health_vs_health
        lhs, rhs = fixed(expr.left), fixed(expr.right)
        if lhs is not None and rhs is not None:
            result = bool(test(lhs, rhs))
            return lambda health: result
        one, two = side(expr.left, lhs), side(expr.right, rhs)
        if one is None or two is None:
            return None

        def readings(health: Health) -> bool:  # a market function's value at the step
            return bool(test(one(health), two(health)))
        return readings

    def side(expr: Any, bound: Decimal | None) -> Callable[[Health], Decimal] | None:
        """One side of a comparison as a function of the step: a constant, `health(V)`,
        or a market function read from the step's market (its series values)."""
        if bound is not None:
            return lambda health: bound
        venue = health_of(expr)
        if venue is not None:
            def health_value(health: Health) -> Decimal:
                value = health.get(venue)
                return _INFINITE if value is None else ranged(value, expr)
            return health_value
        if expr.kind == "call" and expr.func in BOOK_READINGS and scope.ledger is not None:
            # What the books hold (and `value()`): the evaluator's own reading at the step,
            # errors included, so nothing is copied that could drift from it.
            return lambda health: evaluate(expr, scope)
        read = market_reading(expr, market) if market is not None else None
        if read is None:
            return None
        return lambda health: read()

    def build(expr: Any) -> Condition | None:
        if expr.kind == "not":
            inner = build(expr.operand)
            return None if inner is None else (lambda health: not inner(health))
        if expr.kind == "boolop":
            left, right = build(expr.left), build(expr.right)
            if left is None or right is None:
                return None
            if expr.op == "and":
                return lambda health: left(health) and right(health)
            return lambda health: left(health) or right(health)
        if expr.kind == "compare":
            return compare(expr)
        return None

    return build(condition)


# State functions a compiled condition reads through the evaluator: the books' amounts,
# the exposure and the portfolio value (the assets they price are the books', which a step
# keeps up to date).
BOOK_READINGS = frozenset({"balance", "collateral", "debt", "position", "entry_price",
                           "exposure", "value"})


def names_read(condition: Any, scope: Scope) -> set[str]:
    """Every asset symbol and name a condition mentions, through the `let`s it names too:
    what a compiled condition can read from the market (a superset: venues and lets too)."""
    found: set[str] = set()
    stack = [condition]
    while stack:
        expr = stack.pop()
        symbol = getattr(expr, "symbol", None) or getattr(expr, "name", None)
        if isinstance(symbol, str) and symbol not in found:
            found.add(symbol)
            let = scope.lets.get(symbol)
            if let is not None:
                stack.append(getattr(let, "value", None))
        for part in ("left", "right", "operand"):
            inner = getattr(expr, part, None)
            if inner is not None:
                stack.append(inner)
        stack.extend(getattr(expr, "args", ()) or ())
    return found


def _condition_failed(result: Any, trigger: Any, now: int, code: str, message: str,
                      span: Any) -> None:
    from stratplan.interpreter.series.read import iso
    from stratplan.interpreter.time.results import Event
    result.events.append(Event(now, "failure", trigger.name, f"{trigger.name}@{iso(now)}",
                               span.line, code, message, None, span))


def trigger_phase(plan: Plan, trigger: Any) -> Plan:
    """The plan with one phase: the trigger's body under the trigger's name (its DAG is the
    firing's)."""
    phase = Phase(name=trigger.name, body=trigger.body, span=trigger.span)
    return plan.model_copy(update={"phases": (phase,)})
