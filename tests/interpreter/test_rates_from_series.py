"""In a backtest every state function reads the values in force at the step (LANGUAGE.md
section 9): `funding`, `supply_rate`, `borrow_rate` and `rate` follow the series, the
market's `rates:` only where the series has no value (yet), and the final report's carry
uses the last step's rates (issue 22, item 3). Numbers are worked out by hand in the tests.

The built-in market's constants, which the series must override: funding 0.0001 (1bps) a
settlement at every CEX, Aave supply weETH 0.0005 and WETH 0.018, borrow WETH 0.025, weETH's
staking APR 0.03."""

from __future__ import annotations

from decimal import Decimal

import pytest

from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.parser import parse
from stratplan.executors.market import default_market
from stratplan.interpreter.series.read import read_series
from stratplan.interpreter.time.backtest import run_backtest, start_market
from stratplan.interpreter.time.metrics import report

MARKET = default_market()
HOUR = 3_600_000

CARRY_PLAN = """plan funding_carry "short BTC perp collecting funding, trimmed when it turns negative"
holdings { wallet: 100_000 USDT, 0.5 ETH }
phase enter {
  transfer 20_000 USDT from wallet to binance
  perp sell 1 BTC/USDT on binance leverage 5x
}
trigger unwind when funding(binance, BTC) < -1bps COOLDOWN{
  perp buy 0.1 BTC/USDT on binance
}
"""


def _plan(text: str):
    result = parse(text, "t.plan")
    assert result.plan is not None, result.diagnostics
    return result.plan


def _series(header: str, rows: list[tuple[int, str]]):
    """A series of (hour, cells after the time) rows."""
    lines = [f"time,{header}"] + [f"{hour * HOUR},{cells}" for hour, cells in rows]
    return read_series(("\n".join(lines) + "\n").encode(), "s.csv")


def _everything(result):
    snaps = [(s.time, s.value, s.health, s.exposure, s.parts) for s in result.snapshots]
    events = [(e.time, e.kind, e.name, e.node, e.line, e.code, e.message, e.loss_usd)
              for e in result.events]
    notices = [(n.code, n.message) for n in result.notices]
    return snaps, events, notices, result.firings, result.pnl, result.value_end


def _both(plan, data):
    """The backtest by the fast path, checked equal to the plain one (the evaluator at every
    step, executors/accounts.py)."""
    fast = run_backtest(plan, MARKET, data)
    plain = run_backtest(plan, MARKET, data, reference=True)
    assert _everything(fast) == _everything(plain)
    return fast


