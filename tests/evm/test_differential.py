"""The model proved against Aave's bytecode (DESIGN.md, "The model and the reference").

Hypothesis generates lending scenarios (tests/evm/strategies.py) and runs each with the
model alone and with the chain (tests/evm/harness.py). They must agree: every transaction
fails in the model exactly when it reverts on chain, balances, collateral and debt agree to
the wei (or 1e-18 of the amount), health agrees with Aave's getUserAccountData within its
8-decimal base currency and Aave's own formula to the wei, and each liquidation call repays
and seizes what the model says, to the wei.

Where they disagreed, the model was changed (the chain is right) and the counterexample is
kept below as an `@example`; docs/evm.md lists each. The number of examples follows the
Hypothesis profile: `ci` (the default) keeps the suite to a few minutes, `--hypothesis-
profile=long` runs it for as long as one cares to wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stratplan.executors.market import default_market
from tests.evm.harness import Scenario, scenario_market
from tests.evm.strategies import loop_block, scenarios

# A scenario costs about half a second of chain time: under the `ci` profile the EVM tests
# run 40 examples each (about two minutes for the three), under `long` as many as it says.
_PROFILE = settings()
EXAMPLES = _PROFILE.max_examples if _PROFILE.max_examples > 100 else 40
CHAIN = settings(max_examples=EXAMPLES, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@contextmanager
def sandbox(world: Any) -> Iterator[Scenario]:
    """A scenario on the session's chain, undone afterwards."""
    snapshot = world.chain.snapshot()
    market = world.market
    try:
        yield Scenario(world, scenario_market(default_market()), "")
    finally:
        world.chain.revert(snapshot)
        world.market = market


def play(world: Any, start: str, actions: list[tuple[str, Any]]) -> Scenario:
    """Run a scenario; the scenario with what it found."""
    snapshot = world.chain.snapshot()
    market = world.market
    try:
        scenario = Scenario(world, scenario_market(default_market()), start)
        for kind, value in actions:
            if kind == "phase":
                scenario.phase(value)
            elif kind == "price":
                scenario.move(prices={"ETH": (Decimal(3400) * value).quantize(Decimal(1)),
                                      "WETH": (Decimal(3400) * value).quantize(Decimal(1))})
            elif kind == "rate":
                scenario.move(rates={"weETH": (Decimal("1.05") * value).quantize(
                    Decimal("0.0001"))})
            elif kind == "wait":
                scenario.wait(value)
            elif kind == "liquidate":
                scenario.liquidate()
            if scenario.disagreements:
                break  # what follows a disagreement only repeats it
        return scenario
    finally:
        world.chain.revert(snapshot)
        world.market = market


def _report(scenario: Scenario) -> str:
    return "\n".join(f"action {d.action}: {d.kind}: {d.text}" for d in scenario.disagreements)


def agree(scenario: Scenario) -> None:
    """Fail, listing every disagreement, when model and chain disagreed."""
    if scenario.disagreements:
        pytest.fail("model and chain disagree:\n" + _report(scenario), pytrace=False)


LOOP = ("atomic loop via instadapp {{\n  flash borrow {flash} WETH from {lender}\n"
        "  unwrap all WETH\n  stake all ETH on etherfi -> weETH\n  supply all weETH to aave\n"
        "  {borrow}\n  flash repay all WETH to {lender}\n}}")


@CHAIN
@given(scenarios)
# Found by this test, fixed in the model (docs/evm.md, "What the proof found"):
# 1. `all` of nothing: the model supplied, withdrew or repaid 0; Aave reverts (InvalidAmount,
#    NoDebtOfSelectedType). Now SP104 in the model too.
@example(("wallet: 1 ETH", [("phase", "supply all USDC to aave")]))
@example(("wallet: 1 ETH", [("phase", "repay all WETH to aave")]))
@example(("wallet: 1 ETH", [("phase", "withdraw all weETH from aave")]))
# 2. `borrow max` was the exact LTV limit; Aave's integers (8-decimal USD, collateral down,
#    debt up) accept a few base units less: CollateralCannotCoverNewBorrow. Now Aave's.
@example(("wallet: 188 ETH, 900 USDC", [
    ("rate", Decimal("0.919")),
    ("phase", LOOP.format(flash="116.01", lender="balancer", borrow="borrow 116.01 WETH from aave")),
    ("phase", "borrow max USDC from aave")]))
