"""The summary's per-step metrics, gathered as the steps are made (issue 27).

Drawdown, the step returns behind Sharpe and Sortino, and the lowest health need every
step (LANGUAGE.md sections 8 and 9), but none needs the steps kept: each is a running
quantity. `Snapshots` feeds one `RunningMetrics` at every step it is given, whether it keeps
the steps or not, so a backtest whose report shows no step (the text and JSON summaries, a
sweep) holds no step at all, and one that keeps them works its summary out the same way.

- **Drawdown**: the peak so far (from the value before the phases) and the largest fall
  from it, (peak - value) / peak, with the times of both.
- **Step returns** r_i = V_i / V_(i-1) - 1 (where V_(i-1) > 0): a step whose value did not
  change is a zero return, counted without a division (a hedged book keeps the very same
  Decimal step after step, time/quiet.py). Σr, Σr² and Σr² over the negative returns are
  summed exactly (`EXACT`: every digit of every square), so that the variance is
  (Σr² - (Σr)²/n) / (n - 1) with no rounding before that last division.
- **Lowest health** by venue, before a step's liquidations or after its firings: the first
  time it was reached. Steps where only prices moved (time/quiet.py) keep the tables of
  the step before, so they are not given here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import reduce
from itertools import accumulate, chain, compress, repeat
from operator import is_, itemgetter, lt, sub, truediv

from stratplan.dsl.decimals import EXACT

ZERO = Decimal(0)
_Table = Mapping[str, "Decimal | None"]


def _pick(values: list[Decimal], rows: list[int]) -> Sequence[Decimal]:
    """values[row] for each of the rows (one or more)."""
    return (values[rows[0]],) if len(rows) == 1 else itemgetter(*rows)(values)


class RunningMetrics:
    """Drawdown, step-return sums and lowest health, fed one step at a time."""

    __slots__ = ("_tables", "downside", "health", "last", "moved", "peak", "peak_time",
                 "positive", "squares", "still", "total", "worst", "worst_from", "worst_to")

    def __init__(self, start: Decimal | None = None) -> None:
        # The drawdown's first peak: the value before the phases, at the first step's time.
        self.peak: Decimal | None = start
        self.peak_time: int | None = None
        self.worst = ZERO
        self.worst_from: int | None = None
        self.worst_to: int | None = None
        self.last: Decimal | None = None
        self.positive = False
        self.total = self.squares = self.downside = ZERO
        self.moved = self.still = 0
        self.health: dict[str, tuple[Decimal, int]] = {}
        self._tables: tuple[_Table | None, _Table | None] | None = None

    def value(self, time: int, value: Decimal) -> None:
        """One step's value, in time order."""
        last = self.last
        if last is None:  # the first step
            if self.peak is None:
                self.peak = value
            self.peak_time = time
        elif value is last:  # the step before's value: no return, no new peak, no new fall
            if self.positive:
                self.still += 1
            return
        elif self.positive:
            change = value / last - 1
            if change:
                self.moved += 1
                self.total = EXACT.add(self.total, change)
                square = EXACT.multiply(change, change)
                self.squares = EXACT.add(self.squares, square)
                if change < 0:
                    self.downside = EXACT.add(self.downside, square)
            else:
                self.still += 1
        self.last, self.positive = value, value > 0
        peak = self.peak
        assert peak is not None
        if value > peak:
            self.peak = peak = value
            self.peak_time = time
        if peak > 0:
            drop = (peak - value) / peak
            if drop > self.worst:
                self.worst, self.worst_from, self.worst_to = drop, self.peak_time, time

    def values(self, times: Sequence[int], values: list[Decimal]) -> None:
        """`value(time, value)` for each step in turn, worked out a column at a time for a
        stretch of positive values after a positive one (time/accruing.py's): the same
        operations on the same numbers in the same order, so the same sums, peak and fall
        (tests/interpreter/test_running_metrics.py). Any other stretch goes step by step."""
        last, peak = self.last, self.peak
        if not values or last is None or not self.positive or peak is None or peak <= 0 \
                or min(values) <= 0 or any(map(is_, values, chain((last,), values))):
            for time, value in zip(times, values, strict=True):
                self.value(time, value)
            return
        # Step returns: value / last - 1, zeros counted apart, the rest summed exactly.
        changes = list(map(sub, map(truediv, values, chain((last,), values)), repeat(1)))
        moved = list(filter(None, changes))
        self.moved += len(moved)
        self.still += len(changes) - len(moved)
        add, multiply = EXACT.add, EXACT.multiply
        self.total = reduce(add, moved, self.total)
        squares = list(map(multiply, moved, moved))
        self.squares = reduce(add, squares, self.squares)
        self.downside = reduce(add, compress(squares, map(ZERO.__gt__, moved)), self.downside)
        self.last = values[-1]
        # Drawdown: the peak moves only to a greater value (`max` keeps the first of equals).
        peaks = list(accumulate(values, max, initial=peak))[1:]
        below = list(compress(range(len(values)), map(lt, values, peaks)))
        if below:
            tops, lows = _pick(peaks, below), _pick(values, below)
            drops = list(map(truediv, map(sub, tops, lows), tops))
            worst = max(drops)
            if worst > self.worst:
                first = drops.index(worst)  # the first step that fell that far
                self.worst, self.worst_to = drops[first], times[below[first]]
                self.worst_from = self._peak_time(times, values, peaks[below[first]], peak)
        self.peak_time = self._peak_time(times, values, peaks[-1], peak)
        self.peak = peaks[-1]

    def _peak_time(self, times: Sequence[int], values: list[Decimal], top: Decimal,
                   before: Decimal) -> int | None:
        """When the peak `top` was reached: `before` (the peak before the stretch) at the
        time known, any other at its first step (the steps before it are all lower: a
        peak moves only to a greater value, so `index` finds that very step)."""
        return self.peak_time if top is before else times[values.index(top)]

    def lowest(self, times: Sequence[int], venue: str,
               health: Sequence[Decimal | None]) -> None:
        """`tables` for one venue's health over a stretch of steps (the same table before
        and after each): its lowest, at the first step that reached it."""
        values = [value for value in health if value is not None]
        if not values:
            return
        low = min(values)
        known = self.health.get(venue)
        if known is None or low < known[0]:
            at = health.index(low)
            self.health[venue] = (health[at], times[at])  # type: ignore[assignment]
        self._tables = None

    def tables(self, time: int, before: Mapping[str, Decimal | None] | None,
               after: Mapping[str, Decimal | None] | None) -> None:
        """One step's health tables (before its liquidations, after its firings)."""
        seen = self._tables
        if seen is not None and after is seen[1] and before is seen[0]:
            return
        self._tables = (before, after)
        found = self.health
        for table in (before, after):
            if not table:
                continue
            for venue, health in table.items():
                if health is None:
                    continue
                known = found.get(venue)
                if known is None or health < known[0]:
                    found[venue] = (health, time)

    @property
    def returns(self) -> int:
        """How many step returns there are (zero ones included)."""
        return self.moved + self.still

    def variance(self) -> Decimal:
        """The sample variance of the step returns (two or more of them): the sums are
        exact, so only the final division rounds."""
        count = Decimal(self.returns)
        spread = EXACT.subtract(self.squares,
                                EXACT.divide(EXACT.multiply(self.total, self.total), count))
        return spread / (count - 1)
