"""Invariants for fuzzing executors and plans, usable against your own executor.

    from hypothesis import settings
    from stratplan.interpreter.testing import check_executor
    from my_package import LiveCexExecutor

    def test_my_executor_keeps_the_invariants():
        check_executor(LiveCexExecutor(), max_examples=200)

`check_executor` draws sound plans (`stratplan.interpreter.testing.strategies.valid_plans`, with
triggers), swaps your executor in for the built-in of its families, and asserts on every
plan: no negative balance, failures reported with a node and a source line, atomic blocks
all-or-nothing (gas aside), and the same final state for every order of the DAG. Then it
backtests the plan over a drawn series (`strategies.series`: prices with shocks, funding,
APRs) with your executor, so that what it put on the books is accrued and, when a shock
comes, liquidated (`assert_backtest_invariants`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # an extra: say which, not a traceback
    from stratplan.dsl.extras import missing

    raise missing("hypothesis", "testing", "check_executor (stratplan.interpreter.testing)") from None

from stratplan.dsl.models import AtomicBlock, Number, Plan, SmartContractInstruction
from stratplan.dsl.spans import Span
from stratplan.executors.market import Market, default_market
from stratplan.executors.protocol import Executor
from stratplan.executors.registry import discover
from stratplan.interpreter.dag import Dag, build_dag
from stratplan.interpreter.engine import Engine, NodeFailed, Outcome
from stratplan.interpreter.series.read import Series

_SPAN = Span(line=1, column=1, end_line=1, end_column=1)
UNSIGNED_BOOKS = ("balance", "collateral", "debt", "margin", "flash")


class InvariantError(AssertionError):
    """An invariant of the engine or of an executor does not hold."""


def prepare(plan: Plan, market: Market | None = None,
            executors: Mapping[str, Executor] | None = None) -> tuple[Engine, Dag]:
    """A fresh engine (holdings loaded) and the plan's DAG."""
    engine = Engine(plan, market or default_market(), executors or discover())
    return engine, build_dag(plan, engine.scope)


def random_topological_order(dag: Dag, rng: random.Random) -> list[str]:
    """Some order of node ids that the DAG allows, chosen with `rng`."""
    successors = dag.successors()
    waiting = {node_id: len(preds) for node_id, preds in dag.preds.items()}
    ready = [node_id for node_id, count in waiting.items() if count == 0]
    order = []
    while ready:
        node_id = ready.pop(rng.randrange(len(ready)))
        order.append(node_id)
        for succ in successors[node_id]:
            waiting[succ] -= 1
            if waiting[succ] == 0:
                ready.append(succ)
    if len(order) != len(dag.nodes):
        raise InvariantError("the DAG has a cycle")
    return order


def run_in_order(engine: Engine, dag: Dag, order: list[str] | None = None) -> Outcome:
    """Run the nodes one by one, in the dry-run order or the given one."""
    nodes = dag.by_id()
    sequence = dag.nodes if order is None else [nodes[n] for n in order]
    return asyncio.run(engine.run_sequential(sequence))


def assert_no_negative(engine: Engine) -> None:
    """No unsigned book holds a negative amount."""
    for book in UNSIGNED_BOOKS:
        for key, value in engine.monitor.books[book].items():
            if value < 0:
                raise InvariantError(f"negative {book} {key}: {value}")


def assert_failure_located(outcome: Outcome, dag: Dag) -> None:
    """A failed run names a node of the DAG, a code and a source line."""
    failure = outcome.failure
    if failure is None:
        return
    if failure.node not in dag.by_id():
        raise InvariantError(f"failure names an unknown node {failure.node!r}")
    if not failure.code.startswith("SP") or failure.span.line < 1:
        raise InvariantError(f"failure without a code or line: {failure}")
    if outcome.steps[-1].node != failure.node or outcome.steps[-1].status != "failed":
        raise InvariantError("the failing node is not the last step")


def assert_order_independent(plan: Plan, rng: random.Random, market: Market | None = None,
                             executors: Mapping[str, Executor] | None = None) -> None:
    """A random topological order reaches the same state as the dry-run order."""
    reference, dag = prepare(plan, market, executors)
    expected = run_in_order(reference, dag)
    engine, dag = prepare(plan, market, executors)
    got = run_in_order(engine, dag, random_topological_order(dag, rng))
    if (expected.failure is None) != (got.failure is None):
        raise InvariantError("one order failed and another did not")
    if expected.failure is None and engine.monitor.snapshot() != reference.monitor.snapshot():
        raise InvariantError("two orders the DAG allows end in different states")


def poisoned(plan: Plan, phase_index: int, stmt_index: int, position: int) -> tuple[Plan, Any]:
    """The plan with a certainly failing operation inserted into one atomic block."""
    phase = plan.phases[phase_index]
    block = phase.body[stmt_index]
    if not isinstance(block, AtomicBlock):
        raise ValueError(f"statement {stmt_index} of phase {phase.name} is not an atomic block")
    poison = SmartContractInstruction(operation="withdraw", token_in="weETH", venue="aave",
                                      amount=Number(value=Decimal(10**12), text="1e12",
                                                    span=_SPAN), span=_SPAN)
    body = (*block.body[:position], poison, *block.body[position:])
    new_block = block.model_copy(update={"body": body})
    new_phase = phase.model_copy(update={"body": (*phase.body[:stmt_index], new_block,
                                                  *phase.body[stmt_index + 1:])})
    new_plan = plan.model_copy(update={"phases": (*plan.phases[:phase_index], new_phase,
                                                  *plan.phases[phase_index + 1:])})
    return new_plan, new_block