@example(("wallet: 286 ETH, 61 WETH", [
    ("rate", Decimal("1.092")),
    ("phase", LOOP.format(flash="4.72", lender="balancer", borrow="borrow max WETH from aave"))]))
# 3. Interest over two steps with no action on the reserve in between: the chain accrued
#    the whole span linearly, the model step by step (1.6e-11 apart). The reference now
#    touches its reserves at every step, as a backtest on the chain does.
@example(("wallet: 145 ETH, 153 USDC", [
    ("phase", LOOP.format(flash="46.14", lender="aave", borrow="borrow 0.830 * collateral(aave, "
                          "weETH) * oracle(aave, weETH) / oracle(aave, WETH) WETH from aave")),
    ("wait", 115482), ("wait", 567512)]))
# 5. After time passed, Aave v3.6 credits a supply a wei less (its scaled balance rounds
#    down); through the 8-decimal base currency that wei can be 1e-8 USD less borrow room:
#    the model's own `borrow max` is then a base unit above the chain's. Kept within the
#    comparison's tolerance (harness.tolerance), not a model change.
@example(("wallet: 300 ETH, 80 WETH, 7749 USDC", [
    ("wait", 255),
    ("phase", "atomic batch via instadapp {\n  supply 0.029 * balance(wallet, USDC) USDC to aave"
              "\n  stake 0.017 * balance(wallet, ETH) ETH on etherfi -> weETH\n}"),
    ("phase", "borrow max WETH from aave\nsupply 1 * balance(wallet, USDC) USDC to aave")]))
def test_lending_scenarios_agree(world36: Any, case: tuple[str, list[tuple[str, Any]]]) -> None:
    start, actions = case
    scenario = play(world36, start, actions)
    agree(scenario)


@CHAIN
@given(st.integers(1, 100), loop_block(),
       st.sampled_from([("rate", Decimal("0.97")), ("rate", Decimal("0.94")),
                        ("rate", Decimal("0.9")), ("rate", Decimal("0.5")),
                        ("wait", 3 * 365 * 86400)]))
# 4. A call that takes the whole debt or the whole collateral, asked of Aave with the
#    model's amount rounded to the wei, left a wei of dust (MustNotLeaveDust): the harness's
#    liquidator now asks for all Aave allows there, as a liquidator does.
@example(7, LOOP.format(flash="1.00", lender="balancer", borrow="borrow max WETH from aave"),
         ("rate", Decimal("0.94")))
@example(67, LOOP.format(flash="25.95", lender="balancer", borrow="borrow max WETH from aave"),
         ("rate", Decimal("0.9")))
def test_leveraged_loops_and_their_liquidations_agree(
        world36: Any, equity: int, block: str, shock: tuple[str, Any]) -> None:
    # An entry, a fall of weETH's exchange rate (a slashing: the oracle follows it) or three
    # years of interest, then every call the model's liquidator makes, made on the chain.
    scenario = play(world36, f"wallet: {equity} ETH",
                    [("phase", block), shock, ("liquidate", None)])
    agree(scenario)


@CHAIN
# 6. Repaid when the whole collateral goes: held · p_c / (p_d · (1 + bonus)); a wei of weETH
#    (the model's exact stake against the chain's, rounded down) is 1,742 wei of 18-decimal
#    USDC there: compared as a wei of the dearer asset (harness.tolerance).
@example(2031, Decimal("0.495"), Decimal("0.46"))  # 945 wei of USDC apart
@given(st.integers(2_000, 2_000_000), st.decimals(min_value=Decimal("0.3"),
                                                  max_value=Decimal("0.74"), places=3),
       st.decimals(min_value=Decimal("0.4"), max_value=Decimal("0.99"), places=2))
def test_stablecoin_debt_liquidations_agree(world36: Any, usd: int, ltv: Decimal,
                                            fall: Decimal) -> None:
    # weETH against USDC debt (weETH's own terms): ETH falls, the liquidator repays USDC;
    # small positions are closed in full, large ones half at a time, a deep fall leaves
    # bad debt that Aave burns.
    eth = Decimal(usd) / Decimal(3400)
    body = (f"stake all ETH on etherfi -> weETH\nsupply all weETH to aave\n"
            f"borrow {ltv} * collateral(aave, weETH) * oracle(aave, weETH) / "
            "oracle(aave, USDC) USDC from aave")
    scenario = play(world36, f"wallet: {eth.quantize(Decimal('0.000001'))} ETH",
                    [("phase", body), ("price", fall), ("liquidate", None)])
    agree(scenario)
