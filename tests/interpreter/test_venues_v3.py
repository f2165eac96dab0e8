"""Issue 24 over time (LANGUAGE.md section 9): oracle prices and the `oracle.ASSET` column,
liquidations in a backtest (repeated calls, bad debt written off, their events, fills and
PnL), `min_health` before liquidations, `cagr`, `benchmark`, `fills`, SP501 once a line,
the run report's oracle and market prices. The arithmetic is written out in each test."""

from __future__ import annotations

import json
import re
from decimal import Decimal, localcontext

from stratplan.cli import main
from stratplan.dsl.decimals import EXACT, arithmetic
from stratplan.dsl.parser import parse
from stratplan.executors.market import default_market
from stratplan.interpreter.lint.pipeline import lint_source
from stratplan.interpreter.series.read import read_series
from stratplan.interpreter.time.backtest import PARTS, run_backtest
from stratplan.interpreter.time.metrics import cagr, report, summary
from tests.conftest import FLASH_LOOP_BODY

D = Decimal
MARKET = default_market()
DAY = 86_400_000
TINY = D("1e-30")

LOOP = "plan loop \"LANGUAGE.md's flash-loan loop\"\n" + FLASH_LOOP_BODY
SMALL_LOOP = """plan small "30 weETH against 25 WETH"
holdings { wallet: 30 weETH, 0.05 ETH }
phase entry {
  atomic loop {
    supply 30 weETH to aave
    borrow 25 WETH from aave
  }
}
"""
# After gas (0.01332 ETH), 14.98668 + 48 ETH staked at 1.05 (at 40 digits, as a run).
with arithmetic():
    WEETH = (15 - D("0.01332") + 48) / D("1.05")


def _plan(text: str):
    result = parse(text, "t.plan")
    assert result.plan is not None, result.diagnostics
    return result.plan


def _series(header: str, *rows: str, step: int = DAY):
    lines = [f"time,{header}"] + [f"{1_704_067_200_000 + i * step},{row}"
                                  for i, row in enumerate(rows)]
    return read_series(("\n".join(lines) + "\n").encode(), "s.csv")


def _exact_sum(result) -> None:
    with localcontext() as context:
        context.prec = 400
        assert sum((result.pnl[p] for p in PARTS), D(0)) == result.pnl["total"] == \
            result.value_end - result.value_start


# --- oracle prices over time ------------------------------------------------------------------


def test_a_one_hour_depeg_moves_value_not_health():
    # weETH trades at 2,746 for an hour. v2 read health at that price (0.95888) and
    # liquidated 24 WETH; aave's oracle says 3,400 * 1.05 = 3,570: health stays 1.2466.
    data = _series("price.ETH,price.WETH,price.weETH,rate.weETH,supply.aave.weETH,"
                   "borrow.aave.WETH", "3400,3400,3570,1.05,0,0", "3400,3400,2746,1.05,,",
                   "3400,3400,3570,1.05,,", step=3_600_000)
    result = run_backtest(_plan(LOOP), MARKET, data)
    assert result.events == [] and not result.failed
    with arithmetic():
        health = WEETH * 3570 * D("0.95") / (48 * 3400)
        assert [s.health["aave"] for s in result.snapshots] == [health] * 3
        # value at the depeg: the collateral marked 824 USD a weETH lower
        change = result.snapshots[0].value - result.snapshots[1].value
        assert abs(change - WEETH * 824) < D("1e-34") * 51_000  # 49,429.55 USD
    # Only the gas was spent: 51,000 - 45.288, up to the weETH amount's own rounding at
    # 40 digits, which the exactly summed value carries (accounts.portfolio_value).
    assert abs(result.value_end - (51_000 - D("45.288"))) < D("1e-34")
    with arithmetic():
        assert result.value_end == +EXACT.subtract(EXACT.multiply(WEETH, 3570), 48 * 3400)


def test_the_oracle_column_overrides_the_rule_from_its_first_value_on():
    # Row 0 has no oracle value: the rule (ETH * rate) applies. Row 1 feeds 3,300; row 2's
    # empty cell holds it while rate(weETH) climbs to 1.10 (the rule would say 3,740);
    # the rule never returns.
    data = _series("price.ETH,price.WETH,price.weETH,rate.weETH,oracle.weETH,"
                   "supply.aave.weETH,borrow.aave.WETH",
                   "3400,3400,3570,1.05,,0,0", "3400,3400,3570,1.05,3300,,",
                   "3400,3400,3740,1.10,,,")
    result = run_backtest(_plan(LOOP), MARKET, data)
    with arithmetic():
        health = [WEETH * price * D("0.95") / (48 * 3400) for price in (3570, 3300, 3300)]
    assert [s.health["aave"] for s in result.snapshots] == health
    assert result.market.oracle_feed() == {"weETH": 3300}
    assert MARKET.oracle_feed() == {}


