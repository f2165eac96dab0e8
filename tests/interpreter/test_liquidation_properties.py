"""Properties of the v3 liquidations (issue 24; LANGUAGE.md section 9), over generated
accounts, prices and series:

- a call never raises the account's debt, and seizes no more than the repaid value *
  (1 + bonus) at oracle prices;
- after a step's liquidations, health is at least 1 or no collateral remains (in e-mode a
  50% call lowers health while it is between 0.95 and 0.9595, until the full close takes
  over);
- the PnL parts still add up exactly with bad debt written off.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.parser import parse
from stratplan.executors.accounts import (
    asset_terms,
    emode_in_use,
    health_factor,
    lending_terms,
)
from stratplan.executors.liquidation import (
    liquidate_lending,
    make_call,
    next_call,
    seizable_collateral,
    write_off,
)
from stratplan.executors.market import Market, default_market
from stratplan.executors.oracle import oracle_price
from stratplan.interpreter.monitor import PositionMonitor
from stratplan.interpreter.series.read import read_series
from stratplan.interpreter.time.backtest import PARTS, run_backtest
from tests.conftest import FLASH_LOOP_BODY

D = Decimal
MARKET = default_market()
SETTINGS = settings(deadline=None, max_examples=150,
                    suppress_health_check=[HealthCheck.too_slow])
# Rounding slack: amounts are 40-digit decimals of magnitude up to 1e7 USD.
SLACK = D("1e-25")


@st.composite
def accounts(draw) -> tuple[PositionMonitor, Market]:
    """An aave account (collateral of up to three assets, debts in one to three, e-mode
    or not by what it borrows) and a market where weETH's rate, ETH's price or aave's
    oracle feed moved: often liquidatable, sometimes past its collateral."""
    monitor = PositionMonitor()
    held = {"weETH": (0, 400), "WETH": (0, 300), "USDC": (0, 900_000)}
    for asset, (low, high) in held.items():
        if draw(st.booleans()):
            monitor.add("collateral", "aave", asset, D(draw(st.integers(low, high))) +
                        D(draw(st.integers(1, 99))) / 100)
    if not monitor.items("collateral", "aave"):
        monitor.add("collateral", "aave", "weETH", D(draw(st.integers(1, 400))))
    debts = draw(st.sampled_from([("WETH",), ("USDT",), ("USDT", "USDC"), ("WETH", "USDT")]))
    # Borrow close to the thresholds: the market's move decides the rest.
    with arithmetic():
        threshold = sum((amount * oracle_price(MARKET, "aave", asset) *
                         asset_terms(lending_terms(MARKET, "aave"), asset,
                                     emode_in_use(lending_terms(MARKET, "aave"), debts)
                                     ).liquidation_threshold
                         for asset, amount in monitor.items("collateral", "aave").items()),
                        D(0))
        target = threshold * D(draw(st.integers(80, 99))) / 100
        shares = [D(draw(st.integers(1, 10))) for _ in debts]
        for asset, share in zip(debts, shares, strict=True):
            usd = target * share / sum(shares)
            monitor.add("debt", "aave", asset, usd / MARKET.price(asset))
    rate = D(draw(st.integers(700, 1050))) / 1000
    eth = D(draw(st.integers(2500, 4200)))
    market = MARKET.model_copy(update={
        "prices": {**MARKET.prices, "ETH": eth, "WETH": eth, "weETH": eth * rate},
        "assets": {**MARKET.assets,
                   "weETH": MARKET.assets["weETH"].model_copy(update={"rate": rate})}})
    if draw(st.integers(0, 3)) == 0:  # a broken feed
        market.set_oracle_feed("weETH", D(draw(st.integers(1500, 4000))))
    return monitor, market


@SETTINGS
@given(accounts())
def test_property_a_call_never_raises_debt_and_seizes_at_most_repaid_value_plus_bonus(case):
    monitor, market = case
    with arithmetic():
        for _ in range(200):
            call = next_call(monitor, market, "aave")
            if call is None:
                break
            debts = dict(monitor.items("debt", "aave"))
            total = sum((a * oracle_price(market, "aave", t) for t, a in debts.items()), D(0))
            event = make_call(monitor, market, "aave", call)
            after = monitor.items("debt", "aave")
            assert all(after.get(asset, D(0)) <= owed for asset, owed in debts.items())
            assert set(after) <= set(debts)
            assert sum((a * oracle_price(market, "aave", t) for t, a in after.items()),
                       D(0)) <= total
            assert event.repaid is not None and event.seized is not None
            assert event.repaid > 0 and event.seized > 0
            seized_usd = event.seized * oracle_price(market, "aave", call.collateral)
            repaid_usd = event.repaid * oracle_price(market, "aave", call.debt)
            assert seized_usd <= repaid_usd * (1 + call.bonus) + SLACK
            if write_off(monitor, market, "aave") is not None:
                break


@SETTINGS
@given(accounts())
def test_property_after_the_steps_liquidations_health_is_one_or_no_collateral_remains(case):
    monitor, market = case
    with arithmetic():
        events = liquidate_lending(monitor, market, "aave")
        health = health_factor(monitor, market, "aave")
        assert health is None or health >= 1 or not seizable_collateral(monitor, market, "aave")
        if events and events[-1].kind == "bad_debt":
            assert monitor.items("debt", "aave") == {}
            assert not seizable_collateral(monitor, market, "aave")
        # Every call but a full close leaves at least 1,000 USD of its debt and collateral.
        assert all(e.kind in ("lending", "bad_debt") for e in events)


@SETTINGS
@given(st.integers(9400, 9594))
def test_property_in_emode_a_half_call_lowers_health_between_095_and_09595(basis):
    # 60 weETH against 48 WETH (e-mode 95%, bonus 1%) with aave's oracle set so that
    # health = basis / 10,000: one 50% call gives 2h - 0.9595 (lower while h < 0.9595).
    with arithmetic():
        health = D(basis) / 10_000
        market = MARKET.model_copy()
        market.set_oracle_feed("weETH", health * 48 * 3400 / (60 * D("0.95")))
        monitor = PositionMonitor()
        monitor.add("collateral", "aave", "weETH", D(60))
        monitor.add("debt", "aave", "WETH", D(48))
        call = next_call(monitor, market, "aave")
        assert call is not None
        make_call(monitor, market, "aave", call)
        after = health_factor(monitor, market, "aave")
        if health > D("0.95"):
            assert call.repaid == 24 and abs(after - (2 * health - D("0.9595"))) < SLACK
            assert after < health
        else:  # the full close: all 48 WETH, or all the collateral
            assert call.repaid == 48 or monitor.items("collateral", "aave") == {}


LOOP = "plan loop\n" + FLASH_LOOP_BODY + """trigger top when health(aave) < 1.1 {
  supply 0.001 weETH to aave
}
"""


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(2400, 4200), st.integers(600, 1060),
                          st.one_of(st.none(), st.integers(1500, 4000)),
                          st.integers(0, 600)), min_size=1, max_size=8))
def test_property_pnl_parts_add_up_exactly_with_bad_debt(rows):
    lines = ["time,price.ETH,price.WETH,rate.weETH,oracle.weETH,borrow.aave.WETH",
             "2024-01-01T00:00:00Z,3400,3400,1.05,,0.02"]
    for day, (eth, rate, feed, borrow) in enumerate(rows, start=1):
        lines.append(f"{1_704_067_200_000 + day * 86_400_000},{eth},{eth},"
                     f"{D(rate) / 1000},{'' if feed is None else feed},{D(borrow) / 1000}")
    plan = parse(LOOP, "loop.plan").plan
    assert plan is not None
    result = run_backtest(plan, MARKET, read_series(("\n".join(lines) + "\n").encode(), "s"))
    with localcontext() as context:
        context.prec = 400
        assert sum((result.pnl[p] for p in PARTS), D(0)) == result.pnl["total"] == \
            result.value_end - result.value_start
    written = [e for e in result.events if e.kind == "bad_debt"]
    if written:  # nothing is owed, and nothing accrues, after a write-off
        assert result.engine.monitor.items("debt", "aave") == {}
        # The part is minus every loss, a write-off's (negative) included, each step's sum
        # taken at 40 digits.
        losses = sum((e.loss_usd for e in result.events
                      if e.kind in ("liquidation", "bad_debt") and e.loss_usd is not None), D(0))
        assert abs(result.pnl["liquidations"] + losses) < D("1e-30") * (1 + abs(losses))
