"""W1 on vectorbt, vectorised: two columns on one BTC price sharing one cash balance (spot long
1 BTC, perp short 1 BTC, 4 bps on each), the `when price > 150000 cooldown 1d` edge as a
crossing signal that buys the perp back, the weekly check as a mask over the held amounts, and
funding as a cash-flow series added to the portfolio's value.

    python benchmarks/peers/w1_vectorbt.py SERIES.csv   ->   one JSON line (w1_common.Report)

What maps and what does not (README.md):
- The perp is a short of the same close price: vectorbt has no perpetual, no margin and no
  funding. A short's value, proceeds less the price now, is the perp's unrealised PnL, so the
  value is the same.
- `Portfolio.from_orders` has no cash deposits (vectorbt PRO has), so funding is computed from
  the perp's held amount (held coming into each row, as funding settles before triggers) and
  added to the value afterwards; it is not in the portfolio's cash while it simulates.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import vectorbt as vbt
from w1_common import BAND, FEE, HOLDINGS, SIZE, Report, edge_firings, load, weekly_rows


def main(path: str) -> None:
    s = load(path)
    n = len(s.price)
    # A naive (UTC) index: with a tz-aware one, vectorbt's shape checks turn the index into
    # Timestamp objects one by one (most of the run with pandas 3).
    index = s.times.tz_localize(None)
    close = pd.DataFrame({"spot": s.price, "perp": s.price}, index=index)

    # Orders: both legs at the first price; each firing of close_hedge buys 1 BTC of perp.
    size = np.full((n, 2), np.nan)
    size[0] = (SIZE, -SIZE)
    fired = edge_firings(s.times, s.price)
    size[fired, 1] = SIZE
    pf = vbt.Portfolio.from_orders(
        close,
        pd.DataFrame(size, index=index, columns=close.columns),
        direction="both",
        fees=FEE,
        allow_partial=False,  # an order the cash does not cover is rejected, not cut down
        init_cash=HOLDINGS,
        cash_sharing=True,
        group_by=True,
        freq="1min",
    )
    held = pf.assets().to_numpy()  # BTC per column after each row's orders

    # Funding: the perp receives -position * price * rate at rows with a funding cell, on the
    # position held coming into the row (row 0 only opens the plan).
    perp_before = np.concatenate(([0.0], held[:-1, 1]))
    rate = np.nan_to_num(s.funding, nan=0.0)
    rate[0] = 0.0
    flows = -perp_before * s.price * rate
    value = pf.value().to_numpy() + np.cumsum(flows)

    # The weekly check: exposure(BTC) is spot plus perp, in the band.
    due = weekly_rows(s.times)
    exposure = held[:, 0] + held[:, 1]
    failed = due & (np.abs(exposure) > BAND)

    Report(
        peer="vectorbt",
        funding=float(flows.sum()),
        value_end=float(value[-1]),
        fired=len(fired),
        weekly=int(due.sum()),
        weekly_failed=int(failed.sum()),
    ).print()


if __name__ == "__main__":
    main(sys.argv[1])
