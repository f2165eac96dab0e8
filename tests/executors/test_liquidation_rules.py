"""The venue rules of v3, one test per rule, the arithmetic written out (issue 24;
LANGUAGE.md section 9). Aave v3.3+ liquidations (executors/liquidation.py, one function per
rule), oracle prices (executors/oracle.py), perp brackets and spot fees."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from importlib import resources

import pytest

from stratplan.dsl import parse
from stratplan.dsl.decimals import arithmetic
from stratplan.executors.accounts import health_factor, perp_position
from stratplan.executors.liquidation import (
    choose_collateral,
    choose_debt,
    liquidate,
    liquidate_lending,
    liquidate_perp,
    max_repayable,
)
from stratplan.executors.market import Market, default_market, market_from_text
from stratplan.executors.oracle import oracle_price
from stratplan.executors.protocol import Options, Order
from stratplan.executors.registry import discover
from stratplan.interpreter.monitor import PositionMonitor

D = Decimal
MARKET = default_market()
MARKET_YAML = resources.files("stratplan.executors").joinpath(
    "data/default_market.yaml").read_text()
TINY = D("1e-30")


@pytest.fixture(autouse=True)
def _context():
    with arithmetic():  # as a run computes: 40 digits
        yield


def _market(rate: str | None = None, **prices: str) -> Market:
    """The built-in market at other prices, and rate(weETH) when given."""
    market = MARKET.model_copy(update={
        "prices": {**MARKET.prices, **{k: D(v) for k, v in prices.items()}},
        "assets": dict(MARKET.assets)})
    if rate is not None:
        market.assets["weETH"] = market.assets["weETH"].model_copy(update={"rate": D(rate)})
    return market


def _account(collateral: dict[str, str], debt: dict[str, str]) -> PositionMonitor:
    monitor = PositionMonitor()
    for asset, amount in collateral.items():
        monitor.add("collateral", "aave", asset, D(amount))
    for asset, amount in debt.items():
        monitor.add("debt", "aave", asset, D(amount))
    return monitor


def _do(text: str, monitor: PositionMonitor, market: Market):
    plan = parse(f"plan p\nphase a {{ {text} }}").plan
    assert plan is not None, text
    instr = plan.phases[0].body[0]
    value = instr.amount.kind if instr.amount.kind in ("all", "max") else instr.amount.value
    leverage = instr.leverage.value if getattr(instr, "leverage", None) is not None else None
    order = Order(instr, value, leverage=leverage, options=Options())
    return asyncio.run(discover()[instr.kind].execute(order, monitor, market))


# --- oracle prices ------------------------------------------------------------------------------


def test_aave_prices_weeth_at_eth_times_its_rate_not_at_its_market_price():
    # A one-hour depeg: weETH trades at 2,746 while ETH is 3,400 and rate(weETH) 1.05.
    depeg = _market(weETH="2746")
    assert oracle_price(depeg, "aave", "weETH") == 3400 * D("1.05") == 3570
    assert oracle_price(depeg, "aave", "WETH") == 3400  # `oracle: market`
    monitor = _account({"weETH": "60"}, {"WETH": "48"})
    # Health = 60 * 3,570 * 0.95 / (48 * 3,400) = 203,490 / 163,200, depeg or not.
    assert health_factor(monitor, depeg, "aave") == D(203_490) / D(163_200)
    assert liquidate(monitor, depeg) == []
    # A slashing is another matter: rate 0.8465 → 3,400 * 0.8465 = 2,878.10.
    slashed = _market(rate="0.8465")
    assert oracle_price(slashed, "aave", "weETH") == D("2878.1")
    assert health_factor(monitor, slashed, "aave") == \
        60 * D("2878.1") * D("0.95") / (48 * 3400)


def test_a_series_feed_overrides_the_rule_and_oracle_is_read_by_the_state_function():
    market = _market()
    market.set_oracle_feed("weETH", D(3000))
    assert oracle_price(market, "aave", "weETH") == 3000
    assert MARKET.oracle_feed() == {}  # the copy's feed is its own
    monitor = _account({"weETH": "10"}, {"WETH": "8"})
    assert health_factor(monitor, market, "aave") == 10 * D(3000) * D("0.95") / (8 * 3400)
    from stratplan.interpreter.evaluate import Scope, evaluate
    call = parse("plan p\nlet x = oracle(aave, weETH)\nphase a { wrap x ETH }").plan.lets[0].value
    assert evaluate(call, Scope(market=market)) == 3000
    assert evaluate(call, Scope(market=MARKET)) == 3570


def test_borrow_room_is_valued_at_oracle_prices():
    # 10 weETH supplied; weETH trades at 3,000 (a depeg) but aave values it at 3,570:
    # e-mode room = 10 * 3,570 * 0.93 = 33,201 USD = 9.765 WETH at 3,400.
    market = _market(weETH="3000")
    monitor = PositionMonitor()
    monitor.seed("wallet", "weETH", D(10))
    _do("supply all weETH to aave", monitor, market)
    _do("borrow max WETH from aave", monitor, market)
    assert monitor.get("debt", "aave", "WETH") == D(33_201) / 3400


# --- rule 1: which debt, which collateral ---------------------------------------------------


def test_the_liquidator_repays_the_largest_debt_and_seizes_the_largest_bonus():
    # Own terms (USDT, USDC borrowed: no e-mode). Debts: 30,000 USDT and 40,000 USDC.
    # Collateral: 5 weETH = 17,850 USD (bonus 7.5%) and 20 WETH = 68,000 USD (bonus 5%).
    monitor = _account({"weETH": "5", "WETH": "20"}, {"USDT": "30000", "USDC": "40000"})
    assert choose_debt(monitor, MARKET, "aave") == "USDC"
    assert choose_collateral(monitor, MARKET, "aave") == "weETH"  # not the larger WETH
    # A tie on the bonus goes to the larger value: USDT 4.5% and USDC 4.5% as collateral.
    tie = _account({"USDT": "1000", "USDC": "3000"}, {"WETH": "1"})
    assert choose_collateral(tie, MARKET, "aave") == "USDC"


def test_the_collateral_with_the_largest_bonus_makes_the_loss_half_again_larger():
    # 31 weETH (3,150: 97,650 USD, bonus 7.5%) and 40 WETH (3,000: 120,000, bonus 5%)
    # against 177,000 USDT. Threshold = 97,650 * 0.75 + 120,000 * 0.83 = 172,837.5;
    # health = 172,837.5 / 177,000 = 0.97648. Half the debt, 88,500 USDT, is repaid with
    # weETH worth 88,500 * 1.075 = 95,137.5 USD (v2 took WETH first: 92,925, a loss of
    # 4,425; the liquidator's choice costs 6,637.5, 1.5 times as much).
    market = _market(ETH="3000", WETH="3000", weETH="3150")
    monitor = _account({"weETH": "31", "WETH": "40"}, {"USDT": "177000"})
    assert health_factor(monitor, market, "aave") == D("172837.5") / 177_000
    [event] = liquidate_lending(monitor, market, "aave")
    assert (event.collateral, event.asset, event.repaid) == ("weETH", "USDT", 88_500)
    assert event.seized == D("95137.5") / 3150
    assert abs(event.loss_usd - D("6637.5")) < TINY


# --- rule 2: how much ---------------------------------------------------------------------------


def test_the_close_factor_applies_to_the_total_debt():
    # 30 weETH at rate 0.975 (3,315: 99,450 USD, threshold 74,587.5) against 40,000 USDT
    # and 35,000 USDC: health 0.9945. Half the *total* debt, 37,500, is repaid in USDT
    # (v2: half the largest, 20,000). Seized: 37,500 * 1.075 / 3,315 weETH.
    market = _market(rate="0.975", weETH="3315")
    monitor = _account({"weETH": "30"}, {"USDT": "40000", "USDC": "35000"})
    assert health_factor(monitor, market, "aave") == D("74587.5") / 75_000
    [event] = liquidate_lending(monitor, market, "aave")
    assert (event.asset, event.repaid) == ("USDT", 37_500)
    assert event.seized == 37_500 * D("1.075") / 3315
    assert monitor.get("debt", "aave", "USDT") == 2_500
    assert health_factor(monitor, market, "aave") == \
        (D("74587.5") - 37_500 * D("1.075") * D("0.75")) / 37_500  # 1.18275
    # With 30,000 USDT and 45,000 USDC the liquidator takes USDC (the largest): 50% of the
    # 75,000 total is 37,500, less than its 45,000. A debt below 50% of the total is
    # repaid whole: 30,000 USDT.
    other = _account({"weETH": "30"}, {"USDT": "30000", "USDC": "45000"})
    assert choose_debt(other, market, "aave") == "USDC"
    assert max_repayable(other, market, "aave", "USDC", "weETH", D("0.9945")) == 37_500
    assert max_repayable(other, market, "aave", "USDT", "weETH", D("0.9945")) == 30_000


def test_at_health_exactly_095_the_whole_debt_may_be_repaid():
    # 20 weETH (71,400 USD, threshold 53,550) against 53,550 / 0.95 USDT: health 0.95.
    owed = D(3570) * 20 * D("0.75") / D("0.95")
    monitor = _account({"weETH": "20"}, {"USDT": str(owed)})
    assert health_factor(monitor, MARKET, "aave") == D("0.95")
    [event] = liquidate_lending(monitor, MARKET, "aave")
    assert event.repaid == owed and monitor.get("debt", "aave", "USDT") == 0
    assert event.seized == owed * D("1.075") / 3570


def test_under_2000_usd_the_whole_debt_may_be_repaid():
    # 0.7 weETH (2,499 USD, threshold 1,874.25) against 1,950 USDT: health 0.96115, above
    # 0.95, but the debt is worth less than 2,000: all 1,950 is repaid (v2: 975).
    monitor = _account({"weETH": "0.7"}, {"USDT": "1950"})
    assert health_factor(monitor, MARKET, "aave") == D("1874.25") / 1950
    [event] = liquidate_lending(monitor, MARKET, "aave")
    assert event.repaid == 1950 and event.seized == 1950 * D("1.075") / 3570
    # The same when the chosen collateral is worth less than 2,000: 0.5 weETH (1,785 USD)
    # and 1 WETH (3,400) against 4,300 USDT: weETH is chosen (7.5% > 5%), all 4,300 may be
    # repaid, but 1,785 USD of weETH covers only 1,785 / 1.075.
    small = _account({"weETH": "0.5", "WETH": "1"}, {"USDT": "4300"})
    assert health_factor(small, MARKET, "aave") == (D("1338.75") + D("2822")) / 4300  # 0.9676
    assert max_repayable(small, MARKET, "aave", "USDT", "weETH",
                         health_factor(small, MARKET, "aave")) == 4300
    first = liquidate_lending(small, MARKET, "aave")[0]
    assert first.seized == D("0.5") and first.repaid == D(1785) / D("1.075")


# --- rule 3: what it seizes ----------------------------------------------------------------------


def test_the_collateral_covers_the_repayment_plus_the_bonus_or_all_of_it_is_taken():
    # E-mode (WETH borrowed): bonus 1%. 60 weETH against 48 WETH, oracle fed at 2,700:
    # health 0.943 <= 0.95: the whole 48 WETH may be repaid, which needs 163,200 * 1.01 USD
    # of weETH; 162,000 USD is all there is: all seized, 162,000 / 1.01 USD repaid.
    market = _market(weETH="2700")
    market.set_oracle_feed("weETH", D(2700))
    monitor = _account({"weETH": "60"}, {"WETH": "48"})
    call, bad = liquidate_lending(monitor, market, "aave")
    assert call.seized == 60 and call.repaid == 60 * D(2700) / (3400 * D("1.01"))
    assert bad.kind == "bad_debt"


# --- rule 4: no dust -----------------------------------------------------------------------------


def test_a_call_leaves_1000_usd_of_both_or_none_of_either():
    # 3,000 USD of weETH and 3,200 USD of WETH against 5,000 USDT: threshold 2,250 + 2,656
    # = 4,906, health 0.9812. Half the debt, 2,500, would seize 2,687.5 USD of weETH and
    # leave 312.5: the liquidator repays the most that leaves 1,000,
    # min(5,000 - 1,000, (3,000 - 1,000) / 1.075) = 1,860.4651 USDT, for 2,000 USD of weETH.
    monitor = _account({"weETH": str(D(3000) / 3570), "WETH": str(D(3200) / 3400)},
                       {"USDT": "5000"})
    [event] = liquidate_lending(monitor, MARKET, "aave")
    assert event.repaid == D(2000) / D("1.075")
    assert abs(monitor.get("collateral", "aave", "weETH") * 3570 - 1000) < TINY
    assert monitor.get("debt", "aave", "USDT") == 5000 - D(2000) / D("1.075")


def test_when_no_amount_leaves_enough_there_is_no_call():
    # A market asking 5,000 USD left of each: 3,000 USD of weETH can never leave it.
    text = MARKET_YAML.replace("    emode:", "    liquidation: {min_leftover_usd: 5000}\n    emode:", 1)
    market = market_from_text(text, "m.yaml")
    assert market.venues["aave"].liquidation.min_leftover_usd == 5000
    monitor = _account({"weETH": str(D(3000) / 3570), "WETH": str(D(3200) / 3400)},
                       {"USDT": "5000"})
    assert health_factor(monitor, market, "aave") < 1
    assert liquidate_lending(monitor, market, "aave") == []
    assert monitor.get("debt", "aave", "USDT") == 5000


# --- repeated calls and bad debt -------------------------------------------------------------


def test_calls_repeat_within_the_step_until_health_is_back_above_one():
    # v3_cascade: 30 weETH against 25 WETH (e-mode: 95%, bonus 1%), rate 0.8465: health
    # 30 * 2,878.1 * 0.95 / 85,000 = 0.96501. Each 50% call gives h' = 2h - 0.95 * 1.01:
    # 0.96501 → 0.97052 → 0.98154 → 1.00358, repaying 12.5, 6.25 and 3.125 WETH.
    market = _market(rate="0.8465", weETH="2878.1")
    monitor = _account({"weETH": "30"}, {"WETH": "25"})
    events = liquidate_lending(monitor, market, "aave")
    assert [e.repaid for e in events] == [D("12.5"), D("6.25"), D("3.125")]
    health = D(30) * D("2878.1") * D("0.95") / 85_000
    for _ in events:
        health = 2 * health - D("0.9595")
    assert abs(health_factor(monitor, market, "aave") - health) < TINY
    assert health == D("1.00358")


def test_in_emode_a_call_between_095_and_09595_lowers_health_until_the_full_close():
    # The flash-loan loop (59.98731... weETH against 48 WETH) with aave's oracle at 2,746:
    # health 0.95888 lies between 0.95 and 0.9595, so each 50% call lowers it
    # (h' = 2h - 0.9595): 0.95826, 0.95701, 0.95452, 0.94955, then the full close at
    # health <= 0.95 takes all the collateral and the rest of the debt is written off.
    # v2 made one call (24 WETH) and left the loop at 0.95826.
    market = _market(weETH="2746")
    market.set_oracle_feed("weETH", D(2746))
    weeth = (15 - D("0.01332") + 48) / D("1.05")
    monitor = _account({"weETH": str(weeth)}, {"WETH": "48"})
    events = liquidate_lending(monitor, market, "aave")
    assert [e.kind for e in events] == ["lending"] * 5 + ["bad_debt"]
    assert [e.repaid for e in events[:4]] == [24, 12, 6, 3]
    health = weeth * 2746 * D("0.95") / (48 * 3400)
    for _ in range(4):
        assert D("0.95") < health < D("0.9595")
        health = 2 * health - D("0.9595")
    assert health <= D("0.95")
    # The fifth call takes what the first four left: 45 WETH repaid took 45 * 3,400 * 1.01
    # / 2,746 weETH.
    assert abs(events[4].seized - (weeth - 45 * 3400 * D("1.01") / 2746)) < TINY
    assert monitor.items("collateral", "aave") == {} and monitor.items("debt", "aave") == {}


def test_bad_debt_is_written_off_with_its_event():
    # v3_bad_debt: 30 weETH against 25 WETH, rate 0.8 (weETH at 2,720): health 0.9118.
    # All 25 WETH may be repaid, but 81,600 USD of weETH covers 81,600 / 1.01 = 80,792.08
    # USD: 23.762376 WETH. The other 1.237624 WETH (4,207.92 USD) is written off.
    market = _market(rate="0.8", weETH="2720")
    monitor = _account({"weETH": "30"}, {"WETH": "25"})
    before = D(30) * 2720 - 25 * 3400
    call, bad = liquidate_lending(monitor, market, "aave")
    repaid = D(81_600) / D("1.01") / 3400
    assert abs(call.repaid - repaid) < TINY and call.seized == 30
    assert abs(call.loss_usd - (81_600 - repaid * 3400)) < D("1e-30")
    assert bad.kind == "bad_debt" and abs(bad.written_off_usd - (25 - repaid) * 3400) < TINY
    assert bad.loss_usd == -bad.written_off_usd
    assert monitor.items("debt", "aave") == {} and monitor.items("collateral", "aave") == {}
    # The two losses are the value change: before - 0.
    assert abs(call.loss_usd + bad.loss_usd - before) < TINY


# --- perps ---------------------------------------------------------------------------------------

BRACKETS_MARKET = """\
prices: {BTC: 67800, ETH: 3400, USDT: 1}
gas: {price_gwei: 20, base_tx: 21000}
venues:
  wallet: {kind: wallet}
  binance:
    kind: cex
    taker_fee: 5bps
    spot_taker_fee: 10bps
    max_leverage: 20
    maintenance: {BTC/USDT: [[0, 0.4%, 0], [50_000, 0.5%, 50], [250_000, 1%, 1_300], [1_000_000, 2.5%, 16_300]]}
    markets: {spot: [BTC/USDT], perp: [BTC/USDT]}
