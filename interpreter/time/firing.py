"""A firing of a trigger within a backtest step (LANGUAGE.md section 8, step 4): its DAG
dispatched at the step's prices, its costs into the step's PnL parts, its fills stamped
with the step's time and trigger, its event. The phases at the first step are dispatched
the same way (`run_dag`, `cost_parts`, `stamp`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stratplan.interpreter.dag import Dag, build_dag
from stratplan.interpreter.engine import Engine, Outcome, run_sync
from stratplan.interpreter.series.read import iso
from stratplan.interpreter.time.results import BacktestResult, firing_event
from stratplan.interpreter.time.triggers import trigger_phase


def cost_parts(backtest: Any) -> tuple[Decimal, Decimal, Decimal]:
    """Fees, slippage (USD) and gas (ETH) paid so far."""
    monitor = backtest.monitor
    return monitor.cost("fee"), monitor.cost("slippage"), monitor.gas_eth


def run_dag(engine: Engine, dag: Dag) -> Outcome:
    """Dispatch a DAG; without an event loop when no executor must be awaited."""
    prepare = engine._prepare
    if all(prepare(node.statement).immediate is not None for node in dag.nodes):
        coroutine = engine.run_concurrent(dag)
        try:
            coroutine.send(None)
        except StopIteration as done:
            result: Outcome = done.value
            return result
        coroutine.close()  # pragma: no cover - immediate nodes never await
        raise RuntimeError("an immediate DAG awaited")
    result = run_sync(engine.run_concurrent(dag))
    return result


def stamp(fills: list[Any], start: int, time: int, trigger: str | None,
           suffix: str | None) -> None:
    """Give the fills from `start` on their step's time, their trigger and, for a firing,
    node ids with `@` and the step time (as the firing's events)."""
    for index in range(start, len(fills)):
        fill = fills[index]
        fill.time, fill.trigger = time, trigger
        if suffix is not None and fill.node is not None:
            fill.node = f"{fill.node}@{suffix}"


def fire(bt: Any, result: BacktestResult, trigger: Any, row: int,
          dags: dict[str, Dag], parts: dict[str, Decimal]) -> None:
    """Run one firing of `trigger` at `row`: its DAG, its costs, its event."""
    now = bt.series.times[row]
    engine = bt.engine
    bt.apply_row(row)  # a firing may read any rate or price: all at this row's values
    result.firings[trigger.name] += 1
    sub = dags.get(trigger.name)
    if sub is None:
        sub = dags[trigger.name] = build_dag(trigger_phase(bt.plan, trigger), engine.scope)
    fees0, slip0, gas0 = cost_parts(bt)
    fills = result.fills
    first_fill = len(fills)
    outcome = run_dag(engine, sub)
    stamp(fills, first_fill, now, trigger.name, iso(now))
    fees1, slip1, gas1 = cost_parts(bt)
    # A firing that paid nothing leaves the parts untouched (the ZERO a step starts with):
    # a snapshot keeps a part's column only once some step touched it.
    if fees1 != fees0:
        parts["fees"] -= fees1 - fees0
    if slip1 != slip0:
        parts["slippage"] -= slip1 - slip0
    if gas1 != gas0:
        parts["gas"] -= (gas1 - gas0) * bt.market.price("ETH")
    bt.track(sub, outcome)
    result.events.append(firing_event(trigger, now, outcome, iso(now)))
    bt.note_missing()
