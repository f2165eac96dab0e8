"""Invariants over generated sound plans: atomic all-or-nothing, any topological order gives
the same state, and value is conserved up to fees, gas and slippage at fixed prices."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hypothesis import assume, given
from hypothesis import strategies as st

from dsl.models import AtomicBlock, Number, SmartContractInstruction
from dsl.spans import Span
from dsl.strategies import markets, valid_plans
from executors.accounts import portfolio_value
from executors.market import default_market
from executors.registry import discover
from interpreter.dag import build_dag
from interpreter.engine import Engine, NodeFailed

SPAN = Span(line=1, column=1, end_line=1, end_column=1)
TOLERANCE = Decimal("1e-12")


def _engine(plan, market=None):
    engine = Engine(plan, market or default_market(), discover())
    return engine, build_dag(plan, engine.scope)


def _without_gas(snapshot):
    books = {k: dict(v) for k, v in snapshot.items()}
    books["balance"].pop(("wallet", "ETH"), None)
    return books


@given(valid_plans(), st.data())
def test_property_failing_atomic_block_restores_everything_but_gas(plan, data):
    blocks = [(i, p, j) for i, p in enumerate(plan.phases) for j, s in enumerate(p.body)
              if isinstance(s, AtomicBlock) and s.body]
    assume(blocks)
    phase_index, phase, stmt_index = data.draw(st.sampled_from(blocks))
    block = phase.body[stmt_index]
    # Withdrawing a huge amount fails whatever came before it in the block.
    poison = SmartContractInstruction(operation="withdraw", token_in="weETH", venue="aave",
                                      amount=Number(value=Decimal(10**9), text="1000000000",
                                                    span=SPAN), span=SPAN)
    position = data.draw(st.integers(0, len(block.body)))
    body = (*block.body[:position], poison, *block.body[position:])
    new_block = block.model_copy(update={"body": body})
    new_phase = phase.model_copy(update={"body": (*phase.body[:stmt_index], new_block,
                                                  *phase.body[stmt_index + 1:])})
    plan = plan.model_copy(update={"phases": (*plan.phases[:phase_index], new_phase,
                                              *plan.phases[phase_index + 1:])})
    engine, dag = _engine(plan)
    for node in dag.nodes:
        if node.statement is new_block:
            before = engine.monitor.snapshot()
            eth_before = engine.monitor.get("balance", "wallet", "ETH")
            gas_before = engine.monitor.gas_eth
            try:
                asyncio.run(engine.execute(node))
            except NodeFailed as failed:
                assert failed.code in ("SP300", "SP301")
            else:
                raise AssertionError("the poisoned block must fail")
            after = engine.monitor.snapshot()
            assert _without_gas(after) == _without_gas(before)
            paid = engine.monitor.gas_eth - gas_before
            assert paid > 0
            assert engine.monitor.get("balance", "wallet", "ETH") == eth_before - paid
            return
        asyncio.run(engine.execute(node))
    raise AssertionError("the poisoned block was never reached")


@given(valid_plans(), st.randoms(use_true_random=False))
def test_property_every_topological_order_gives_the_same_state(plan, rng):
    reference, dag = _engine(plan)
    outcome = asyncio.run(reference.run_sequential(dag.nodes))
    assert outcome.failure is None
    engine, dag = _engine(plan)
    graph = dag.graph
    waiting = {n: graph.in_degree(n) for n in graph.nodes}
    ready = [n for n, d in waiting.items() if d == 0]
    nodes = dag.by_id()
    order = []
    while ready:
        node_id = ready.pop(rng.randrange(len(ready)))
        order.append(node_id)
        for succ in graph.successors(node_id):
            waiting[succ] -= 1
            if waiting[succ] == 0:
                ready.append(succ)
    assert len(order) == len(dag.nodes)
    outcome = asyncio.run(engine.run_sequential(nodes[n] for n in order))
    assert outcome.failure is None
    assert engine.monitor.snapshot() == reference.monitor.snapshot()


@given(valid_plans(), markets())
def test_property_value_is_conserved_up_to_costs(plan, market):
    engine, dag = _engine(plan, market)
    start = portfolio_value(engine.monitor, market)
    outcome = asyncio.run(engine.run_sequential(dag.nodes))
    end = portfolio_value(engine.monitor, market)
    costs = engine.monitor.cost("fee") + engine.monitor.cost("slippage") + engine.monitor.gas_usd
    # Conservation holds whether or not the run completed (failed nodes keep only gas).
    assert abs(end - (start - costs)) <= TOLERANCE * max(start, Decimal(1)), outcome.failure


@given(valid_plans())
def test_property_valid_plans_run_to_completion_without_negative_balances(plan):
    engine, dag = _engine(plan)
    outcome = asyncio.run(engine.run_sequential(dag.nodes))
    assert outcome.failure is None, outcome.failure
    for book in ("balance", "collateral", "debt", "margin", "flash"):
        assert all(v >= 0 for v in engine.monitor.books[book].values())
    assert engine.monitor.books["flash"] == {}
