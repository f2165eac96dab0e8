"""Market files: the built-in values, safe loading, and one-line errors for bad files."""

from __future__ import annotations

from decimal import Decimal
from importlib import resources

import pytest
import yaml

from stratplan.executors.errors import MarketError
from stratplan.executors.market import (
    MAX_MARKET_BYTES,
    default_market,
    load_market,
    market_from_data,
    market_from_text,
)
from stratplan.executors.market_numbers import to_decimal
from stratplan.executors.strict_yaml import StrictSafeLoader, load_strict

DEFAULT = resources.files("stratplan.executors").joinpath("data/default_market.yaml").read_text()
# A small valid market; each bad case below changes one thing in it.
GOOD = """\
prices: {ETH: 3400, WETH: 3400, weETH: 3570, USDT: 1}
assets: {weETH: {underlying: ETH, rate: 1.05}}
gas: {price_gwei: 20, base_tx: 21000, ops: {swap: 150000, borrow: 250000}}
venues:
  binance: {kind: cex, taker_fee: 4bps, max_leverage: 20, default_leverage: 3,
            withdraw_fee: {USDT: 1, ETH: 0.0008}, markets: {spot: [ETH/USDT]}}
  aave:
    kind: lending
    flash_fee: 5bps
    assets: {weETH: {ltv: 93%, liquidation_threshold: 95%}}
  uniswap: {kind: dex, fee: 5bps}
  balancer: {kind: flash_lender, flash_fee: 0, assets: [WETH]}
"""


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


def test_the_built_in_market_loads_and_the_small_one_too():
    assert market_from_text(DEFAULT, "default.yaml") == default_market()
    market = market_from_text(GOOD, "good.yaml")
    assert market.venues["binance"].taker_fee == Decimal("0.0004")  # type: ignore[union-attr]
    assert market.flash_fee("aave", "weETH") == Decimal("0.0005")


