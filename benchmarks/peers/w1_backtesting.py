"""W1 on backtesting.py, an event loop like stratplan's: a Strategy whose next() runs once a
step. The hedge is two trades on the one instrument (`hedging=True`): a long of 1 BTC and a
short of 1 BTC, both filled at the first price with 4 bps commission each. Each step, next()
settles funding at rows with a funding cell (on the trades held coming into the row), runs the `when price > 150000 cooldown 1d` edge
(a firing closes the short, as `perp buy 1 BTC` does) and the weekly check, and keeps the
value.

    python benchmarks/peers/w1_backtesting.py SERIES.csv   ->   one JSON line (w1_common.Report)

What maps and what does not (README.md):
- One instrument, OHLC bars: the price is given as Open = High = Low = Close. The spot leg and
  the perp leg are both trades in it; backtesting.py has no perpetual and no funding. The
  short's P&L is the linear perp's, so the value is the same; it takes margin as a spot short
  would (cash 150,000 covers both legs at 1x).
- No cash flows: backtesting.py's broker has no public way to credit cash, so the Strategy
  keeps the funding it received and the value is the broker's equity plus that funding.
  The equity curve in the library's stats leaves funding out.
- Orders are placed in init() and filled with `trade_on_close=True`, so both legs fill at the
  first row's price, as stratplan's phases do at the series' first time; a firing's order in
  next() fills at that row's close. Trades are left open at the end, as in stratplan's report.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
from backtesting import Backtest, Strategy
from w1_common import (
    BAND,
    CEILING,
    COOLDOWN_NS,
    FEE,
    HOLDINGS,
    SIZE,
    WEEK_NS,
    Report,
    load,
)


class BasisCarry(Strategy):
    """Spot long + perp short, funding, the close_hedge edge and the weekly check."""

    def init(self) -> None:
        self.buy(size=SIZE)  # spot buy 1 BTC
        self.sell(size=SIZE)  # perp sell 1 BTC, leverage 1x
        self.funding = 0.0
        self.value = HOLDINGS
        self.fired = self.weekly = self.weekly_failed = 0
        self.held = False
        self.blocked = np.iinfo(np.int64).min
        ns = pd.DatetimeIndex(self.data.index).asi8
        self.t0 = int(ns[0])
        self.next_week = self.t0 + WEEK_NS

    def next(self) -> None:
        now = int(self.data.Nanos[-1])
        price = float(self.data.Close[-1])
        rate = float(self.data.Funding[-1])
        perp = self.position.size - SIZE  # the trades' sizes less the spot leg's
        if rate == rate and perp:  # a funding cell (not NaN)
            self.funding += -perp * price * rate
        above = price > CEILING
        if above and not self.held and now >= self.blocked:
            self.fired += 1
            self.blocked = now + COOLDOWN_NS
            self.close_hedge()
        self.held = above
        if now >= self.next_week:
            self.weekly += 1
            self.next_week = self.t0 + ((now - self.t0) // WEEK_NS + 1) * WEEK_NS
            if abs(self.position.size) > BAND:  # exposure(BTC): the trades' sizes summed
                self.weekly_failed += 1
        self.value = self.equity + self.funding

    def close_hedge(self) -> None:
        """`perp buy 1 BTC`: close the short if there is one, else open a long (which the
        broker cancels when the cash does not cover it: there is no leveraged perp here)."""
        shorts = [t for t in self.trades if t.is_short]
        if shorts:
            shorts[0].close()
        else:
            self.buy(size=SIZE)


def main(path: str) -> None:
    s = load(path)
    data = pd.DataFrame(
        {
            "Open": s.price,
            "High": s.price,
            "Low": s.price,
            "Close": s.price,
            "Funding": s.funding,
            "Nanos": s.times.asi8,
        },
        index=s.times.tz_localize(None),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trades left open at the end; no volume column
        bt = Backtest(
            data,
            BasisCarry,
            cash=HOLDINGS,
            commission=FEE,
            margin=1.0,
            trade_on_close=True,
            hedging=True,
        )
        stats = bt.run()
    st: BasisCarry = stats._strategy
    Report(
        peer="backtesting.py",
        funding=st.funding,
        value_end=st.value,
        fired=st.fired,
        weekly=st.weekly,
        weekly_failed=st.weekly_failed,
    ).print()


if __name__ == "__main__":
    main(sys.argv[1])
