"""What the two peer scripts share: W1's constants, the series read into float arrays, and the
report each prints (one JSON line, read by run.py)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

HOLDINGS = 150_000.0  # USDT on binance
SIZE = 1.0  # BTC, each leg
FEE = 0.0004  # binance taker fee, 4 bps, charged in USDT on both legs
CEILING = 150_000.0  # trigger close_hedge when price(BTC) > ceiling
COOLDOWN_NS = 86_400 * 10**9  # cooldown 1d
WEEK_NS = 7 * 86_400 * 10**9  # trigger weekly every 1w
BAND = 0.01  # the weekly assert: |exposure(BTC)| <= 0.01

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Series:
    times: pd.DatetimeIndex  # UTC
    price: FloatArray  # price.BTC, empty cells carried forward
    funding: FloatArray  # funding.binance.BTC per 8h, NaN where the cell is empty


@dataclass
class Report:
    peer: str
    funding: float  # funding received by the perp leg, USDT
    value_end: float  # holdings' value at the last step, USDT
    fired: int  # close_hedge firings
    weekly: int  # weekly checks run
    weekly_failed: int  # weekly checks whose assert failed

    def print(self) -> None:
        # repr of a float is exact enough to compare in Decimal in run.py
        print(json.dumps(asdict(self)))


def load(path: str) -> Series:
    """The W1 CSV (time, price.BTC, funding.binance.BTC) as arrays. A time cell is ISO 8601 or
    milliseconds, as stratplan reads it."""
    df = pd.read_csv(
        path,
        usecols=["time", "price.BTC", "funding.binance.BTC"],
        dtype={"time": str, "price.BTC": np.float64, "funding.binance.BTC": np.float64},
    )
    t = df["time"]
    times = (
        pd.to_datetime(t.astype(np.int64), unit="ms", utc=True)
        if t.str.isdigit().all()
        else pd.to_datetime(t, utc=True, format="ISO8601")
    )
    price = df["price.BTC"].ffill().to_numpy(np.float64)
    funding = df["funding.binance.BTC"].to_numpy(np.float64)
    return Series(pd.DatetimeIndex(times).as_unit("ns"), price, funding)


def weekly_rows(times: pd.DatetimeIndex) -> npt.NDArray[np.bool_]:
    """Rows where `every 1w` comes due, as the hand loop counts them: the first row at or past
    each multiple of a week from the first time (one check when a gap spans several)."""
    ns = times.asi8
    week = (ns - ns[0]) // WEEK_NS
    due = np.zeros(len(ns), dtype=bool)
    due[1:] = week[1:] > week[:-1]
    return due


def edge_firings(times: pd.DatetimeIndex, price: FloatArray) -> IntArray:
    """Rows where `when price > CEILING cooldown 1d` fires: a rising edge (price above the
    ceiling where the step before was not; the first row only opens the plan), then the
    cooldown over the few crossings in order."""
    if len(price) < 2:
        return np.zeros(0, dtype=np.int64)
    above = price > CEILING
    edge = np.zeros(len(price), dtype=bool)
    edge[1] = above[1]
    edge[2:] = above[2:] & ~above[1:-1]
    ns = times.asi8
    rows: list[int] = []
    blocked = np.iinfo(np.int64).min
    for k in np.flatnonzero(edge):
        if ns[k] >= blocked:
            rows.append(int(k))
            blocked = ns[k] + COOLDOWN_NS
    return np.asarray(rows, dtype=np.int64)
