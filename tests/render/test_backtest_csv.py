"""The backtest's CSV (`render.backtest.write_csv`): every step a row, written as it is made,
with the columns of every step in the order first seen — equal to building every row first
and collecting their keys, which is what it replaced (a year of minutes held that way took
857 MB)."""

from __future__ import annotations

import csv
import io

from stratplan.dsl.parser import parse
from stratplan.executors.market import default_market
from stratplan.interpreter.series.read import read_series
from stratplan.interpreter.time.backtest import run_backtest
from stratplan.interpreter.time.metrics import step_row
from stratplan.render.backtest import render_csv

PLAN = """plan later
holdings { wallet: 20 ETH, 1000 USDT }
phase start { transfer 1000 USDT from wallet to binance }
trigger lend every 3h { stake 5 ETH on etherfi -> weETH  supply all weETH to aave }
trigger borrow every 5h { borrow 1 WETH from aave }
trigger short every 4h { perp sell 0.01 BTC/USDT on binance leverage 5x }
"""


def _naive(result) -> str:
    rows = [step_row(snap) for snap in result.snapshots]
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_columns_that_appear_later_are_added_in_the_order_first_seen():
    plan = parse(PLAN).plan
    assert plan is not None
    lines = ["time,price.ETH,price.BTC"] + [f"{h * 3_600_000},{3400 + 7 * h},{67800 - 11 * h}"
                                           for h in range(12)]
    result = run_backtest(plan, default_market(), read_series(("\n".join(lines) + "\n")
                                                             .encode(), "s.csv"))
    assert not result.failed
    text = render_csv(result)
    assert text == _naive(result)
    header = text.splitlines()[0].split(",")
    # aave's health and the BTC exposure arrive after the first step's columns
    assert header.index("health.aave") > header.index("pnl.liquidations")
    assert header.index("exposure.BTC") > header.index("health.aave")
    assert len(text.splitlines()) == 1 + 12
