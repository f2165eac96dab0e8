"""Triggers: when a plan's `every` and `when` blocks fire (LANGUAGE.md section 8, step 4).

- `every D` fires at the first step at or after start + k·D for each k >= 1 not yet fired,
  once a step however many periods passed (a catch-up fires once).
- `when C` fires when C holds at t and did not hold at its previous evaluation (before the
  first step it counts as not holding): edge-triggered. C is evaluated at every step, in
  cooldown too, so a condition that stays true fires once.
- `cooldown D`: not again before the firing time + D.

A firing runs the trigger's body like a phase named after the trigger, so node ids are
`TRIGGER/...` (the backtest adds `@` and the step time).
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stratplan.dsl.models import Phase, Plan
from stratplan.executors.errors import ExecutionError, MarketError
from stratplan.interpreter.evaluate import EvalError, Scope, holds

_MS = Decimal(1000)


def duration_ms(duration: Any) -> int:
    """A duration model (or a number of seconds) in whole milliseconds."""
    seconds = getattr(duration, "seconds", duration)
    return int(Decimal(seconds) * _MS)


@dataclass
class TriggerState:
    """What a trigger remembers between steps."""

    trigger: Any
    start: int
    next_due: int = 0            # `every`: the next start + k·D not yet fired
    held: bool = False           # `when`: the condition at the previous evaluation
    blocked_until: int = -1      # `cooldown`: no firing before this time

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


def when_due(state: TriggerState, now: int, value: bool) -> bool:
    """`when`: True on a rising edge of the condition outside the cooldown."""
    rising = value and not state.held
    state.held = value
    if not rising or now < state.blocked_until:
        return False
    state.blocked_until = now + state.cooldown if state.cooldown else -1
    return True


def due(state: TriggerState, now: int, scope: Scope, result: Any, backtest: Any) -> bool:
    """Whether the trigger fires at `now`; a condition that cannot be evaluated counts as
    not holding and is recorded once as a failed firing."""
    trigger = state.trigger
    if state.period:
        return every_due(state, now)
    condition = getattr(trigger, "when", None)
    if condition is None:
        return False
    try:
        value = holds(condition, scope)
    except EvalError as exc:
        _condition_failed(result, trigger, now, exc.code, exc.message, exc.span)
        value = False
    except (MarketError, ExecutionError, decimal.DecimalException) as exc:
        _condition_failed(result, trigger, now, "SP304",
                          f"the condition could not be evaluated: {exc}", condition.span)
        value = False
    return when_due(state, now, value)


def _condition_failed(result: Any, trigger: Any, now: int, code: str, message: str,
                      span: Any) -> None:
    from stratplan.interpreter.backtest import Event
    from stratplan.interpreter.series import iso
    result.events.append(Event(now, "failure", trigger.name, f"{trigger.name}@{iso(now)}",
                               span.line, code, message, None, span))


def trigger_phase(plan: Plan, trigger: Any) -> Plan:
    """The plan with one phase: the trigger's body under the trigger's name (its DAG is the
    firing's)."""
    phase = Phase(name=trigger.name, body=trigger.body, span=trigger.span)
    return plan.model_copy(update={"phases": (phase,)})
