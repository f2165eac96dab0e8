"""Venue mechanics of v2 (issue 12): e-mode, perp entry price, realised PnL and liquidation
price, the lending liquidation price, and the carry; the arithmetic is written out."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from stratplan.dsl import parse
from stratplan.dsl.decimals import arithmetic
from stratplan.executors.accounts import (
    collateral_liquidation_price,
    emode_in_use,
    exposure,
    lending_account,
    lending_terms,
    liquidation_bonus,
    perp_position,
)
from stratplan.executors.errors import ExecutionError
from stratplan.executors.market import Market, default_market, market_from_text
from stratplan.executors.protocol import Options, Order
from stratplan.executors.rates import carry, fundings_per_year
from stratplan.executors.registry import discover
from stratplan.interpreter.monitor import PositionMonitor

MARKET = default_market()


@pytest.fixture(autouse=True)
def _context():
    with arithmetic():  # as a run computes: 40 digits
        yield


def _do(text: str, monitor: PositionMonitor, market: Market = MARKET, **extra):
    plan = parse(f"plan p\nphase a {{ {text} }}").plan
    assert plan is not None, text
    instr = plan.phases[0].body[0]
    value = instr.amount.kind if instr.amount.kind in ("all", "max") else instr.amount.value
    leverage = instr.leverage.value if getattr(instr, "leverage", None) is not None else None
    order = Order(instr, value, leverage=leverage, options=Options(), **extra)
    return asyncio.run(discover()[instr.kind].execute(order, monitor, market))


def _priced(**prices: int | str) -> Market:
    """The default market with other prices (a later instant)."""
    return MARKET.model_copy(update={"prices": {**MARKET.prices,
                                                **{k: Decimal(v) for k, v in prices.items()}}})


# --- e-mode ---------------------------------------------------------------------------------


def test_emode_is_used_exactly_when_everything_borrowed_is_in_the_category():
    aave = lending_terms(MARKET, "aave")
    assert emode_in_use(aave, []) is None  # nothing borrowed: the assets' own terms
    assert emode_in_use(aave, ["WETH"]) == "eth"
    assert emode_in_use(aave, ["USDT"]) is None
    assert emode_in_use(aave, ["WETH", "USDT"]) is None


def test_a_borrow_is_judged_with_itself_included():
    monitor = PositionMonitor()
    monitor.seed("wallet", "weETH", Decimal(10))
    _do("supply all weETH to aave", monitor)
    # 10 weETH = 35,700 USD. Borrowing WETH: e-mode eth, 93%; borrowing USDT: weETH's 72.5%.
    assert lending_account(monitor, MARKET, "aave", "WETH").borrow_room_usd == \
        Decimal(35_700) * Decimal("0.93")
    assert lending_account(monitor, MARKET, "aave", "USDT").borrow_room_usd == \
        Decimal(35_700) * Decimal("0.725")
    _do("borrow max USDT from aave", monitor)
    assert monitor.get("debt", "aave", "USDT") == Decimal(35_700) * Decimal("0.725")
    account = lending_account(monitor, MARKET, "aave")
    assert account.emode is None
    assert account.health == Decimal("0.75") / Decimal("0.725")  # own threshold / own LTV
    # With USDT owed, no WETH may be borrowed even though WETH alone would get 93%.
    with pytest.raises(ExecutionError) as error:
        _do("borrow 1 WETH from aave", monitor)
    assert error.value.code == "SP305"
    assert "not all in one e-mode category" in error.value.message


def test_withdraw_health_uses_the_emode_in_use():
    monitor = PositionMonitor()
    monitor.seed("wallet", "weETH", Decimal(10))
    _do("supply all weETH to aave", monitor)
    _do("borrow 8 WETH from aave", monitor)  # e-mode: 35,700 * 0.93 = 33,201 > 27,200
    # Withdrawing 1 weETH: 9 * 3,570 * 0.95 / 27,200 = 1.1221... (below 1 at 75%).
    _do("withdraw 1 weETH from aave", monitor)
    assert lending_account(monitor, MARKET, "aave").health == \
        9 * Decimal(3570) * Decimal("0.95") / (8 * 3400)


def test_liquidation_bonus_follows_the_emode():
    monitor = PositionMonitor()
    monitor.seed("wallet", "weETH", Decimal(10))
    _do("supply all weETH to aave", monitor)
    assert liquidation_bonus(monitor, MARKET, "aave", "weETH") == Decimal("0.075")  # own
    _do("borrow 1 WETH from aave", monitor)
    assert liquidation_bonus(monitor, MARKET, "aave", "weETH") == Decimal("0.01")  # e-mode


def test_lending_liquidation_price_brings_health_to_one():
    monitor = PositionMonitor()
    monitor.seed("wallet", "weETH", Decimal(10))
    monitor.seed("wallet", "WETH", Decimal(2))
    _do("supply all weETH to aave", monitor)
    _do("supply all WETH to aave", monitor)
    _do("borrow 11 WETH from aave", monitor)
    # Others fixed (2 WETH at 3,400): p * 10 * 0.95 + 2 * 3,400 * 0.95 = 11 * 3,400.
    price = collateral_liquidation_price(monitor, MARKET, "aave", "weETH")
    assert price == (11 * 3400 - 2 * Decimal(3400) * Decimal("0.95")) / (10 * Decimal("0.95"))
    # v3: p is aave's oracle price of weETH (ETH * rate); its market price does not move
    # health, an oracle feed at p does.
    assert lending_account(monitor, _priced(weETH=str(price)), "aave").health != 1
    fed = MARKET.model_copy()
    fed.set_oracle_feed("weETH", price)
    assert lending_account(monitor, fed, "aave").health == 1
    # WETH is collateral and debt: p * (2 * 0.95 - 11) < 0, a WETH move cannot liquidate it.
    assert collateral_liquidation_price(monitor, MARKET, "aave", "WETH") is None


def test_no_debt_no_liquidation_price():
    monitor = PositionMonitor()
    monitor.seed("wallet", "weETH", Decimal(1))
    _do("supply all weETH to aave", monitor)
    assert collateral_liquidation_price(monitor, MARKET, "aave", "weETH") is None
    assert lending_account(monitor, MARKET, "aave").health is None


# --- spot fees --------------------------------------------------------------------------------


def test_a_venue_with_spot_fee_quote_takes_the_fee_in_usdt():
    quote_fee = MARKET.model_copy(update={"venues": {
        **MARKET.venues,
        "binance": MARKET.venues["binance"].model_copy(update={"spot_fee": "quote"})}})
    monitor = PositionMonitor()
    monitor.seed("binance", "USDT", Decimal(10_000))
    _do("spot buy 1 ETH/USDT on binance", monitor, quote_fee)
    assert monitor.get("balance", "binance", "ETH") == 1
    assert monitor.get("balance", "binance", "USDT") == 10_000 - 3400 * Decimal("1.0004")
    assert monitor.cost("fee") == 3400 * Decimal("0.0004")


# --- perps ------------------------------------------------------------------------------------


def test_perp_entry_price_is_size_weighted_and_a_reduce_realises_pnl():
    monitor = PositionMonitor()
    monitor.seed("okx", "USDT", Decimal(100_000))
    _do("perp buy 1 ETH/USDT on okx leverage 5x", monitor)
    at_3600 = _priced(ETH=3600)
    _do("perp buy 1 ETH/USDT on okx leverage 5x", monitor, at_3600)
    # Entry = (1 * 3,400 + 1 * 3,600) / 2; margin = 3,400 / 5 + 3,600 / 5.
    assert monitor.get("entry", "okx", "ETH/USDT") == 3500
    assert monitor.get("margin", "okx", "ETH/USDT") == 680 + 720
    at_3800 = _priced(ETH=3800)
    free = monitor.get("balance", "okx", "USDT")
    _do("perp sell 0.5 ETH/USDT on okx", monitor, at_3800)
    # Realised: 0.5 * (3,800 - 3,500) = 150; released: a quarter of 1,400; fee 0.5 * 3,800 *
    # 0.0004 = 0.76. The entry price stays 3,500 for what is left.
    assert monitor.get("balance", "okx", "USDT") == free + 150 + 350 - Decimal("0.76")
    assert monitor.get("margin", "okx", "ETH/USDT") == 1050
    assert monitor.get("entry", "okx", "ETH/USDT") == 3500
    assert monitor.get("position", "okx", "ETH/USDT") == Decimal("1.5")
    # A sell larger than the position closes it and opens a short at the trade's price.
    _do("perp sell 2 ETH/USDT on okx leverage 5x", monitor, at_3800)
    assert monitor.get("position", "okx", "ETH/USDT") == Decimal("-0.5")
    assert monitor.get("entry", "okx", "ETH/USDT") == 3800
    assert monitor.get("margin", "okx", "ETH/USDT") == Decimal("0.5") * 3800 / 5


def test_perp_liquidation_price_long_and_short():
    monitor = PositionMonitor()
    monitor.seed("binance", "USDT", Decimal(100_000))
    _do("perp buy 2 ETH/USDT on binance leverage 10x", monitor)
    long = perp_position(monitor, MARKET, "binance", "ETH/USDT")
    # Long: margin + size * (P - entry) = 0.005 * size * P  =>  P = (entry - margin / size)
    # / (1 - 0.005) = (3,400 - 340) / 0.995.
    assert long.liquidation_price == (3400 - Decimal(680) / 2) / Decimal("0.995")
    price = long.liquidation_price
    assert price is not None
    at_liquidation = perp_position(monitor, _priced(ETH=str(price)), "binance", "ETH/USDT")
    equity = at_liquidation.margin + at_liquidation.unrealised_pnl
    assert abs(equity - Decimal("0.005") * at_liquidation.notional) < Decimal("1e-30")
    assert long.leverage == 10
    monitor.seed("bybit", "USDT", Decimal(100_000))
    _do("perp sell 1 BTC/USDT on bybit leverage 2x", monitor)
    short = perp_position(monitor, MARKET, "bybit", "BTC/USDT")
    assert short.liquidation_price == (67_800 + Decimal(33_900)) / Decimal("1.005")


def test_a_long_whose_margin_covers_its_notional_has_no_liquidation_price():
    monitor = PositionMonitor()
    monitor.seed("binance", "USDT", Decimal(10_000))
    _do("perp buy 1 ETH/USDT on binance leverage 1x", monitor)
    # (3,400 - 3,400) / 0.995 = 0: no positive price liquidates it.
    assert perp_position(monitor, MARKET, "binance", "ETH/USDT").liquidation_price is None


def test_exposure_counts_posted_margin():
    monitor = PositionMonitor()
    monitor.seed("binance", "USDT", Decimal(10_000))
    _do("perp sell 1 ETH/USDT on binance leverage 4x", monitor)
    # 850 USDT margin + (10,000 - 850 - 1.36 fee) free = 9,998.64 USDT; -1 ETH.
    assert exposure(monitor, MARKET, "USDT") == 10_000 - Decimal("1.36")
    assert exposure(monitor, MARKET, "ETH") == -1


# --- carry ------------------------------------------------------------------------------------


def test_carry_adds_funding_interest_and_staking():
    monitor = PositionMonitor()
    monitor.seed("wallet", "weETH", Decimal(12))
    monitor.seed("binance", "USDT", Decimal(10_000))
    _do("supply 10 weETH to aave", monitor)
    _do("borrow 5 WETH from aave", monitor)
    _do("perp buy 1 ETH/USDT on binance", monitor)
    income = carry(monitor, MARKET)
    assert fundings_per_year(MARKET, "binance") == Decimal(31_536_000) / (8 * 3600) == 1095
    # A long pays 0.01% of 3,400 per 8 hours.
    assert income.funding_usd == -3400 * Decimal("0.0001") * 1095
    assert income.supply_usd == 10 * 3570 * Decimal("0.0005")
    assert income.borrow_usd == -5 * 3400 * Decimal("0.025")
    # 2 weETH in the wallet and 10 as collateral, growing at 3% a year.
    assert income.staking_usd == 12 * 3570 * Decimal("0.03")
    assert income.total_usd == income.funding_usd + income.supply_usd + income.borrow_usd \
        + income.staking_usd
    assert income.apr(Decimal(0)) is None


def test_a_market_without_rates_has_no_carry():
    text = ("prices: {ETH: 3400, USDT: 1}\ngas: {price_gwei: 1, base_tx: 1}\nvenues:\n"
            "  binance: {kind: cex, markets: {perp: [ETH/USDT]}}\n")
    market = market_from_text(text, "m.yaml")
    monitor = PositionMonitor()
    monitor.seed("binance", "USDT", Decimal(10_000))
    _do("perp sell 1 ETH/USDT on binance", monitor, market)
    assert carry(monitor, market).total_usd == 0
    assert market.funding_rate("binance", "ETH") == 0
    # Defaults of a CEX that says nothing: fee from the asset received, no maintenance
    # margin, funding every 8 hours.
    terms = market.venues["binance"]
    assert (terms.spot_fee, terms.maintenance_margin, terms.funding_interval) == \
        ("received", 0, 28_800)  # type: ignore[union-attr]
