"""Issue 26: the text report counts the returns in the plan's one held asset (or `--base`),
and says how many of a trigger's firings failed."""

from __future__ import annotations

from decimal import Decimal

from stratplan.cli import main
from stratplan.dsl.parser import parse
from stratplan.executors.market import default_market
from stratplan.interpreter.series.read import read_series
from stratplan.interpreter.time.backtest import run_backtest
from stratplan.interpreter.time.metrics import report
from stratplan.render.backtest import base_returns, held_asset, render_text

PLAN = """plan eth_only

holdings {
  wallet: 10 ETH
}

phase entry {
  transfer 1 ETH from wallet to binance
}

trigger move when price(ETH) > 3_500 {
  transfer 100 ETH from wallet to binance
}
"""
SERIES = (b"time,price.ETH\n2024-01-01T00:00:00Z,3400\n2024-01-01T08:00:00Z,3600\n"
          b"2024-01-01T16:00:00Z,4000\n")


def _result():  # type: ignore[no-untyped-def]
    plan = parse(PLAN).plan
    assert plan is not None
    return run_backtest(plan, default_market(), read_series(SERIES, "s.csv"))


def test_returns_in_the_one_held_asset():
    result = _result()
    assert held_asset(result) == "ETH"
    base = base_returns(result, "ETH")
    assert base is not None
    start = result.value_start / Decimal(3400)            # USD at the first row's ETH price
    end = result.snapshots[-1].value / Decimal(4000)      # and at the last row's
    assert Decimal(base["value_start"]) == start
    assert abs(Decimal(base["value_end"]) - end) < Decimal("1e-30")
    assert abs(Decimal(base["return"]) - (end / start - 1)) < Decimal("1e-30")
    text = render_text(report(result), "p.plan", base)
    assert "  in ETH     " in text and "ETH, return" in text


def test_failed_firings_are_said():
    result = _result()
    data = report(result)
    assert data["summary"]["firings"] == {"move": 1}
    assert "trigger move: 1 firing(s), 1 of them failed" in render_text(data, "p.plan")


def test_an_asset_with_no_price_is_exit_2(tmp_path, capsys):
    plan = tmp_path / "p.plan"
    plan.write_text(PLAN)
    (tmp_path / "s.csv").write_bytes(SERIES)
    code = main(["backtest", str(plan), "--series", str(tmp_path / "s.csv"), "--base", "DOGE"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--base DOGE" in err[0]


def test_a_stablecoin_at_one_dollar_is_not_counted_again(tmp_path, capsys):
    plan = tmp_path / "p.plan"
    plan.write_text("plan usdt\n\nholdings {\n  binance: 10_000 USDT\n}\n\nphase a {\n"
                    "  spot buy 0.01 BTC/USDT on binance\n}\n")
    assert main(["backtest", str(plan), "--days", "2"]) == 0
    assert "  in USDT" not in capsys.readouterr().out
    assert main(["backtest", str(plan), "--days", "2", "--base", "USDT"]) == 0
    assert "  in USDT" in capsys.readouterr().out  # asked for: shown