def test_oracle_reads_the_step_in_a_trigger():
    plan = _plan(LOOP + "trigger lagging when oracle(aave, weETH) < price(weETH) {\n"
                 "  assert oracle(aave, weETH) == 3300\n}\n")
    data = _series("price.ETH,price.weETH,oracle.weETH", "3400,3570,", "3400,3570,3300",
                   "3400,3570,")
    result = run_backtest(plan, MARKET, data)
    assert result.firings == {"lagging": 1} and not result.failed
    assert [e.time for e in result.events] == [data.times[1]]


# --- liquidations over time --------------------------------------------------------------------


def test_repeated_calls_at_one_step_and_min_health_before_them():
    # v3_cascade: rate 0.8465 (weETH 2,878.1 to aave): health 0.96501; calls of 12.5, 6.25
    # and 3.125 WETH bring it to 1.00358 at the same step. min_health is 0.96501 (v2 read
    # it after the one call it made: 0.97052).
    data = _series("price.ETH,price.WETH,price.weETH,rate.weETH,supply.aave.weETH,"
                   "borrow.aave.WETH", "3400,3400,3570,1.05,0,0",
                   "3400,3400,2878.1,0.8465,,")
    result = run_backtest(_plan(SMALL_LOOP), MARKET, data)
    calls = [e for e in result.events if e.kind == "liquidation"]
    assert [e.repaid for e in calls] == [D("12.5"), D("6.25"), D("3.125")]
    assert [(e.collateral, e.debt) for e in calls] == [("weETH", "WETH")] * 3
    with arithmetic():
        for event, repaid in zip(calls, ("12.5", "6.25", "3.125"), strict=True):
            assert event.seized == D(repaid) * 3400 * D("1.01") / D("2878.1")
            # Each call loses the 1% bonus, at market prices (weETH's is 2,878.1 too).
            assert abs(event.loss_usd - D(repaid) * 3400 * D("0.01")) < TINY
    assert abs(result.snapshots[1].health["aave"] - D("1.00358")) < TINY
    low = summary(result)["min_health"]["aave"]
    assert (low["value"], low["time"]) == (D("0.96501"), data.times[1])
    assert summary(result)["liquidations"] == 3
    assert result.pnl["liquidations"] == -sum((e.loss_usd for e in calls), D(0))
    _exact_sum(result)


def test_bad_debt_is_written_off_counted_as_a_gain_and_accrues_nothing_after():
    # v3_bad_debt: rate 0.8 (weETH 2,720), borrow APR 10%. Day 1 the debt is
    # 25 * (1 + x + x²/2 + x³/6), x = 0.1/365; all 30 weETH (81,600 USD) cover 81,600 / 1.01
    # USD of it; the rest is written off. Days 2 and 3 accrue nothing.
    data = _series("price.ETH,price.WETH,price.weETH,rate.weETH,supply.aave.weETH,"
                   "borrow.aave.WETH", "3400,3400,3570,1.05,0,0.10",
                   "3400,3400,2720,0.8,,", "3400,3400,2720,0.8,,", "3400,3400,2720,0.8,,")
    result = run_backtest(_plan(SMALL_LOOP), MARKET, data)
    call, bad = [e for e in result.events if e.kind in ("liquidation", "bad_debt")]
    with arithmetic():
        x = D("0.1") / 365
        owed = 25 * (1 + x + x * x / 2 + x * x * x / 6)
        repaid = D(81_600) / D("1.01") / 3400
        assert abs(call.repaid - repaid) < TINY and call.seized == 30
        assert bad.kind == "bad_debt" and bad.debt == "WETH" and bad.code == "SP501"
        assert abs(bad.written_off_usd - (owed - repaid) * 3400) < D("1e-29")
        assert bad.loss_usd == -bad.written_off_usd
        # The part gains the write-off and loses the call's loss.
        assert result.pnl["liquidations"] == bad.written_off_usd - call.loss_usd
        # Interest only on day 1: nothing is owed after the write-off.
        assert abs(result.pnl["borrow_interest"] + (owed - 25) * 3400) < D("1e-29")
    assert summary(result)["liquidations"] == 1  # calls, not write-offs
    assert result.engine.monitor.items("debt", "aave") == {}
    # Left: the 25 WETH borrowed into the wallet and the ETH the gas left, (21,000 + 180,000
    # + 250,000) * 20 gwei = 0.00902 ETH.
    assert result.value_end == 25 * 3400 + (D("0.05") - D("0.00902")) * 3400
    _exact_sum(result)
    events = report(result)["events"]
    assert {"kind": "bad_debt", "debt": "WETH"}.items() <= events[1].items()
    assert D(events[1]["written_off_usd"]) == bad.written_off_usd.normalize()
    assert {"collateral": "weETH", "debt": "WETH", "seized": "30"}.items() <= events[0].items()


