"""W1 written by hand, per step, in Decimal (40 digits): the reference the peers are checked
against. The same loop as the speed bar's baseline: funding at rows with a funding cell (the
perp receives -position * price * rate), the `when price > 150000 cooldown 1d` edge, a weekly
check, the value each step. Like that baseline it counts the trigger's firings (W1's price
never reaches 150,000) and does not act on them.

    python benchmarks/peers/hand_loop.py SERIES.csv   ->   funding value_end fired weekly
"""

from __future__ import annotations

import csv
import sys
from datetime import datetime
from decimal import Context, Decimal, localcontext

CEILING = Decimal(150_000)
COOLDOWN_MS = 86_400_000
WEEK_MS = 7 * 86_400_000
FEE = Decimal("0.0004")
HOLDINGS = Decimal(150_000)


def ms(t: str) -> int:
    """A time cell as milliseconds: digits as they are, else ISO 8601."""
    if t.isdigit():
        return int(t)
    return int(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000)


def main(path: str) -> None:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    head, rows = rows[0], rows[1:]
    ip, iff = head.index("price.BTC"), head.index("funding.binance.BTC")
    with localcontext(Context(prec=40)):
        times = [ms(r[0]) for r in rows]
        p0 = Decimal(rows[0][ip])
        cash = HOLDINGS - p0 - p0 * FEE - p0 * FEE  # spot buy and perp sell, fee on each
        spot, perp, entry, funding = Decimal(1), Decimal(-1), p0, Decimal(0)
        held, blocked, next_week, fired, weekly = False, -1, times[0] + WEEK_MS, 0, 0
        price, value = p0, cash
        for k in range(1, len(rows)):
            r, now = rows[k], times[k]
            if r[ip]:
                price = Decimal(r[ip])
            if r[iff] and perp:
                got = -perp * price * Decimal(r[iff])
                funding += got
                cash += got
            above = price > CEILING
            if above and not held and now >= blocked:
                fired += 1
                blocked = now + COOLDOWN_MS
            held = above
            if now >= next_week:
                weekly += 1
                next_week = times[0] + ((now - times[0]) // WEEK_MS + 1) * WEEK_MS
            value = cash + spot * price + perp * (price - entry)
        print(funding, value, fired, weekly)


if __name__ == "__main__":
    main(sys.argv[1])
