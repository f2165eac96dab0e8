"""Issue 26: what the backtest's charts draw (stratplan/render/chart_data.py) and the PNG's
panels: buy and hold at each step's prices, exposure in USD, health only for the lending
venues the plan uses with its triggers' thresholds, gaps in the series left as gaps."""

from __future__ import annotations

import io

import pytest

from stratplan.dsl.parser import parse
from stratplan.executors.market import default_market
from stratplan.interpreter.series.read import read_series
from stratplan.interpreter.time.backtest import run_backtest
from stratplan.render.chart_data import chart_data

SPOT = """plan spot_only

holdings {
  wallet: 1 ETH
  binance: 10_000 USDT
}

phase entry {
  spot buy 0.1 BTC/USDT on binance
}
"""

LOOP = """plan loop

holdings {
  wallet: 20 ETH
}

phase entry {
  wrap 10 ETH
  supply all WETH to aave
  borrow 10_000 USDT from aave
}

trigger guard when health(aave) < 1.4 or health(aave) < 1.2 {
  repay 1_000 USDT to aave
}
"""


def _series(rows: list[tuple[str, int, int]]) -> bytes:
    lines = ["time,price.BTC,price.ETH"] + [f"{t},{btc},{eth}" for t, btc, eth in rows]
    return ("\n".join(lines) + "\n").encode()


ROWS = [("2024-01-01T00:00:00Z", 60_000, 3_000), ("2024-01-01T08:00:00Z", 61_000, 3_100),
        ("2024-01-01T16:00:00Z", 62_000, 3_200),
        # a day and a half missing: the lines break here
        ("2024-01-03T08:00:00Z", 63_000, 3_300), ("2024-01-03T16:00:00Z", 64_000, 3_400)]


def _run(text: str) -> object:
    plan = parse(text).plan
    assert plan is not None
    return run_backtest(plan, default_market(), read_series(_series(ROWS), "s.csv"))


def test_buy_and_hold_exposure_and_gaps():
    data = chart_data(_run(SPOT))
    # Five rows and one gap row between the third and the fourth.
    assert len(data.times) == 6 and data.value[3] is None and data.value[2] is not None
    # Buy and hold: 1 ETH + 10,000 USDT at each row's prices.
    assert data.benchmark == [10_000 + 3_000, 10_000 + 3_100, 10_000 + 3_200, None,
                              10_000 + 3_300, 10_000 + 3_400]
    # Exposure in USD: 1 ETH in the wallet (less its gas) and about 0.1 BTC.
    first = data.exposure_usd[0]
    assert first is not None and 3_000 + 0.0999 * 60_000 < first < 3_000 + 0.1 * 60_000
    assert data.health == {}  # no lending venue used: no health panel


def test_a_thinned_series_breaks_its_lines_only_at_its_holes():
    """12,000 rows of a minute with one hole of a day: thinned to ~500 points, the lines
    are unbroken but for that hole (drawn points 24 minutes apart are not a hole), and the
    rows on either side of it are drawn."""
    minute, day = 60_000, 86_400_000
    times = [row * minute for row in range(6_000)] + \
        [day + row * minute for row in range(6_000, 12_000)]
    rows = [(str(t), 60_000 + row % 50, 3_000) for row, t in enumerate(times)]
    plan = parse(SPOT).plan
    assert plan is not None
    result = run_backtest(plan, default_market(), read_series(_series(rows), "s.csv"))
    data = chart_data(result, max_points=500)
    holes = [at for at, value in enumerate(data.value) if value is None]
    assert len(holes) == 1
    hole = holes[0]
    # the last row before the hole and the first after it are the points beside it
    assert data.times[hole - 1] == data.at(times[5_999])
    assert data.times[hole + 1] == data.at(times[6_000])
    assert 500 <= len(data.value) <= 510


def test_health_of_the_venues_used_and_the_thresholds_the_triggers_name():
    data = chart_data(_run(LOOP))
    assert list(data.health) == ["aave"]
    assert sorted(data.thresholds["aave"]) == [(1.2, "guard"), (1.4, "guard")]


@pytest.mark.parametrize(("text", "panels"), [(SPOT, 3), (LOOP, 4)])
def test_the_png_has_a_health_panel_only_with_a_lending_venue(text, panels):
    import matplotlib.image

    from stratplan.render.backtest import plot_png

    image = matplotlib.image.imread(io.BytesIO(plot_png(_run(text))), format="png")
    assert image.shape[0] == round(2.6 * panels * 100)  # 2.6 inches a panel at 100 dpi