def test_lint_reports_sp501_once_a_line_with_the_count_the_loss_and_the_write_off(tmp_path):
    (tmp_path / "s.csv").write_text(
        "time,price.ETH,price.WETH,price.weETH,rate.weETH,supply.aave.weETH,borrow.aave.WETH\n"
        "2024-01-01T00:00:00Z,3400,3400,3570,1.05,0,0\n"
        "2024-01-02T00:00:00Z,3400,3400,2878.1,0.8465,,\n")
    text = SMALL_LOOP.replace('plan small "30 weETH against 25 WETH"\n',
                              'plan small\nuse series "s.csv"\n')
    found = [d for d in lint_source(text, str(tmp_path / "p.plan"), tmp_path).diagnostics]
    assert [(d.code, d.span.line) for d in found] == [("SP501", 7)]
    # 3 calls, each losing 1% of what it repaid: (12.5 + 6.25 + 3.125) * 34 = 743.75 USD.
    assert found[0].message.startswith("liquidated at 2024-01-02T00:00:00Z: 3 liquidation "
                                       "calls, loss 743.75 USD (first: aave liquidated at "
                                       "health 0.96501: 12.5 WETH repaid")


# --- reports ----------------------------------------------------------------------------------


def test_cagr_compounds_the_return_over_a_365_day_year():
    with arithmetic():
        # 21% over two years: (1.21)^(1/2) - 1 = 10% a year.
        assert cagr(D(100), D(121), D(2 * 365 * DAY)) == D("0.1")
        # 1% over 73 days (a fifth of a year): 1.01^5 - 1.
        assert cagr(D(100), D(101), D(73 * DAY)) == D("1.01") ** 5 - 1
        assert cagr(D(100), D(0), D(DAY)) is None  # end value not positive
        assert cagr(D(100), D(-5), D(DAY)) is None
        assert cagr(D(100), D(110), D(0)) is None  # no span


def test_benchmark_holds_the_starting_holdings_and_fills_log_every_operation():
    plan = _plan("""plan book
holdings { wallet: 10_000 USDT, 2 ETH }
phase trade {
  transfer 5_000 USDT from wallet to binance
  spot buy 0.5 ETH/USDT on binance
  perp sell 0.5 ETH/USDT on binance leverage 2x
}
phase chain after trade {
  stake 1 ETH on etherfi -> weETH
  wrap 0.5 ETH
  swap 0.5 WETH -> USDC on uniswap slippage 10bps
}
trigger close every 1d {
  perp buy 0.5 ETH/USDT on binance
}
""")
    data = _series("price.ETH,price.weETH", "3400,3570", "3600,3780")
    result = run_backtest(plan, MARKET, data)
    assert not result.failed
    # Buy and hold: 10,000 USDT and 2 ETH at the last step's 3,600 = 17,200 USD.
    s = summary(result)
    with arithmetic():
        assert s["benchmark"] == {"value_end": D(17_200), "return": (
            D(17_200) - result.value_start) / result.value_start}
    fills = [(f.kind, f.side, f.venue, f.asset, f.amount, f.price, f.fee_usd, f.realised_pnl_usd,
              f.trigger) for f in result.fills]
    t0, t1 = data.times[0], data.times[1]
    assert [f.time for f in result.fills] == [t0] * 5 + [t1]
    with arithmetic():
        assert fills == [
            ("transfer", None, "wallet->binance", "USDT", 5_000, 1, 0, None, None),
            # 4 bps of the 0.5 ETH received, at 3,400: 0.68 USD.
            ("spot", "buy", "binance", "ETH/USDT", D("0.5"), 3400, D("0.68"), None, None),
            # 4 bps of the 1,700 notional.
            ("perp", "sell", "binance", "ETH/USDT", D("0.5"), 3400, D("0.68"), None, None),
            # 1 ETH staked for 1 / 1.05 weETH; the wrap is not a fill.
            ("stake", None, "etherfi", "ETH->weETH", 1, 1 / D("1.05"), 0, None, None),
            # 5 bps of 1,700 USD; slippage is apart from fees.
            ("swap", None, "uniswap", "WETH->USDC", D("0.5"), 3400, D("0.85"), None, None),
            # Closing the short at 3,600: 0.5 * (3,400 - 3,600) = -100 realised.
            ("perp", "buy", "binance", "ETH/USDT", D("0.5"), 3600, D("0.72"), D(-100),
             "close"),
        ]
    assert result.fills[0].node == "trade/0"
    assert result.fills[-1].node == f"close/0@{'2024-01-02T00:00:00Z'}"
    rows = report(result)["fills"]
    assert rows[-1] == {"time": "2024-01-02T00:00:00Z", "node": "close/0@2024-01-02T00:00:00Z",
                        "trigger": "close", "venue": "binance", "kind": "perp", "side": "buy",
                        "asset": "ETH/USDT", "amount": "0.5", "price": "3600", "fee_usd": "0.72",
                        "realised_pnl_usd": "-100"}


