"""Market files: the built-in values, safe loading, and one-line errors for bad files."""

from __future__ import annotations

from decimal import Decimal

import pytest
from stratplan.executors.errors import MarketError
from stratplan.executors.market import default_market, load_market, market_from_text


def test_default_market_has_the_design_values():
    market = default_market()
    assert market.prices["weETH"] == Decimal(3570) and market.prices["BTC"] == Decimal(67800)
    assert market.gas.ops["borrow"] == 250_000 and market.gas.base_tx == 21_000
    for cex in ("binance", "bybit", "okx"):
        terms = market.venues[cex]
        assert terms.taker_fee == Decimal("0.0004") and terms.default_leverage == 3
        assert terms.withdraw_fee["BTC"] == Decimal("0.00002")
    assert market.venues["aave"].assets["USDT"].liquidation_threshold == Decimal("0.78")
    assert market.flash_fee("balancer", "WETH") == 0
    assert market.flash_fee("aave", "WETH") == Decimal("0.0005")
    assert market.flash_fee("balancer", "weETH") is None
    assert all(isinstance(p, Decimal) for p in market.prices.values())


@pytest.mark.parametrize("text, fragment", [
    ("prices: [", "expected"),
    ("- just a list", "a market file is a mapping"),
    ("prices: {ETH: 1}\n", "gas"),
    ("prices: {ETH: -1}\ngas: {price_gwei: 1, base_tx: 1}\nvenues: {}\n", "positive"),
    ("prices: {ETH: 1}\ngas: {price_gwei: 1, base_tx: 1}\nvenues: {x: {kind: moon}}\n", "venues.x"),
    ("prices: {ETH: lots}\ngas: {price_gwei: 1, base_tx: 1}\nvenues: {}\n", "prices.ETH"),
    ("prices: {ETH: 1}\ngas: {price_gwei: 1, base_tx: 1}\nvenues:\n  aave: {kind: lending, "
     "assets: {ETH: {ltv: 99%, liquidation_threshold: 90%}}}\n", "ltv"),
    ("!!python/object:os.system {}", "could not determine a constructor"),
])
def test_bad_market_text_is_a_one_line_market_error(text, fragment):
    with pytest.raises(MarketError) as error:
        market_from_text(text, "m.yaml")
    message = str(error.value)
    assert "\n" not in message and message.startswith("m.yaml")
    assert fragment in message


def test_missing_market_file(tmp_path):
    with pytest.raises(MarketError, match="no such market file"):
        load_market(tmp_path / "nope.yaml")
    with pytest.raises(MarketError, match="folder"):
        load_market(tmp_path)
    with pytest.raises(MarketError, match=r"^'a\\x00b': not a usable file name$"):
        load_market("a\x00b")  # found by the CLI fuzz test: the OS refuses NUL in a path


def test_alias_bomb_is_refused_quickly():
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, 12):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 10)}]")
    lines.append("prices: {ETH: 1}\ngas: {price_gwei: 1, base_tx: 1}\nvenues: {}\nbomb: *a11")
    with pytest.raises(MarketError, match="YAML aliases"):
        market_from_text("\n".join(lines), "bomb.yaml")
