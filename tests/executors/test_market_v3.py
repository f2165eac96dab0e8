"""Market v3 (issue 24, LANGUAGE.md section 9): per lending asset `oracle`, a lending venue's
`liquidation:` section, a CEX's `spot_taker_fee` and `maintenance:` brackets; each field
validated as v2's are, and the built-in market changed in one thing only."""

from __future__ import annotations

from decimal import Decimal
from importlib import resources

import pytest

from stratplan.executors.errors import MarketError
from stratplan.executors.market import (
    CexVenue,
    LendingVenue,
    default_market,
    market_from_text,
    validated_default_market,
)

DEFAULT = resources.files("stratplan.executors").joinpath("data/default_market.yaml").read_text()
BASE = """\
prices: {BTC: 67800, ETH: 3400, weETH: 3570, USDT: 1}
assets: {weETH: {underlying: ETH, rate: 1.05}}
gas: {price_gwei: 20, base_tx: 21000}
venues:
  binance: {kind: cex, taker_fee: 5bps, max_leverage: 20, markets: {spot: [BTC/USDT], perp: [BTC/USDT]}}
  aave:
    kind: lending
    assets: {weETH: {ltv: 72.5%, liquidation_threshold: 75%}, USDT: {ltv: 75%, liquidation_threshold: 78%, borrowable: true}}
"""
BRACKETS = "[[0, 0.4%, 0], [50_000, 0.5%, 50], [250_000, 1%, 1_300], [1_000_000, 2.5%, 16_300]]"


def _with(cex: str = "", lending: str = "", weeth: str = "") -> str:
    text = BASE
    if cex:
        text = text.replace("max_leverage: 20,", f"max_leverage: 20, {cex},")
    if lending:
        text = text.replace("    kind: lending\n", f"    kind: lending\n    {lending}\n")
    if weeth:
        text = text.replace("liquidation_threshold: 75%}", f"liquidation_threshold: 75%, {weeth}}}")
    return text


def test_the_builtin_aave_prices_weeth_by_its_exchange_rate_and_nothing_else_changed():
    market = default_market()
    aave = market.venues["aave"]
    assert isinstance(aave, LendingVenue)
    assert {asset: terms.oracle for asset, terms in aave.assets.items()} == {
        "weETH": "exchange_rate", "WETH": "market", "USDT": "market", "USDC": "market"}
    assert (aave.liquidation.close_factor, aave.liquidation.full_close_below_usd,
            aave.liquidation.min_leftover_usd) == (Decimal("0.5"), 2000, 1000)
    for cex in ("binance", "bybit", "okx"):
        terms = market.venues[cex]
        assert isinstance(terms, CexVenue)
        assert terms.spot_taker_fee is None and terms.spot_fee_rate == Decimal("0.0004")
        assert terms.maintenance == {} and \
            terms.brackets("BTC/USDT") == ((0, Decimal("0.005"), 0),)
    # Every v2 number stays: the YAML without the oracle line is the same market but for it.
    v2_text = DEFAULT.replace(",\n              oracle: exchange_rate}", "}")
    assert v2_text != DEFAULT
    v2 = market_from_text(v2_text, "v2")
    assert v2.venues["aave"].assets["weETH"].oracle == "market"
    assert v2.model_dump(exclude={"venues"}) == market.model_dump(exclude={"venues"})
    v2_aave = v2.venues["aave"].model_dump()
    v3_aave = aave.model_dump()
    v3_aave["assets"]["weETH"]["oracle"] = "market"
    assert v2_aave == v3_aave
    assert market == validated_default_market()


def test_the_liquidation_section_has_aaves_defaults_and_is_validated():
    market = market_from_text(_with(lending="liquidation: {close_factor: 100%, "
                                             "full_close_below_usd: 0, min_leftover_usd: 0}"),
                              "m.yaml")
    terms = market.venues["aave"]
    assert isinstance(terms, LendingVenue)
    assert terms.liquidation.close_factor == 1 and terms.liquidation.min_leftover_usd == 0
    for bad, fragment in (
            ("liquidation: {close_factor: 0}", "close_factor: must be above 0 and at most 1"),
            ("liquidation: {close_factor: 150%}", "close_factor: must be above 0"),
            ("liquidation: {full_close_below_usd: -1}", "full_close_below_usd: must not be negative"),
            ("liquidation: {min_leftover: 10}", "min_leftover: is not a known field here"),
    ):
        with pytest.raises(MarketError) as error:
            market_from_text(_with(lending=bad), "m.yaml")
        assert fragment in str(error.value) and "\n" not in str(error.value)
        assert str(error.value).startswith("m.yaml: venues.aave.liquidation")