def _bad(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


@pytest.mark.parametrize("text, path, problem", [
    # Fees that would create money (issue 11: a run's value went from 103,400 to 140,675 USD)
    (_bad("taker_fee: 4bps", "taker_fee: -0.001"),
     "venues.binance.taker_fee", "must not be negative (got -0.001)"),
    (_bad("taker_fee: 4bps", "taker_fee: -4bps"),
     "venues.binance.taker_fee", "must not be negative (got -0.0004)"),
    (_bad("swap: 150000", "swap: -150000"), "gas.ops.swap", "must not be negative"),
    (_bad("base_tx: 21000", "base_tx: -21000"), "gas.base_tx", "must not be negative"),
    (_bad("price_gwei: 20", "price_gwei: -20"), "gas.price_gwei", "must not be negative"),
    (_bad("USDT: 1, ETH", "USDT: -1, ETH"), "venues.binance.withdraw_fee.USDT",
     "must not be negative"),
    (_bad("flash_fee: 5bps", "flash_fee: -5bps"), "venues.aave.flash_fee", "must not be negative"),
    (_bad("flash_fee: 0", "flash_fee: -0.01"), "venues.balancer.flash_fee",
     "must not be negative"),
    (_bad("dex, fee: 5bps", "dex, fee: -1%"), "venues.uniswap.fee", "must not be negative"),
    # A fee of 100% or more is nonsense
    (_bad("taker_fee: 4bps", "taker_fee: 100%"), "venues.binance.taker_fee", "must be below 1"),
    (_bad("dex, fee: 5bps", "dex, fee: 1.5"), "venues.uniswap.fee", "must be below 1"),
    # Lending terms: ltv <= liquidation_threshold < 1
    (_bad("ltv: 93%", "ltv: 96%"), "venues.aave.assets.weETH",
     "ltv (0.96) must not exceed liquidation_threshold (0.95)"),
    (_bad("liquidation_threshold: 95%", "liquidation_threshold: 100%"),
     "venues.aave.assets.weETH.liquidation_threshold", "must be below 1"),
    (_bad("liquidation_threshold: 95%", "liquidation_threshold: 1.2"),
     "venues.aave.assets.weETH.liquidation_threshold", "must be below 1"),
    (_bad("ltv: 93%", "ltv: -1%"), "venues.aave.assets.weETH.ltv", "must not be negative"),
    # Prices and rates are positive
    (_bad("ETH: 3400", "ETH: 0"), "prices.ETH", "must be positive (got 0)"),
    (_bad("ETH: 3400", "ETH: -3400"), "prices.ETH", "must be positive (got -3400)"),
    (_bad("rate: 1.05", "rate: 0"), "assets.weETH.rate", "must be positive"),
    # Leverage: 1 <= default_leverage <= max_leverage
    (_bad("default_leverage: 3", "default_leverage: 0.5"), "venues.binance.default_leverage",
     "must be at least 1"),
    (_bad("default_leverage: 3", "default_leverage: 30"), "venues.binance",
     "default_leverage (30) must not exceed max_leverage (20)"),
    # Range, finiteness, exactness (LANGUAGE.md section 2; dsl.decimals)
    (_bad("taker_fee: 4bps", "taker_fee: 1e999999999%"), "venues.binance.taker_fee",
     "out of range"),
    (_bad("taker_fee: 4bps", "taker_fee: -1e999999999bps"), "venues.binance.taker_fee",
     "out of range"),
    (_bad("taker_fee: 4bps", "taker_fee: 1e-999999999%"), "venues.binance.taker_fee",
     "out of range"),
    (_bad("ETH: 3400", "ETH: 1e31"), "prices.ETH", "out of range"),
    (_bad("ETH: 3400", "ETH: 1e-31"), "prices.ETH", "out of range"),
    (_bad("ETH: 3400", "ETH: 1" + "0" * 5000), "prices.ETH", "out of range"),
    (_bad("base_tx: 21000", "base_tx: 1" + "0" * 5000), "gas.base_tx", "out of range"),
    (_bad("ETH: 3400", "ETH: 0.12345678901234567890123456789012345678901"), "prices.ETH",
     "more than 40 significant digits"),
    (_bad("taker_fee: 4bps", "taker_fee: nan"), "venues.binance.taker_fee",
     "must be a finite number (got nan)"),
    (_bad("taker_fee: 4bps", "taker_fee: .nan"), "venues.binance.taker_fee", "finite"),
    (_bad("ETH: 3400", "ETH: inf"), "prices.ETH", "finite"),
    (_bad("ETH: 3400", "ETH: .inf"), "prices.ETH", "finite"),
    (_bad("ETH: 3400", "ETH: Infinity"), "prices.ETH", "finite"),
    (_bad("ETH: 3400", "ETH: \"\u09ea\""), "prices.ETH", "must be a number"),  # Bengali 4
    # Booleans are not numbers, numbers are not booleans
    (_bad("taker_fee: 4bps", "taker_fee: true"), "venues.binance.taker_fee",
     "must be a number, not a boolean (got true)"),
    (_bad("ETH: 3400", "ETH: false"), "prices.ETH", "not a boolean"),
    (_bad("base_tx: 21000", "base_tx: yes"), "gas.base_tx", "not a boolean"),
    (_bad("swap: 150000", "swap: 1.5"), "gas.ops.swap", "must be a whole number"),
    (_bad("liquidation_threshold: 95%}", "liquidation_threshold: 95%, borrowable: 1}"),
     "venues.aave.assets.weETH.borrowable", "boolean"),
    # Shape
    (_bad("kind: dex", "kind: moon"), "venues.uniswap.kind", "moon is not a venue kind"),
    (_bad("kind: dex, ", ""), "venues.uniswap", "needs a kind"),
    (_bad("kind: dex", "kind: dex, spot_fee: 1%"), "venues.uniswap.spot_fee", "not a known field"),
    (_bad("price_gwei: 20, ", ""), "gas.price_gwei", "is required"),
    (_bad("assets: [WETH]", "assets: [WETH, 5]"), "venues.balancer.assets[1]", "valid string"),
])
def test_a_bad_number_is_refused_naming_its_field(text, path, problem):
    with pytest.raises(MarketError) as error:
        market_from_text(text, "m.yaml")
    message = str(error.value)
    assert message.startswith(f"m.yaml: {path}: "), message
    assert problem in message and "\n" not in message


@pytest.mark.parametrize("text, where, path", [
    (GOOD + "prices: {ETH: 1}\n", "m.yaml:13:1", "prices"),
    (_bad("taker_fee: 4bps,", "taker_fee: 4bps, taker_fee: -4bps,"), "m.yaml:5:41",
     "venues.binance.taker_fee"),
    (_bad("  uniswap:", "  binance: {kind: wallet}\n  uniswap:"), "m.yaml:11:3", "venues.binance"),
    (_bad("assets: {weETH: {ltv: 93%,", "assets: {weETH: {ltv: 93%, ltv: 1%,"), "m.yaml:10:32",
     "venues.aave.assets.weETH.ltv"),
    ("a: [{k: 1, k: 2}]\n", "m.yaml:1:12", "a[0].k"),
    ("prices: {1: 1, 1.0: 2}\n", "m.yaml:1:16", "prices.1.0"),  # equal as Python keys
])
def test_a_duplicate_key_is_refused_at_any_depth(text, where, path):
    with pytest.raises(MarketError) as error:
        market_from_text(text, "m.yaml")
    message = str(error.value)
    assert message.startswith(f"{where}: {path}: duplicate key (first at line "), message


def test_merge_keys_may_override_and_the_loader_stays_safe():
    text = "base: &b {kind: cex, taker_fee: 4bps}\nother: {<<: *b, taker_fee: 1bps}\n"
    assert load_strict(text)["other"] == {"kind": "cex", "taker_fee": "1bps"}
    assert issubclass(StrictSafeLoader, yaml.SafeLoader)
    with pytest.raises(yaml.YAMLError, match="could not determine a constructor"):
        load_strict("!!python/object/apply:os.system ['true']")


def test_yaml_floats_are_read_exactly_from_their_text():
    data = load_strict("a: 0.0004\nb: 0.12345678901234567890123456789\nc: -1_000.5\n"
                       "d: 1:30.5\ne: .inf\n")
    assert data == {"a": Decimal("0.0004"), "b": Decimal("0.12345678901234567890123456789"),
                    "c": Decimal("-1000.5"), "d": Decimal("90.5"), "e": ".inf"}
    market = market_from_text(_bad("ETH: 3400", "ETH: 3400.12345678901234567890123456"), "m")
    assert market.prices["ETH"] == Decimal("3400.12345678901234567890123456")


def test_numbers_parse_inside_the_decimal_context():
    assert to_decimal("93%") == Decimal("0.93") and to_decimal("4bps") == Decimal("0.0004")
    assert to_decimal("40_000") == 40_000 and to_decimal(0.0004) == Decimal("0.0004")
    assert str(to_decimal("-0")) == "0"
    for bad in ("1e999999999%", "nan", "-Infinity", "sNaN", "1__0", "4 bp", "", True, None, []):
        with pytest.raises(ValueError):
            to_decimal(bad)


def test_data_not_from_yaml_is_checked_too():
    data = yaml.safe_load(GOOD)
    data["venues"]["binance"]["taker_fee"] = -0.001
    with pytest.raises(MarketError, match=r"^x: venues\.binance\.taker_fee: must not be negative"):
        market_from_data(data, "x")
    data["venues"]["binance"]["taker_fee"] = float("inf")
    with pytest.raises(MarketError, match="finite"):
        market_from_data(data, "x")


def test_a_market_file_too_large_is_refused_before_it_is_read(tmp_path):
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as handle:  # sparse: 4 GiB on paper, nothing on disk
        handle.truncate(4 * 1024**3)
    with pytest.raises(MarketError, match=r"huge\.yaml: larger than the 1 MiB limit"):
        load_market(huge)
    edge = tmp_path / "edge.yaml"
    edge.write_bytes(GOOD.encode() + b" " * (MAX_MARKET_BYTES + 1 - len(GOOD)))
    with pytest.raises(MarketError, match="larger than"):
        load_market(edge)
    edge.write_bytes(GOOD.encode() + b" " * (MAX_MARKET_BYTES - len(GOOD)))
    assert load_market(edge).prices["ETH"] == 3400


def test_load_market_names_the_file_and_the_field(tmp_path):
    bad = tmp_path / "market.yaml"
    bad.write_text(_bad("taker_fee: 4bps", "taker_fee: -0.001"))
    with pytest.raises(MarketError) as error:
        load_market(bad)
    assert str(error.value) == f"{bad}: venues.binance.taker_fee: must not be negative (got -0.001)"


# --- market v2 (issue 12): e-mode, CEX margin and fee terms, the rates section ----------------

GOOD_V2 = """\
prices: {ETH: 3400, WETH: 3400, weETH: 3570, USDT: 1}
assets: {weETH: {underlying: ETH, rate: 1.05}}
gas: {price_gwei: 20, base_tx: 21000}
venues:
  binance: {kind: cex, taker_fee: 4bps, spot_fee: received, max_leverage: 20,
            maintenance_margin: 0.5%, funding_interval: 8h, markets: {perp: [ETH/USDT]}}
  aave:
    kind: lending
    assets:
      weETH: {ltv: 72.5%, liquidation_threshold: 75%, liquidation_bonus: 7.5%}
      WETH: {ltv: 80.5%, liquidation_threshold: 83%, liquidation_bonus: 5%, borrowable: true}
      USDT: {ltv: 75%, liquidation_threshold: 78%, borrowable: true}
    emode:
      eth: {ltv: 93%, liquidation_threshold: 95%, liquidation_bonus: 1%, assets: [WETH, weETH]}
rates:
  funding: {binance: {ETH: 0.01%}}
  lending: {aave: {supply: {weETH: 0.05%}, borrow: {WETH: 2.5%}}}
  staking: {weETH: 3%}
"""


def _bad_v2(old: str, new: str) -> str:
    assert old in GOOD_V2, old
    return GOOD_V2.replace(old, new, 1)


def test_default_market_has_the_v2_design_values():
    market = default_market()
    aave = market.venues["aave"]
    assert (aave.assets["weETH"].ltv, aave.assets["weETH"].liquidation_threshold,  # type: ignore[union-attr]
            aave.assets["weETH"].liquidation_bonus) == \
        (Decimal("0.725"), Decimal("0.75"), Decimal("0.075"))  # type: ignore[union-attr]
    assert aave.assets["WETH"].ltv == Decimal("0.805")  # type: ignore[union-attr]
    assert aave.assets["USDT"].liquidation_bonus == Decimal("0.045")  # type: ignore[union-attr]
    eth = aave.emode["eth"]  # type: ignore[union-attr]
    assert (eth.ltv, eth.liquidation_threshold, eth.liquidation_bonus, eth.assets) == \
        (Decimal("0.93"), Decimal("0.95"), Decimal("0.01"), ["WETH", "weETH"])
    for cex in ("binance", "bybit", "okx"):
        terms = market.venues[cex]
        assert terms.spot_fee == "received"  # type: ignore[union-attr]
        assert terms.maintenance_margin == Decimal("0.005")  # type: ignore[union-attr]
        assert terms.funding_interval == 8 * 3600  # type: ignore[union-attr]
        assert market.funding_rate(cex, "BTC") == market.funding_rate(cex, "ETH") == \
            Decimal("0.0001")
    assert market.supply_rate("aave", "USDC") == Decimal("0.04")
    assert market.borrow_rate("aave", "USDT") == Decimal("0.055")
    assert market.staking_rate("weETH") == Decimal("0.03")
    assert market.staking_rate("ETH") == 0 and market.borrow_rate("aave", "weETH") == 0


def test_the_small_v2_market_loads_and_funding_may_be_negative():
    market = market_from_text(GOOD_V2, "m.yaml")
    assert market.venues["binance"].funding_interval == 28_800  # type: ignore[union-attr]
    negative = market_from_text(_bad_v2("ETH: 0.01%}", "ETH: -0.03%}"), "m.yaml")
    assert negative.funding_rate("binance", "ETH") == Decimal("-0.0003")
    for text, seconds in (("30m", 1800), ("1d", 86_400), ("1w", 604_800), ("90s", 90)):
        minutes = market_from_text(_bad_v2("funding_interval: 8h", f"funding_interval: {text}"),
                                   "m.yaml")
        assert minutes.venues["binance"].funding_interval == seconds  # type: ignore[union-attr]


@pytest.mark.parametrize("old, new, path, problem", [
    ("spot_fee: received", "spot_fee: base", "venues.binance.spot_fee", "received"),
    ("maintenance_margin: 0.5%", "maintenance_margin: -0.5%", "venues.binance.maintenance_margin",
     "must not be negative"),
    ("maintenance_margin: 0.5%", "maintenance_margin: 5%", "venues.binance",
     "maintenance_margin (0.05) must be below the initial margin at max_leverage (0.05)"),
    ("funding_interval: 8h", "funding_interval: 8", "venues.binance.funding_interval",
     "must be a duration with its unit"),
    ("funding_interval: 8h", "funding_interval: 0h", "venues.binance.funding_interval",
     "must be a positive duration"),
    ("funding_interval: 8h", "funding_interval: -8h", "venues.binance.funding_interval",
     "duration"),
    ("liquidation_bonus: 7.5%}", "liquidation_bonus: -7.5%}", "venues.aave.assets.weETH.liquidation_bonus",
     "must not be negative"),
    ("liquidation_threshold: 95%, liquidation_bonus: 1%", "liquidation_threshold: 95%, "
     "liquidation_bonus: 6%", "venues.aave.emode.eth", "must not exceed 1"),
    ("ltv: 93%", "ltv: 96%", "venues.aave.emode.eth", "ltv (0.96) must not exceed"),
    ("assets: [WETH, weETH]", "assets: [WETH, USDC]", "venues.aave",
     "e-mode category eth lists USDC, which is not one of the venue's assets"),
    ("funding: {binance: {ETH: 0.01%}}", "funding: {aave: {ETH: 0.01%}}", "",
     "rates.funding.aave: aave is not a CEX"),
    ("funding: {binance: {ETH: 0.01%}}", "funding: {binance: {BTC: 0.01%}}", "",
     "rates.funding.binance.BTC: binance lists no BTC perp"),
    ("ETH: 0.01%}", "ETH: 100%}", "rates.funding.binance.ETH", "must be between -1 and 1"),
    ("supply: {weETH: 0.05%}", "supply: {USDC: 4%}", "",
     "rates.lending.aave.supply.USDC: aave does not take USDC"),
    ("borrow: {WETH: 2.5%}", "borrow: {weETH: 2.5%}", "",
     "rates.lending.aave.borrow.weETH: aave does not lend weETH"),
    ("borrow: {WETH: 2.5%}", "borrow: {WETH: -2.5%}", "rates.lending.aave.borrow.WETH",
     "must not be negative"),
    ("lending: {aave:", "lending: {binance:", "", "rates.lending.binance: binance is not a lending"),
    ("staking: {weETH: 3%}", "staking: {WETH: 3%}", "",
     "rates.staking.WETH: WETH is not a rate-bearing asset"),
    ("staking: {weETH: 3%}", "staking: {weETH: 3%, ETH: 1%}", "", "rates.staking.ETH"),
    ("staking: {weETH: 3%}", "staking: {weETH: 3%}\n  swaps: {}", "rates.swaps",
     "is not a known field"),
])
def test_a_bad_v2_field_is_refused_naming_it(old, new, path, problem):
    with pytest.raises(MarketError) as error:
        market_from_text(_bad_v2(old, new), "m.yaml")
    message = str(error.value)
    assert message.startswith(f"m.yaml: {path}: " if path else "m.yaml: "), message
    assert problem in message and "\n" not in message
