"""What the backtest's charts draw, computed once for the PNG (`--plot`) and the HTML page
(`--html`): times, value, buy and hold, drawdown, cumulative PnL parts, health of the lending
venues the plan uses, exposure in USD, the events to mark and the health thresholds the
plan's triggers name. Floats: these are pixels, never money.

Gaps: where two rows of the series are further apart than three times its usual step, a
row of `None` values is put between them, so that lines break there instead of sloping
across.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from statistics import median
from typing import Any

PARTS = ("funding", "supply_interest", "borrow_interest", "staking", "fees", "gas",
         "slippage", "liquidations", "price")
EVENT_WORDS = {"firing": "fired", "failure": "failed", "liquidation": "liquidated",
               "bad_debt": "bad debt written off"}


@dataclass
class ChartData:
    """Parallel lists, one entry a step (None in a gap)."""

    times: list[datetime] = field(default_factory=list)
    value: list[float | None] = field(default_factory=list)  # ChartData.at: ms -> datetime
    benchmark: list[float | None] = field(default_factory=list)
    drawdown: list[float | None] = field(default_factory=list)       # percent, <= 0
    parts: dict[str, list[float | None]] = field(default_factory=dict)  # cumulative USD
    health: dict[str, list[float | None]] = field(default_factory=dict)
    exposure_usd: list[float | None] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)                   # the result's events
    thresholds: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    value_at: dict[int, float] = field(default_factory=dict)          # event ms -> value

    def at(self, ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _price(result: Any, asset: str, row: int) -> Decimal:
    column = result.series.column("price", asset)
    price = column.value(row) if column is not None and row < len(result.series) else None
    return price if price is not None else result.market.prices.get(asset, Decimal(0))


def _usd(result: Any, amounts: dict[str, Decimal], row: int) -> float:
    """Amounts of assets at the row's prices (the series', else the market's), summed."""
    return float(sum((amount * _price(result, asset, row) for asset, amount in amounts.items()),
                     Decimal(0)))


def _held(result: Any) -> dict[str, Decimal]:
    """The plan's starting holdings by asset (what buy and hold keeps)."""
    held: dict[str, Decimal] = defaultdict(Decimal)
    holdings = getattr(result.plan, "holdings", None)
    for entry in getattr(holdings, "entries", ()) or ():
        for amount in getattr(entry, "amounts", ()) or ():
            value = getattr(getattr(amount, "amount", None), "value", None)
            if isinstance(value, Decimal):
                held[amount.asset] += value
    return dict(held)


def lending_venues(result: Any) -> list[str]:
    """The lending venues the plan uses: those with a health at some step."""
    return sorted(result.snapshots.venues_with_health())


def thresholds(result: Any) -> dict[str, list[tuple[float, str]]]:
    """`health(V) < 1.1`-style comparisons in the plan's `when` conditions: {venue: [(1.1,
    trigger), ...]}, drawn as lines on the health chart."""
    from stratplan.interpreter.evaluate import EvalError, Scope, constant

    scope = Scope({let.name: let for let in result.plan.lets}, {}, result.market)
    found: dict[str, list[tuple[float, str]]] = defaultdict(list)

    def walk(expr: Any, trigger: str) -> None:
        kind = getattr(expr, "kind", None)
        if kind == "compare":
            for side, other in ((expr.left, expr.right), (expr.right, expr.left)):
                if getattr(side, "kind", None) == "call" and side.func == "health" and side.args:
                    venue = getattr(side.args[0], "name", None) or getattr(
                        side.args[0], "symbol", None)
                    try:
                        level = constant(other, scope)
                    except (EvalError, ArithmeticError):
                        level = None
                    if venue and level is not None:
                        found[venue].append((float(level), trigger))
        for child in ("left", "right", "operand"):
            if hasattr(expr, child):
                walk(getattr(expr, child), trigger)

    for trigger in getattr(result.plan, "triggers", ()):
        if trigger.when is not None:
            walk(trigger.when, trigger.name)
    return dict(found)


def chart_data(result: Any, max_points: int = 5000) -> ChartData:
    """The charts' data; a long backtest is thinned to about `max_points` steps (every
    step with an event is kept)."""
    snaps = result.snapshots
    data = ChartData(events=list(result.events), thresholds=thresholds(result))
    if not snaps:
        return data
    evented = {e.time for e in result.events}
    stride = max(1, len(snaps) // max_points)
    times = snaps.times
    gaps = [b - a for a, b in pairwise(times)]
    usual = median(gaps) if gaps else 0
    held = _held(result)
    venues = lending_venues(result)
    running: dict[str, Decimal] = defaultdict(Decimal)
    data.parts = {p: [] for p in PARTS}
    data.health = {v: [] for v in venues}
    peak = float("-inf")
    previous: int | None = None
    last = len(snaps) - 1
    wide = 3 * usual  # a hole in the series: more than three usual steps between two rows
    gapped = False    # a hole since the last step drawn
    for row, time in enumerate(times):
        # Every step's parts, but a whole snapshot only for the steps drawn (a year of
        # minutes draws ~5,000 of its 525,600).
        for part, amount in snaps.parts(row).items():
            if amount:
                running[part] += amount
        if time in evented:
            data.value_at[time] = float(snaps.values[row])
        # The rows on either side of a hole are drawn, so a line stops and starts there,
        # not at the last step thinning happened to keep.
        after = bool(usual) and row > 0 and time - times[row - 1] > wide
        before = bool(usual) and row < last and times[row + 1] - time > wide
        gapped = gapped or after
        if row % stride and time not in evented and row != last and not (after or before):
            continue
        snap = snaps[row]
        if previous is not None and gapped:
            _gap(data, data.at(previous + 1))
        gapped = False
        previous = snap.time
        value = float(snap.value)
        peak = max(peak, value)
        data.times.append(data.at(snap.time))
        data.value.append(value)
        data.benchmark.append(_usd(result, held, row) if held else None)
        data.drawdown.append(0.0 if peak <= 0 else (value - peak) / peak * 100)
        for part in PARTS:
            data.parts[part].append(float(running[part]))
        before = snap.health_before or {}
        for venue in venues:
            # The lower of the health before the step's liquidations and after them: a
            # liquidated account dips below 1 on the chart, as `min_health` says it did.
            found = [h for h in (snap.health.get(venue), before.get(venue)) if h is not None]
            data.health[venue].append(float(min(found)) if found else None)
        data.exposure_usd.append(_usd(result, dict(snap.exposure), row))
    return data


def _gap(data: ChartData, time: datetime) -> None:
    """A row with no values just after the last one: lines break there."""
    data.times.append(time)
    for values in (data.value, data.benchmark, data.drawdown, data.exposure_usd,
                   *data.parts.values(), *data.health.values()):
        values.append(None)
