"""`stratplan series synth`: a synthetic series, so that users and tests have data without a
network (LANGUAGE.md section 8; the model is described in docs/backtest.md).

Deterministic for a seed (Python's `random.Random`, cells rounded to 8 significant digits).
From 2024-01-01T00:00:00Z, every `step`, for `days` days:

- **Prices.** ETH and BTC follow geometric Brownian motions (annual volatility 65% and
  50%, correlation 0.8, no drift) with jumps: a Poisson number of jumps (six a year for
  each), each a log-return drawn from N(-1%, 6%), shared by both with probability one half.
  Columns `price.ETH`, `price.BTC` (WETH is derived from ETH by the market's rate 1).
- **weETH.** Its exchange rate to ETH grows at a staking APR of 3% (with its own small
  noise): `rate.weETH` from the market's 1.05. It falls only in a **slashing**: about one
  every two years (a Poisson arrival of rate 0.5 a year, never in the first week), the
  rate drops by 2-6% at once and grows again from there. This is what moves Aave's health
  of a weETH loop (Aave prices weETH at ETH * rate, LANGUAGE.md section 9). Its market
  price is ETH * rate, except during a **depeg**: about one a year (a Poisson arrival of
  rate 1.2 a year, never in the first week), weETH trades at a discount that opens to
  3-12% within six hours and closes over two to five days: the value of a loop falls,
  its health does not, and unwinding through a DEX then costs the discount.
  `price.weETH` is written throughout.
- **Funding.** Per base (BTC, ETH), the 8-hour rate is an Ornstein-Uhlenbeck process
  around 0.01% (half-life three days, stationary deviation 0.015%) plus a tilt toward the
  last day's return; each venue (binance, bybit, okx) adds its own small deviation (an
  Ornstein-Uhlenbeck process around zero, a fifth of the noise); it settles every 8 hours on the hour (00:00, 08:00,
  16:00). A row at a settlement time carries it; with a step longer than 8 hours a row
  carries the sum of the settlements it passed.
- **Aave rates.** Each borrowable asset's utilisation U is a mean-reverting process
  (WETH around 80%, USDT and USDC around 85%) kept within 20-99%, pushed up by ETH's
  recent rise for WETH; the borrow APR is Aave's two-slope curve (WETH: 0 + 2.7% up to
  the optimal 90%, then +80%; stablecoins: 0 + 5.5% up to 92%, then +60%), the supply
  APR is borrow * U * (1 - 15% reserve factor). weETH is supplied only: its supply APR
  is a small 0.01-0.1%. Rates are written once an hour (every row when the step is longer).
- **WETH squeeze.** About twice a year (a Poisson arrival of rate 2 a year, never in the
  first week), demand for WETH loans holds its utilisation at 91-94% or above, past the
  90% kink, for three to ten days: the borrow APR jumps above 11%, far above weETH's 3%
  staking APR, and a loop borrowing WETH against weETH pays more than it earns.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from stratplan.interpreter.series.read import iso, parse_time

START = "2024-01-01T00:00:00Z"
YEAR_MS = 365 * 86_400_000
HOUR_MS = 3_600_000
FUNDING_MS = 8 * HOUR_MS
VENUES = ("binance", "bybit", "okx")
COLUMNS = ("price.BTC", "price.ETH", "price.weETH", "rate.weETH",
           *(f"funding.{venue}.{base}" for venue in VENUES for base in ("BTC", "ETH")),
           "supply.aave.WETH", "supply.aave.USDT", "supply.aave.USDC",
           "supply.aave.weETH", "borrow.aave.WETH", "borrow.aave.USDT", "borrow.aave.USDC")
MAX_ROWS = 10_000_000


def _fmt(value: float) -> str:
    """8 significant digits, no exponent, no trailing zeros."""
    if value == 0:
        return "0"
    text = f"{value:.8g}"
    if "e" in text:
        text = f"{value:.{max(0, 7 - math.floor(math.log10(abs(value))))}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


@dataclass
class _Utilisation:
    mean: float
    value: float
    optimal: float
    slope1: float
    slope2: float

    def step(self, rng: random.Random, dt: float, push: float) -> None:
        # Mean reversion with a half-life of five days, bounded to 20-99%.
        theta = math.log(2) / (5 / 365)
        self.value += theta * (self.mean - self.value) * dt + 0.25 * math.sqrt(dt) * \
            rng.gauss(0, 1) + push
        self.value = min(0.99, max(0.20, self.value))

    def borrow(self) -> float:
        u = self.value
        if u <= self.optimal:
            return self.slope1 * u / self.optimal
        return self.slope1 + self.slope2 * (u - self.optimal) / (1 - self.optimal)

    def supply(self) -> float:
        return self.borrow() * self.value * 0.85


def synth_rows(days: int, step_ms: int, seed: int) -> Iterator[str]:
    """The series text, line by line (header first)."""
    if days <= 0:
        raise ValueError("--days must be positive")
    if step_ms <= 0:
        raise ValueError("--step must be positive")
    count = days * 86_400_000 // step_ms
    if count + 1 > MAX_ROWS:
        raise ValueError(f"--days / --step give more than {MAX_ROWS:,} rows")
    rng = random.Random(seed)
    start = parse_time(START)
    dt = step_ms / YEAR_MS
    eth, btc, rate = 3400.0, 67800.0, 1.05
    vol_eth, vol_btc, rho = 0.65, 0.50, 0.8
    jump_rate, jump_mu, jump_sigma = 6.0, -0.01, 0.06
    funding = {"BTC": 0.0001, "ETH": 0.0001}
    spread = {(venue, base): 0.0 for venue in VENUES for base in funding}
    fund_theta = math.log(2) / (3 / 365)
    fund_sigma = 0.00015 * math.sqrt(2 * fund_theta)   # stationary deviation 0.015%
    utils = {"WETH": _Utilisation(0.80, 0.80, 0.90, 0.027, 0.80),
             "USDT": _Utilisation(0.85, 0.85, 0.92, 0.055, 0.60),
             "USDC": _Utilisation(0.85, 0.85, 0.92, 0.055, 0.60)}
    weeth_supply = 0.0005
    depeg_rate = 1.2
    depeg: tuple[int, float, int, int] | None = None    # (start, depth, open end, close end)
    slashing_rate, squeeze_rate = 0.5, 2.0
    squeeze: tuple[float, int] | None = None             # (utilisation held, end)
    history: list[tuple[int, float]] = [(start, eth)]    # ETH a day back, for tilts
    last_fund_time = start
    yield "time," + ",".join(COLUMNS)
    for index in range(count + 1):
        now = start + index * step_ms
        if index:
            z1 = rng.gauss(0, 1)
            z2 = rho * z1 + math.sqrt(1 - rho * rho) * rng.gauss(0, 1)
            j_eth = j_btc = 0.0
            if rng.random() < jump_rate * dt:
                j_eth = rng.gauss(jump_mu, jump_sigma)
                j_btc = j_eth if rng.random() < 0.5 else 0.0
            if rng.random() < jump_rate * dt:
                j_btc += rng.gauss(jump_mu, jump_sigma)
            eth *= math.exp(-0.5 * vol_eth ** 2 * dt + vol_eth * math.sqrt(dt) * z1 + j_eth)
            btc *= math.exp(-0.5 * vol_btc ** 2 * dt + vol_btc * math.sqrt(dt) * z2 + j_btc)
            rate *= 1 + max(0.0, 0.03 * dt + 0.0003 * math.sqrt(dt) * rng.gauss(0, 1))
            history.append((now, eth))
            while len(history) > 1 and history[1][0] <= now - 86_400_000:
                history.pop(0)
            day_return = eth / history[0][1] - 1
            for base in funding:
                tilt = 0.002 * day_return
                funding[base] += fund_theta * (0.0001 + tilt - funding[base]) * dt + \
                    fund_sigma * math.sqrt(dt) * rng.gauss(0, 1)
            for key in spread:  # each venue's own deviation, around zero
                spread[key] += fund_theta * -spread[key] * dt + \
                    0.2 * fund_sigma * math.sqrt(dt) * rng.gauss(0, 1)
            for asset, util in utils.items():
                util.step(rng, dt, 0.3 * day_return * dt * 365 if asset == "WETH" else 0.0)
            weeth_supply = min(0.001, max(0.0001, weeth_supply + 0.0002 * math.sqrt(dt)
                                          * rng.gauss(0, 1)))
            if depeg is None and now - start > 7 * 86_400_000 and \
                    rng.random() < depeg_rate * dt:
                depth = rng.uniform(0.03, 0.12)
                depeg = (now, depth, now + 6 * HOUR_MS,
                         now + 6 * HOUR_MS + int(rng.uniform(2, 5) * 86_400_000))
            if depeg is not None and now >= depeg[3]:
                depeg = None
            first_week = now - start <= 7 * 86_400_000
            if not first_week and rng.random() < slashing_rate * dt:
                rate *= 1 - rng.uniform(0.02, 0.06)
            if squeeze is None and not first_week and rng.random() < squeeze_rate * dt:
                squeeze = (rng.uniform(0.91, 0.94),
                           now + int(rng.uniform(3, 10) * 86_400_000))
            if squeeze is not None:
                if now >= squeeze[1]:
                    squeeze = None
                else:
                    utils["WETH"].value = max(utils["WETH"].value, squeeze[0])
        discount = 0.0
        if depeg is not None:
            begin, depth, opened, closed = depeg
            if now <= opened:
                discount = depth * (now - begin) / max(1, opened - begin)
            else:
                discount = depth * (closed - now) / max(1, closed - opened)
        cells = [_fmt(btc), _fmt(eth), _fmt(eth * rate * (1 - discount)), _fmt(rate)]
        # Funding: the settlements passed since the last row that carried one.
        settlements = (now // FUNDING_MS - last_fund_time // FUNDING_MS) if index else 0
        if settlements > 0:
            last_fund_time = now
            cells += [_fmt(round((funding[base] + spread[venue, base]) * settlements, 10))
                      for venue in VENUES for base in ("BTC", "ETH")]
        else:
            cells += [""] * (2 * len(VENUES))
        hourly = index == 0 or step_ms >= HOUR_MS or now // HOUR_MS != (now - step_ms) // HOUR_MS
        if hourly:
            cells += [_fmt(utils[a].supply()) for a in ("WETH", "USDT", "USDC")]
            cells += [_fmt(weeth_supply)]
            cells += [_fmt(utils[a].borrow()) for a in ("WETH", "USDT", "USDC")]
        else:
            cells += [""] * 7
        yield iso(now) + "," + ",".join(cells)


def synth(days: int, step_ms: int, seed: int) -> str:
    """The whole series text."""
    return "\n".join(synth_rows(days, step_ms, seed)) + "\n"


__all__ = ["COLUMNS", "START", "synth", "synth_rows"]