def test_oracle_is_market_or_exchange_rate_and_exchange_rate_needs_an_underlying():
    market = market_from_text(_with(weeth="oracle: exchange_rate"), "m.yaml")
    assert market.venues["aave"].assets["weETH"].oracle == "exchange_rate"
    with pytest.raises(MarketError, match=r"venues\.aave\.assets\.weETH\.oracle"):
        market_from_text(_with(weeth="oracle: chainlink"), "m.yaml")
    no_underlying = _with(weeth="oracle: exchange_rate").replace(
        "assets: {weETH: {underlying: ETH, rate: 1.05}}\n", "")
    with pytest.raises(MarketError, match="exchange_rate needs weETH under assets:"):
        market_from_text(no_underlying, "m.yaml")
    unpriced = _with(weeth="oracle: exchange_rate").replace("ETH: 3400, ", "")
    with pytest.raises(MarketError, match="needs a price for weETH's underlying ETH"):
        market_from_text(unpriced, "m.yaml")


def test_spot_taker_fee_defaults_to_the_taker_fee():
    plain = market_from_text(BASE, "m.yaml").venues["binance"]
    assert isinstance(plain, CexVenue) and plain.spot_fee_rate == Decimal("0.0005")
    own = market_from_text(_with(cex="spot_taker_fee: 10bps"), "m.yaml").venues["binance"]
    assert isinstance(own, CexVenue) and own.spot_fee_rate == Decimal("0.001")
    assert own.taker_fee == Decimal("0.0005")
    with pytest.raises(MarketError, match="spot_taker_fee: must be below 1"):
        market_from_text(_with(cex="spot_taker_fee: 100%"), "m.yaml")


def test_maintenance_brackets_as_binance_publishes_them():
    market = market_from_text(_with(cex=f"maintenance: {{BTC/USDT: {BRACKETS}}}"), "m.yaml")
    terms = market.venues["binance"]
    assert isinstance(terms, CexVenue)
    assert terms.brackets("BTC/USDT") == (
        (0, Decimal("0.004"), 0), (50_000, Decimal("0.005"), 50),
        (250_000, Decimal("0.01"), 1_300), (1_000_000, Decimal("0.025"), 16_300))


@pytest.mark.parametrize("maintenance, fragment", [
    ("{ETH/USDT: [[0, 1%, 0]]}", "maintenance.ETH/USDT: the venue lists no ETH/USDT perp"),
    ("{BTC/USDT: []}", "maintenance.BTC/USDT: give at least one bracket"),
    ("{BTC/USDT: [[10, 1%, 0]]}", "the first bracket starts at notional 0 with amount 0"),
    ("{BTC/USDT: [[0, 1%, 0], [0, 2%, 0]]}", "maintenance.BTC/USDT[1]: notional_from must rise"),
    # 50 + 250,000 * (1% - 0.5%) = 1,300, not 1,200: the margin would jump at 250,000.
    ("{BTC/USDT: [[0, 0.4%, 0], [50_000, 0.5%, 50], [250_000, 1%, 1_200]]}",
     "maintenance.BTC/USDT[2]: amount must be 1300"),
    ("{BTC/USDT: [[0, 0.4%]]}", "a maintenance bracket is [notional_from, rate, amount]"),
    ("{BTC/USDT: [[0, -1%, 0]]}", "rate: must not be negative"),
    # 5% * 20x = 1: a position at max leverage would be liquidatable as it opens.
    ("{BTC/USDT: [[0, 4%, 0], [100_000, 5%, 1_000]]}",
     "maintenance.BTC/USDT[1] rate (0.05) must be below the initial margin at max_leverage"),
])
def test_bad_brackets_are_one_line_market_errors(maintenance, fragment):
    with pytest.raises(MarketError) as error:
        market_from_text(_with(cex=f"maintenance: {maintenance}"), "m.yaml")
    message = str(error.value)
    assert fragment in message and "\n" not in message and message.startswith("m.yaml: venues.binance")