def atomic_blocks(plan: Plan) -> list[tuple[int, int]]:
    """(phase index, statement index) of every non-empty top-level atomic block."""
    return [(i, j) for i, phase in enumerate(plan.phases) for j, stmt in enumerate(phase.body)
            if isinstance(stmt, AtomicBlock) and stmt.body]


def _without_wallet_eth(snapshot: dict[str, dict[Any, Decimal]]) -> dict[str, dict[Any, Decimal]]:
    books = {name: dict(table) for name, table in snapshot.items()}
    books["balance"].pop(("wallet", "ETH"), None)
    return books


def assert_atomic_all_or_nothing(plan: Plan, phase_index: int, stmt_index: int, position: int,
                                 market: Market | None = None,
                                 executors: Mapping[str, Executor] | None = None) -> None:
    """A failing atomic block leaves every book as it was, except the gas it paid."""
    target_plan, block = poisoned(plan, phase_index, stmt_index, position)
    engine, dag = prepare(target_plan, market, executors)
    for node in dag.nodes:
        if node.statement is block:
            before = engine.monitor.snapshot()
            eth_before = engine.monitor.get("balance", "wallet", "ETH")
            gas_before = engine.monitor.gas_eth
            try:
                asyncio.run(engine.execute(node))
            except NodeFailed:
                pass
            else:
                raise InvariantError("a block with a failing operation succeeded")
            if _without_wallet_eth(engine.monitor.snapshot()) != _without_wallet_eth(before):
                raise InvariantError("a failed atomic block changed the state")
            paid = engine.monitor.gas_eth - gas_before
            if engine.monitor.get("balance", "wallet", "ETH") != eth_before - paid:
                raise InvariantError("a failed atomic block moved ETH beyond its gas")
            return
        try:
            asyncio.run(engine.execute(node))
        except NodeFailed:
            return  # the plan failed before the block: nothing left to check


def assert_backtest_invariants(plan: Plan, series: Series, market: Market | None = None,
                               executors: Mapping[str, Executor] | None = None) -> None:
    """Backtest the plan with the executors and check what accrual and liquidation did to
    the books they built (LANGUAGE.md section 8):

    - the backtest runs to its end (no exception: every asset on the books is priced, every
      account is at a venue that can accrue and liquidate it);
    - no unsigned book goes negative, at the end and after any liquidation;
    - at every step supply interest is >= 0 and borrow interest <= 0 (the series' APRs are
      not negative), and the PnL parts add up exactly to the value change;
    - every liquidation is an SP501 event at a source line with its loss in USD (which may
      be negative: closing a perp whose losses exceed its margin wipes that deficit), and
      every failure names a code and a line;
    - a second backtest gives the same steps and events (an executor keeps no hidden state
      from one firing to the next that the books do not show).
    """
    from stratplan.interpreter.time.backtest import run_backtest
    from stratplan.interpreter.time.results import EXACT, PARTS

    def once() -> Any:
        try:
            return run_backtest(plan, market or default_market(), series, executors)
        except Exception as exc:
            raise InvariantError(f"the backtest raised {type(exc).__name__}: {exc}") from exc

    result = once()
    assert_no_negative(result.engine)
    previous = result.value_start
    for snap in result.snapshots:
        if snap.parts["supply_interest"] < 0 or snap.parts["borrow_interest"] > 0:
            raise InvariantError(f"interest with the wrong sign at {snap.time}: {snap.parts}")
        total = Decimal(0)
        for part in PARTS:
            total = EXACT.add(total, snap.parts[part])
        if total != EXACT.subtract(snap.value, previous):
            raise InvariantError(f"the PnL parts at {snap.time} do not add up to the value "
                                 "change")
        previous = snap.value
    for event in result.events:
        if event.kind == "liquidation":
            if event.code != "SP501" or not event.line or event.loss_usd is None:
                raise InvariantError(f"a liquidation without SP501, a line or a loss: {event}")
        elif event.kind == "failure" and (not event.code or not event.line):
            raise InvariantError(f"a failed firing without a code or a line: {event}")

    def trace(run: Any) -> list[Any]:
        return [(s.time, s.value, s.health, s.exposure) for s in run.snapshots] + \
            [(e.time, e.kind, e.name, e.code, e.message) for e in run.events]

    if trace(once()) != trace(result):
        raise InvariantError("two backtests of the same plan and series differ")


def check_executor(executor: Executor, plans: st.SearchStrategy[Plan] | None = None,
                   market: Market | None = None, max_examples: int = 100) -> None:
    """Fuzz an executor: every invariant on every drawn plan, and the backtest invariants
    over a drawn series; raises on the first breach."""
    from stratplan.interpreter.testing.strategies import series, valid_plans

    executors = dict(discover())
    for family in executor.families:
        executors[family] = executor
    strategy = plans if plans is not None else valid_plans(market=market, triggers=True)

    @settings(max_examples=max_examples, deadline=None, database=None)
    @given(strategy, st.randoms(use_true_random=False), st.data())
    def invariants(plan: Plan, rng: random.Random, data: st.DataObject) -> None:
        engine, dag = prepare(plan, market, executors)
        outcome = run_in_order(engine, dag)
        assert_no_negative(engine)
        assert_failure_located(outcome, dag)
        assert_order_independent(plan, rng, market, executors)
        blocks = atomic_blocks(plan)
        if blocks:
            phase_index, stmt_index = data.draw(st.sampled_from(blocks))
            block = plan.phases[phase_index].body[stmt_index]
            size = len(block.body) if isinstance(block, AtomicBlock) else 0
            position = data.draw(st.integers(0, size))
            assert_atomic_all_or_nothing(plan, phase_index, stmt_index, position, market,
                                         executors)
        drawn = data.draw(series(plan, market, max_rows=12))
        assert_backtest_invariants(plan, drawn, market, executors)

    invariants()