def test_a_failed_atomic_block_leaves_no_fill_and_liquidations_are_fills():
    plan = _plan(SMALL_LOOP + "trigger fail every 1d {\n  atomic broken {\n"
                 "    flash borrow 1 WETH from balancer\n    wrap 1 ETH\n  }\n}\n")
    data = _series("price.ETH,price.WETH,price.weETH,rate.weETH,supply.aave.weETH,"
                   "borrow.aave.WETH", "3400,3400,3570,1.05,0,0",
                   "3400,3400,2878.1,0.8465,,")
    result = run_backtest(plan, MARKET, data)
    assert [e.kind for e in result.events][-1] == "failure"
    kinds = [(f.kind, f.trigger) for f in result.fills]
    assert kinds == [("supply", None), ("borrow", None)] + [("liquidation", None)] * 3
    with arithmetic():
        assert [(f.amount, f.price, f.realised_pnl_usd) for f in result.fills[2:]] == [
            (D(r), D(3400), -e.loss_usd) for r, e in
            zip(("12.5", "6.25", "3.125"), result.events, strict=False)]


def test_the_text_report_lists_the_last_20_fills(capsys, tmp_path):
    (tmp_path / "s.csv").write_text("time,price.ETH\n2024-01-01T00:00:00Z,3400\n"
                                    "2024-01-02T00:00:00Z,3400\n")
    (tmp_path / "p.plan").write_text('plan drip\nuse series "s.csv"\n'
                                     "holdings { wallet: 1000 USDT, 1 ETH }\n"
                                     "phase p {\n  repeat 25 as i {\n"
                                     "    transfer i + 1 USDT from wallet to binance\n  }\n}\n")
    assert main(["backtest", str(tmp_path / "p.plan")]) == 0
    out = capsys.readouterr().out
    assert "Fills (the last 20 of 25)" in out
    assert "transfer 25 USDT @ 1 on wallet->binance (p/0.0#24)" in out
    assert "transfer 5 USDT" not in out and "transfer 6 USDT @ 1" in out
    assert "CAGR" in out and "hold       4400 USD, return 0%" in out


def test_the_run_report_shows_oracle_and_market_price_side_by_side(capsys, tmp_path):
    (tmp_path / "s.csv").write_text("time,price.ETH,price.weETH\n2024-01-01T00:00:00Z,3400,3000\n")
    (tmp_path / "p.plan").write_text(LOOP.replace('plan loop "LANGUAGE.md\'s flash-loan loop"\n',
                                                  'plan loop\nuse series "s.csv"\n'))
    assert main(["run", "--format", "json", str(tmp_path / "p.plan")]) == 0
    lending = json.loads(capsys.readouterr().out)["lending"]["aave"]
    # weETH trades at 3,000; aave values it at 3,400 * 1.05.
    assert lending["prices"] == {"weETH": {"oracle": "3570", "market": "3000"}}
    assert main(["run", str(tmp_path / "p.plan")]) == 0
    out = capsys.readouterr().out
    # The lending table's columns (short headers, so that it fits 80 columns) side by side.
    assert re.search(r"oracle\s+market\s+liq\. price", out), out
    assert re.search(r"aave\s+weETH\s+\S+\s+3,570\s+3,000\s", out), out


def test_oracle_names_a_lending_venue_and_an_asset_it_lists(tmp_path):
    text = ("plan t\nholdings { wallet: 1 ETH }\nlet a = oracle(binance, ETH)\n"
            "let b = oracle(aave, BTC)\nphase p {\n  wrap a + b ETH\n}\n")
    found = {(d.code, d.span.line) for d in lint_source(text, "t.plan").diagnostics}
    assert {("SP102", 3), ("SP103", 4)} <= found
