"""Invariants over generated sound plans: atomic all-or-nothing, any topological order gives
the same state, value conserved up to fees, gas and slippage at fixed prices."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from stratplan.executors.accounts import portfolio_value
from stratplan.executors.contract import ContractExecutor
from stratplan.executors.protocol import ExecutionResult
from stratplan.interpreter.testing.executors import (
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
from stratplan.interpreter.testing.strategies import markets, valid_plans
from tests.conftest import ROOT

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
    # Its count of trades is state that outlives a run, so the random search may first
    # meet it as two backtests of one plan that differ (one trade) or as two orders of
    # the DAG that end apart (two trades at once): either is this executor caught.
    _caught(DriftingCexExecutor(), "different states", "two backtests of the same plan")


def _caught(executor, *needles: str) -> None:
    """check_executor raises InvariantError saying one of the `needles` (hypothesis groups
    several distinct breaches into an ExceptionGroup)."""
    with pytest.raises((InvariantError, ExceptionGroup)) as caught:
        check_executor(executor, max_examples=100)
    found = getattr(caught.value, "exceptions", (caught.value,))
    assert any(isinstance(e, InvariantError) and any(needle in str(e) for needle in needles)
               for e in found), found


class StrayDebtContractExecutor(ContractExecutor):
    """A buggy lending adapter: a borrow books its debt under another venue name
    (`aave_v2`, which the market does not know). The borrow's own checks pass and every
    order of the DAG ends alike; over time that debt cannot be liquidated."""

    def apply(self, order, ledger, market) -> ExecutionResult:
        instr = order.instruction
        result = super().apply(order, ledger, market)
        if instr.operation == "borrow":
            owed = ledger.get("debt", instr.venue, instr.token_in)
            ledger.add("debt", instr.venue, instr.token_in, -owed)
            ledger.add("debt", "aave_v2", instr.token_in, owed)
        return result


def test_check_executor_backtests_the_users_executor_through_accrual_and_liquidation():
    _caught(StrayDebtContractExecutor(), "backtest raised")


def test_backtest_invariants_hold_for_the_builtin_executors_through_a_liquidation():
    from stratplan.dsl.parser import parse
    from stratplan.interpreter.series.read import read_series
    from stratplan.interpreter.testing.executors import assert_backtest_invariants
    plan = parse((ROOT / "examples" / "leveraged_restaking_over_time.plan").read_text()).plan
    rows = ["time,price.ETH,price.weETH,supply.aave.weETH,borrow.aave.WETH"]
    for day, price in enumerate(["3570", "3300", "2900", "2500", "2400", "3570"]):
        rows.append(f"{day * 86_400_000},3400,{price},0.001,0.03")
    depeg = read_series(("\n".join(rows) + "\n").encode(), "depeg")
    assert_backtest_invariants(plan, depeg)
