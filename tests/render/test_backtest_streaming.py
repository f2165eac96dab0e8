"""The backtest's long outputs, written as they are made: the CSV (`render.backtest.
write_csv`: every step a row, the columns of every step in the order first seen) equals
building every row first and collecting their keys, and the JSON with `--steps`
(`write_json`) equals `json.dumps` of the whole report, which is what they replaced (a year
of minutes held that way took 857 MB and 2.2 GB)."""

from __future__ import annotations

import csv
import io
import json

from stratplan.dsl.parser import parse
from stratplan.executors.market import default_market
from stratplan.interpreter.series.read import read_series
from stratplan.interpreter.time.backtest import run_backtest
from stratplan.interpreter.time.metrics import report, step_row
from stratplan.render.backtest import render_csv, write_json

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


def _result():
    plan = parse(PLAN).plan
    assert plan is not None
    lines = ["time,price.ETH,price.BTC"] + [f"{h * 3_600_000},{3400 + 7 * h},{67800 - 11 * h}"
                                           for h in range(12)]
    result = run_backtest(plan, default_market(), read_series(("\n".join(lines) + "\n")
                                                             .encode(), "s.csv"))
    assert not result.failed
    return result


def test_columns_that_appear_later_are_added_in_the_order_first_seen():
    result = _result()
    text = render_csv(result)
    assert text == _naive(result)
    header = text.splitlines()[0].split(",")
    # aave's health and the BTC exposure arrive after the first step's columns
    assert header.index("health.aave") > header.index("pnl.liquidations")
    assert header.index("exposure.BTC") > header.index("health.aave")
    assert len(text.splitlines()) == 1 + 12


def test_the_json_with_every_step_is_the_whole_report_dumped():
    result = _result()
    for steps in (False, True):
        out = io.StringIO()
        write_json(report(result), result, out, steps=steps)
        assert out.getvalue() == json.dumps(report(result, steps=steps), indent=2) + "\n"
    assert len(json.loads(out.getvalue())["step_list"]) == 12