def _fired(result, trigger: str) -> list[int]:
    """Hours at which `trigger` fired."""
    return [e.time // HOUR for e in result.events if e.kind == "firing" and e.name == trigger]


# Rows every 4 hours; funding settles every 8 hours, below -1bps at 16h and at 48h.
FUNDING = {8: "0.0001", 16: "-0.0002", 24: "0.0001", 32: "0.0001", 40: "0.0001",
           48: "-0.0002", 56: "0.0001"}
FUNDING_SERIES = _series("price.BTC,funding.binance.BTC",
                         [(hour, f"60000,{FUNDING.get(hour, '')}") for hour in range(0, 64, 4)])


def test_funding_below_minus_1bps_fires_at_both_negative_settlements():
    plan = _plan(CARRY_PLAN.replace("COOLDOWN", ""))
    result = _both(plan, FUNDING_SERIES)
    # Between settlements the rate in force is the last settlement's: at 20h and 52h the
    # condition still holds, which is no rising edge; it stops holding at 24h and 56h.
    assert _fired(result, "unwind") == [16, 48]
    assert result.firings == {"unwind": 2}
    monitor = result.engine.monitor
    assert monitor.get("position", "binance", "BTC/USDT") == Decimal("-0.8")
    # Funding settles at step 2, before the triggers of step 4: -size * 60000 * rate.
    # size -1 at 8h and 16h, -0.9 from 16h's firing, -0.8 from 48h's.
    expected = (1 * 60000 * Decimal("0.0001") + 1 * 60000 * Decimal("-0.0002")
                + 3 * (Decimal("0.9") * 60000 * Decimal("0.0001"))
                + Decimal("0.9") * 60000 * Decimal("-0.0002")
                + Decimal("0.8") * 60000 * Decimal("0.0001"))
    assert expected == Decimal("4.2")
    assert result.pnl["funding"] == expected


@pytest.mark.parametrize(("cooldown", "hours"), [("cooldown 1d", [16, 48]),
                                                 ("cooldown 32h", [16, 48]),
                                                 ("cooldown 33h", [16])])
def test_funding_trigger_cooldown(cooldown: str, hours: list[int]):
    # `cooldown D`: not again before t + D. 16h + 32h = 48h allows the second firing;
    # 16h + 33h = 49h blocks it, and the condition stays true until 56h: no new edge.
    result = _both(_plan(CARRY_PLAN.replace("COOLDOWN", cooldown + " ")), FUNDING_SERIES)
    assert _fired(result, "unwind") == hours


def test_funding_reads_the_last_settlement_and_the_constant_before_the_first():
    plan = _plan("""plan p
holdings { wallet: 1_000 USDT }
phase start { assert 1 > 0 else "x" }
trigger constant when funding(binance, BTC) == 1bps { assert 1 > 0 else "x" }
trigger settled when funding(binance, BTC) == 3bps { assert 1 > 0 else "x" }
trigger unlisted when funding(bybit, BTC) == 1bps { assert 1 > 0 else "x" }
""")
    # binance BTC has no value until 12h (the market's 1bps holds), then 3bps, held at
    # 16h and 20h, then 1bps again at 24h; bybit has no column: the market's 1bps throughout.
    data = _series("funding.binance.BTC", [(0, ""), (4, ""), (8, ""), (12, "0.0003"),
                                           (16, ""), (20, ""), (24, "0.0001"), (28, "")])
    result = _both(plan, data)
    assert _fired(result, "constant") == [4, 24]
    assert _fired(result, "settled") == [12]
    assert _fired(result, "unlisted") == [4]


LENDING_TRIGGERS = """plan p
holdings { wallet: 1_000 USDT }
phase start { assert 1 > 0 else "x" }
trigger market_borrow when borrow_rate(aave, WETH) == 0.025 { assert 1 > 0 else "x" }
trigger series_borrow when borrow_rate(aave, WETH) == 0.12 { assert 1 > 0 else "x" }
trigger high_borrow when borrow_rate(aave, WETH) > 10% { assert 1 > 0 else "x" }
trigger market_supply when supply_rate(aave, weETH) == 0.0005 { assert 1 > 0 else "x" }
trigger series_supply when supply_rate(aave, weETH) == 0.002 { assert 1 > 0 else "x" }
trigger low_supply when supply_rate(aave, weETH) < 10bps { assert 1 > 0 else "x" }
"""


def test_borrow_and_supply_rate_follow_the_series():
    data = _series("borrow.aave.WETH,supply.aave.weETH",
                   [(0, "0.12,0.002"), (4, ","), (8, ","), (12, "0.12,0.002")])
    result = _both(_plan(LENDING_TRIGGERS), data)
    # The series says 12% and 0.2% from the first row on: the market's 2.5% and 0.05%
    # are never in force.
    assert result.firings == {"market_borrow": 0, "series_borrow": 1, "high_borrow": 1,
                              "market_supply": 0, "series_supply": 1, "low_supply": 0}
    assert _fired(result, "series_borrow") == [4]  # the first step after the phases
    assert _fired(result, "series_supply") == [4]


def test_lending_rates_before_a_column_value_are_the_market_constants():
    # Empty until 12h: the market's rates hold, then the series' (held to the end).
    data = _series("borrow.aave.WETH,supply.aave.weETH",
                   [(0, ","), (4, ","), (8, ","), (12, "0.12,0.002"), (16, ","), (20, "0.02,")])
    result = _both(_plan(LENDING_TRIGGERS), data)
    assert _fired(result, "market_borrow") == [4]
    assert _fired(result, "series_borrow") == [12]
    assert _fired(result, "high_borrow") == [12]
    assert _fired(result, "market_supply") == [4]
    assert _fired(result, "series_supply") == [12]
    assert _fired(result, "low_supply") == [4]  # 0.05% then 0.2%: below 0.1% only at first


def test_rate_follows_the_rate_column():
    plan = _plan("""plan p
holdings { wallet: 1_000 USDT }
phase start { assert 1 > 0 else "x" }
trigger grown when rate(weETH) > 1.06 { assert 1 > 0 else "x" }
""")
    # The market's 1.05 (grown by its 3% staking APR only where the column has no value).
    data = _series("rate.weETH", [(0, "1.05"), (4, "1.055"), (8, "1.061"), (12, "1.07"),
                                  (16, "1.05"), (20, "1.062")])
    assert _fired(_both(plan, data), "grown") == [8, 20]


def test_the_phases_read_the_first_row():
    data = _series("borrow.aave.WETH,supply.aave.weETH,funding.binance.BTC",
                   [(0, "0.12,0.002,-0.0004"), (4, ",,")])
    market = start_market(_plan(
        "plan p\nholdings { wallet: 1 ETH }\nphase start { assert 1 > 0 else \"x\" }\n"), MARKET, data)
    assert market.borrow_rate("aave", "WETH") == Decimal("0.12")
    assert market.supply_rate("aave", "weETH") == Decimal("0.002")
    assert market.funding_rate("binance", "BTC") == Decimal("-0.0004")
    assert market.supply_rate("aave", "WETH") == Decimal("0.018")  # no column: the market's
    # the market passed in is not changed
    assert MARKET.borrow_rate("aave", "WETH") == Decimal("0.025")
    assert MARKET.funding_rate("binance", "BTC") == Decimal("0.0001")


CARRY = """plan carry
holdings { wallet: 10 weETH, 1 ETH, 20_000 USDT }
phase enter {
  supply 10 weETH to aave
  borrow 5 WETH from aave
  transfer 20_000 USDT from wallet to binance
  perp sell 1 BTC/USDT on binance leverage 5x
}
"""


def test_the_final_carry_uses_the_last_rows_rates():
    # Lending APRs are 0 until the last row, so nothing accrues (accrual over an interval
    # uses the previous row's APR) and the amounts stay those the plan wrote.
    data = _series("price.ETH,price.weETH,rate.weETH,price.BTC,supply.aave.weETH,"
                   "borrow.aave.WETH,funding.binance.BTC",
                   [(0, "3400,3600,1.05,60000,0,0,"), (8, ",,,,,,0.0001"),
                    (16, ",,,,0.002,0.12,-0.0003")])
    result = _both(_plan(CARRY), data)
    assert not result.failed
    carry = report(result)["final"]["carry"]
    monitor = result.engine.monitor
    assert monitor.get("collateral", "aave", "weETH") == 10
    assert monitor.get("debt", "aave", "WETH") == 5
    # funding: -size * mark * rate, 31,536,000 s / 8 h = 1095 settlements a year
    size = monitor.get("position", "binance", "BTC/USDT")
    assert size == -1
    funding = -size * 60000 * Decimal("-0.0003") * 1095
    supply = 10 * 3600 * Decimal("0.002")
    borrow = -5 * 3400 * Decimal("0.12")   # WETH priced as ETH (its underlying, rate 1)
    staking = 10 * 3600 * Decimal("0.03")  # the market's staking APR: the series has none
    assert (funding, supply, borrow, staking) == (-19710, 72, -2040, 1080)
    assert Decimal(carry["funding_usd"]) == funding
    assert Decimal(carry["supply_usd"]) == supply
    assert Decimal(carry["borrow_usd"]) == borrow
    assert Decimal(carry["staking_usd"]) == staking
    assert Decimal(carry["total_usd"]) == funding + supply + borrow + staking == -20598
    with arithmetic():  # the APR may be printed to 40 significant digits
        assert abs(Decimal(carry["apr"]) - Decimal(-20598) / result.value_end) < Decimal("1e-35")
    # and the backtest's funding: one settlement of 1bps on the short at 8h, one of -3bps
    # at 16h
    assert result.pnl["funding"] == 60000 * Decimal("0.0001") - 60000 * Decimal("0.0003")