"""


def _short(size: int, leverage: int, market: Market) -> PositionMonitor:
    monitor = PositionMonitor()
    monitor.add("position", "binance", "BTC/USDT", D(-size))
    monitor.add("entry", "binance", "BTC/USDT", D(67800))
    monitor.add("margin", "binance", "BTC/USDT", D(size) * 67800 / leverage)
    return monitor


def test_maintenance_margin_is_that_of_the_bracket_the_notional_is_in():
    market = market_from_text(BRACKETS_MARKET, "m.yaml")
    # 14 BTC at 67,800: 949,200 USDT, in the 1% bracket: 9,492 - 1,300 = 8,192.
    assert perp_position(_short(14, 10, market), market, "binance", "BTC/USDT").maintenance \
        == D(949_200) * D("0.01") - 1_300
    # At 73,900 the notional is 1,034,600, in the 2.5% bracket: 25,865 - 16,300 = 9,565.
    high = market.model_copy(update={"prices": {**market.prices, "BTC": D(73_900)}})
    assert perp_position(_short(14, 10, market), high, "binance", "BTC/USDT").maintenance == 9_565


def test_the_liquidation_price_is_solved_in_the_bracket_in_force_at_that_price():
    market = market_from_text(BRACKETS_MARKET, "m.yaml")
    # v3_perp_brackets: 94,920 - 14 (P - 67,800) = 14 P * 2.5% - 16,300
    # → P = (949,200 + 94,920 + 16,300) / 14.35 = 73,896.86 (notional 1,034,556: 2.5%).
    position = perp_position(_short(14, 10, market), market, "binance", "BTC/USDT")
    assert position.liquidation_price == D(1_060_420) / D("14.35")
    flat = perp_position(_short(14, 10, MARKET), MARKET, "binance", "BTC/USDT")
    assert flat.liquidation_price == D(1_044_120) / D("14.07")  # one 0.5% bracket: 74,208.96
    # 100 BTC at 20x: 339,000 margin. Flat 0.5%: 7,119,000 / 100.5 = 70,835.82 (+4.48%);
    # brackets: 7,135,300 / 102.5 = 69,612.68 (+2.67%, Binance's).
    big = perp_position(_short(100, 20, market), market, "binance", "BTC/USDT")
    assert big.liquidation_price == D(7_135_300) / D("102.5")
    assert perp_position(_short(100, 20, MARKET), MARKET, "binance",
                         "BTC/USDT").liquidation_price == D(7_119_000) / D("100.5")
    # A long: 1 BTC at 10x (6,780 margin); at its liquidation price the notional is in the
    # 0.5% bracket (50,000 to 250,000, amount 50): 6,780 + (P - 67,800) = P * 0.5% - 50
    # → P = 60,970 / 0.995 = 61,276.38.
    long = PositionMonitor()
    long.add("position", "binance", "BTC/USDT", D(1))
    long.add("entry", "binance", "BTC/USDT", D(67800))
    long.add("margin", "binance", "BTC/USDT", D(6780))
    assert perp_position(long, market, "binance", "BTC/USDT").liquidation_price == \
        D(60_970) / D("0.995")


def test_the_perp_is_liquidated_by_its_bracket():
    market = market_from_text(BRACKETS_MARKET, "m.yaml")
    at = {price: market.model_copy(update={"prices": {**market.prices, "BTC": D(price)}})
          for price in (73_850, 73_900)}
    monitor = _short(14, 10, market)
    # At 73,850: equity 94,920 - 14 * 6,050 = 10,220, maintenance (notional 1,033,900, the
    # 2.5% bracket) 25,847.5 - 16,300 = 9,547.5: it stays open.
    equity = D(94_920) - 14 * (73_850 - 67_800)
    maintenance = 14 * D(73_850) * D("0.025") - 16_300
    assert (equity, maintenance) == (D(10_220), D("9547.5"))
    assert liquidate_perp(monitor, at[73_850], "binance", "BTC/USDT") is None
    event = liquidate_perp(monitor, at[73_900], "binance", "BTC/USDT")
    assert event is not None and event.side == "buy" and event.repaid == 14
    # The loss is the margin + unrealised PnL: 94,920 - 14 * 6,100 = 9,520 USDT.
    assert event.loss_usd == 9_520


def test_spot_trades_pay_the_spot_taker_fee_and_perps_the_taker_fee():
    market = market_from_text(BRACKETS_MARKET, "m.yaml")
    monitor = PositionMonitor()
    monitor.seed("binance", "USDT", D(1_050_000))
    _do("spot buy 14 BTC/USDT on binance", monitor, market)
    # 10 bps of the 14 BTC received: 0.014 BTC (949.20 USD at 67,800).
    assert monitor.get("balance", "binance", "BTC") == 14 - D("0.014")
    assert monitor.cost("fee") == D("0.014") * 67_800
    _do("perp sell 14 BTC/USDT on binance leverage 10x", monitor, market)
    # 5 bps of the 949,200 notional: 474.60 USDT.
    assert monitor.cost("fee") == D("949.2") + D("474.6")
    assert monitor.get("balance", "binance", "USDT") == \
        1_050_000 - 949_200 - 94_920 - D("474.6")
