"""Invariants over generated sound plans: atomic all-or-nothing, any topological order gives
the same state, value conserved up to fees, gas and slippage at fixed prices."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from stratplan.executors.accounts import portfolio_value
from stratplan.executors.protocol import ExecutionResult
from stratplan.interpreter.strategies import markets, valid_plans
from stratplan.interpreter.testing import (
    InvariantError,
    assert_atomic_all_or_nothing,
    assert_failure_located,
    assert_no_negative,
    assert_order_independent,
    atomic_blocks,
    check_executor,
    prepare,
    run_in_order,
)

TOLERANCE = Decimal("1e-12")


@given(valid_plans(), st.data())
def test_property_failing_atomic_block_restores_everything_but_gas(plan, data):
    blocks = atomic_blocks(plan)
    assume(blocks)
    phase_index, stmt_index = data.draw(st.sampled_from(blocks))
    size = len(plan.phases[phase_index].body[stmt_index].body)
    assert_atomic_all_or_nothing(plan, phase_index, stmt_index, data.draw(st.integers(0, size)))


@given(valid_plans(), st.randoms(use_true_random=False))
def test_property_every_topological_order_gives_the_same_state(plan, rng):
    assert_order_independent(plan, rng)


@given(valid_plans(), markets())
def test_property_value_is_conserved_up_to_costs(plan, market):
    engine, dag = prepare(plan, market)
    start = portfolio_value(engine.monitor, market)
    outcome = run_in_order(engine, dag)
    end = portfolio_value(engine.monitor, market)
    costs = engine.monitor.cost("fee") + engine.monitor.cost("slippage") + engine.monitor.gas_usd
    # Conservation holds whether or not the run completed (failed nodes keep only gas).
    assert abs(end - (start - costs)) <= TOLERANCE * max(start, Decimal(1)), outcome.failure


@given(valid_plans())
def test_property_valid_plans_run_to_completion_without_negative_balances(plan):
    engine, dag = prepare(plan)
    outcome = run_in_order(engine, dag)
    assert outcome.failure is None, outcome.failure
    assert_no_negative(engine)
    assert_failure_located(outcome, dag)
    assert engine.monitor.books["flash"] == {}


def test_check_executor_passes_the_builtin_executors():
    from stratplan.executors.cex import CexExecutor
    check_executor(CexExecutor(), max_examples=15)


class DriftingCexExecutor:
    """A buggy simulated exchange: its fills depend on how many trades came before, so the
    result depends on the order of trades that the DAG lets run at the same time."""

    families = frozenset({"cex_trade"})

    def __init__(self) -> None:
        self.trades = 0

    async def execute(self, order, ledger, market) -> ExecutionResult:
        self.trades += 1
        instr = order.instruction
        ledger.add("balance", instr.venue, instr.base, Decimal(self.trades))
        return ExecutionResult(amount=Decimal(self.trades))


def test_check_executor_catches_an_order_dependent_executor():
    with pytest.raises(InvariantError, match="different states"):
        check_executor(DriftingCexExecutor(), max_examples=100)
