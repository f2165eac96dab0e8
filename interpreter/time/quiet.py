"""Quiet rows: rows of a series where nothing can happen, crossed without stepping (issue 27).

The backtest steps every row (LANGUAGE.md section 8), and most rows of a long series change
nothing but prices: no settlement, no rate, no trigger time, no `when` condition that can
flip, no account near liquidation. Across such a row the books keep their amounts, so the
step's only result is the portfolio's value at the row's prices; the health and exposure
tables are those of the step before, and every PnL part but `price` is zero.

`QuietRows.stretch(row)` says how many rows from `row` on are quiet, given the state after
the step before; `cross` keeps their snapshots. A row is *not* quiet (the loop steps it in
full) when, at it:
- it is the first step after the phases (every `when` is evaluated for the first time),
  or follows a stretch, or follows a step where a trigger fired (a trigger evaluated before
  the firing saw the books before it, so what it remembers as `held` need not be what its
  condition says of the books now), or follows a step where a condition could not be
  evaluated (a failure is recorded at every step); the loop, `backtest._run`, steps such
  rows;
- a funding, rate, supply, borrow or oracle column has a cell (a settlement, a new rate or
  oracle price), or a perp without a funding column crosses its funding interval;
- an `every` trigger is due;
- a price a `when` condition compares with a constant is not surely on the same side of
  that constant as at the row before. The test is a float pre-filter (`Column.floats`):
  rounding to the nearest float is monotonic, so a float strictly beyond the constant's is
  a price strictly beyond the constant, and a 1e-12 (relative) margin is kept on top;
  nearer than that, the row is stepped and the exact Decimal comparison decides;
- an open perp's mark is not surely on the safe side of its guard bound
  (`readings.perp_bound`, the same 1e-12 margin on top).

Quiet rows are crossed only while the books allow it (`_layout`): no lending account (its
interest accrues every row), every `when` condition compiled (`triggers.compile_condition`)
into comparisons whose varying side is the price of an asset with its own price column
(what the books hold is fixed; `value()` only while no term of it moves with a price), no
rate-bearing asset that a step must follow growing at a staking APR, every held asset and
perp quote priced by its own column or constant. Otherwise every row is stepped.

What the reference path computes at a quiet row, and how a stretch gets it:
- value: the books are fixed, so the value is A + Σ B_j · p_j over the priced columns (a
  perp quoted in an asset worth exactly 1 counts as its size: size · (p - entry) is linear
  in p), plus, for a perp quoted in anything else, its own term at the row's mark. Every
  term is exact and the total is rounded once, as `accounts.portfolio_value` works it
  out, so it equals the step's value to the last digit. When nothing moves with a price
  (a hedged book), the last step's value is kept as it is. The PnL parts still add up
  exactly (the price part is what the value change leaves of the others);
- trigger states: no `when` condition changed its value (the compared prices stayed on
  their sides), so `held` is unchanged; no `every` is due; cooldowns only matter to firings;
- market: the next stepped row applies its own row (held prices carry forward in the
  series), so nothing is caught up here.

tests/interpreter/test_backtest_quiet.py compares the result with `reference=True` on
generated plans and series, every number to the last digit.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Sequence
from decimal import Decimal
from itertools import repeat
from typing import Any

from stratplan.dsl.decimals import EXACT
from stratplan.executors.accounts import perp_value
from stratplan.interpreter.evaluate import Scope
from stratplan.interpreter.series.read import Column, Series
from stratplan.interpreter.time.readings import Readings
from stratplan.interpreter.time.results import Snapshots
from stratplan.interpreter.time.triggers import TriggerState, first_every_row, fixed_value

ZERO = Decimal(0)
# How far (relatively) a float must be from a bound for its side to be certain. Rounding to
# the nearest float is monotonic, so a float strictly above the level's float is a price
# strictly above the level already; the margin covers the guard's level, itself a rounded
# product (bound x quote price), with room to spare (floats are off by 2^-53 at most).
_SURE = 1e-12
_TINY = 1e-300
_SCAN = 64           # rows checked at once for a side change, doubled up to _SCAN_MAX
_SCAN_MAX = 65_536
_MARKET_READINGS = ("funding", "supply_rate", "borrow_rate", "rate")
# What the books hold: fixed across quiet rows (no accrual, no settlement, rates fixed).
_BOOKS = ("balance", "collateral", "debt", "position", "entry_price", "exposure")


class _Unsupported(Exception):
    """A condition with a side this module cannot follow between stepped rows."""


class _PriceTest:
    """`price(X)` compared with a constant: which side of the constant the price is on."""

    __slots__ = ("column", "first", "floats", "high", "low")

    def __init__(self, column: Column, bound: Decimal) -> None:
        self.column = column
        self.floats = column.floats()
        value = float(bound)
        band = abs(value) * _SURE + _TINY
        self.high, self.low = value + band, value - band
        self.first = _first_value_row(self.floats)

    def side(self, row: int) -> int:
        """1 surely above, -1 surely below, 0 not sure (or no value yet)."""
        if row < self.first:
            return 0
        value = self.floats[row]
        return 1 if value > self.high else -1 if value < self.low else 0

    def end(self, start: int, stop: int, side: int) -> int:
        """The first row in [start, stop) not surely on `side`; `stop` when there is none."""
        if side > 0:
            return _first(self.floats, start, stop, self.high, above=True)
        return _first(self.floats, start, stop, self.low, above=False)


def _first_value_row(floats: array) -> int:
    """The first row with a value (the float is not NaN); a held price column has a value
    at every row after it."""
    for row, value in enumerate(floats):
        if value == value:
            return row
    return len(floats)


def _first(floats: array, start: int, stop: int, bound: float, above: bool) -> int:
    """The first row in [start, stop) whose value is not above (`above`) or not below
    `bound`; `stop` when there is none. Checks growing blocks with `min`/`max` (C loops)
    and looks row by row only inside the block that holds the change."""
    row, size = start, _SCAN
    while row < stop:
        end = min(stop, row + size)
        block = floats[row:end]
        if (min(block) <= bound) if above else (max(block) >= bound):
            for offset, value in enumerate(block):
                if (value <= bound) if above else (value >= bound):
                    return row + offset
        row, size = end, min(size * 2, _SCAN_MAX)
    return stop


class QuietRows:
    """Finds and crosses quiet rows for one backtest (see the module's docstring)."""

    def __init__(self, backtest: Any, readings: Readings, states: Sequence[TriggerState],
                 scope: Scope) -> None:
        self.bt, self.readings, self.states = backtest, readings, states
        series: Series = backtest.series
        self.times = series.times
        self.total = len(series.times)
        market = backtest.market
        self.priced: set[str] = set(backtest.priced)
        # Assets whose price a row derives from a priced column (price(underlying) · rate).
        self.derived = {asset for asset, underlying in backtest.derived
                        if underlying in self.priced}
        self.staking = {asset for asset, _, _, apr in backtest.moving_rates if apr}
        self.columns = {asset: col for asset, col in backtest.price_cols}
        self.series = series
        self._fixed: list[int] | None = None
        self._firsts: dict[str, int] = {}
        self.funding_rows: dict[int, list[int] | None] = {}
        self.tests: list[_PriceTest] | None = []
        self.reads_value = False  # some condition compares `value()`
        for state in states:
            condition = getattr(state.trigger, "when", None)
            if condition is None:
                continue
            if state.compiled is None:
                self.tests = None
                break
            try:
                self.tests.extend(self._tests(condition, scope, market))
            except _Unsupported:
                self.tests = None
                break
        self._shape: Any = None
        self._open = False

    # --- which conditions can be followed ---------------------------------------------------
    def _tests(self, condition: Any, scope: Scope, market: Any) -> list[_PriceTest]:
        """The price comparisons of a compiled condition (see `_side`)."""
        found: list[_PriceTest] = []
        def fixed(expr: Any) -> Decimal | None:
            return fixed_value(expr, scope)

        def walk(expr: Any) -> None:
            if expr.kind == "not":
                walk(expr.operand)
            elif expr.kind == "boolop":
                walk(expr.left)
                walk(expr.right)
            elif expr.kind == "compare":
                one, two = fixed(expr.left), fixed(expr.right)
                if one is not None and two is not None:
                    return
                left, right = self._side(expr.left, one), self._side(expr.right, two)
                if isinstance(left, Column) and two is not None:
                    found.append(_PriceTest(left, two))
                elif isinstance(right, Column) and one is not None:
                    found.append(_PriceTest(right, one))
                elif isinstance(left, Column) or isinstance(right, Column):
                    raise _Unsupported
            else:  # pragma: no cover - compile_condition accepted nothing else
                raise _Unsupported

        walk(condition)
        return found

    def _side(self, expr: Any, value: Decimal | None) -> Column | None:
        """A compared side: None when it cannot change between stepped rows (a constant,
        `health(V)` with no lending account, a rate or funding value the series changes
        only at a cell, what the books hold, `value()` of a book whose value does not move
        with prices: `stretch` checks that), the column when it is `price(X)` of a priced
        asset; _Unsupported otherwise (an oracle price or a derived price moves with other
        columns, so does a liquidation price at a lending venue)."""
        if value is not None:
            return None
        if expr.kind != "call":
            raise _Unsupported
        if expr.func == "value":  # moves with prices unless the book is hedged
            self.reads_value = True
            return None
        if expr.func == "health" or expr.func in _MARKET_READINGS or expr.func in _BOOKS:
            return None
        if expr.func == "price" and expr.args and expr.args[0].kind == "asset":
            asset = str(expr.args[0].symbol)
            if asset in self.derived:
                raise _Unsupported
            return self.columns.get(asset)
        raise _Unsupported

    # --- which books can be followed ---------------------------------------------------------
    def _layout(self, live: set[str] | None) -> bool:
        """Whether rows can be crossed with the books as they are (checked again when an
        entry appears or goes, or when what a step must follow changes)."""
        readings, books = self.readings, self.bt.monitor.books
        if self.tests is None or readings.lending or readings.stray_debt:
            return False
        if books["collateral"] or books["debt"] or books["flash"]:
            return False
        if live is None or self.staking & live:
            return False
        for _, key, _ in readings.value_terms:
            if key[1] in self.derived:
                return False
        for key, base, quote in readings.perps:
            if quote in self.priced or quote in self.derived or base in self.derived:
                return False
            if self.bt.column("funding", key[0], base) is None \
                    and self._funding_rows(key[0]) is None:
                return False
        return True

    def _funding_rows(self, venue: str) -> list[int] | None:
        """Rows where a perp at `venue` without a funding column settles at the market's
        rate (a funding interval boundary passes); None when that is most rows."""
        from stratplan.executors.accounts import cex_terms
        interval = int(cex_terms(self.bt.base, venue).funding_interval * 1000)
        if interval not in self.funding_rows:
            times = self.times
            first, last = times[0] // interval, times[-1] // interval
            rows: list[int] | None = None
            if interval > 0 and last - first <= self.total // 2:
                rows = [bisect_left(times, k * interval) for k in range(first + 1, last + 1)]
            self.funding_rows[interval] = rows
        return self.funding_rows[interval]

    def _first_value(self, column: Column) -> int:
        """The first row where `column` has a value (cached)."""
        found = self._firsts.get(column.name)
        if found is None:
            found = self._firsts[column.name] = _first_value_row(column.floats())
        return found

    def fixed_events(self) -> list[int]:
        """Rows where a funding, rate, supply, borrow or oracle column has a cell (indexed
        on first use: a backtest whose books never allow a stretch does not pay for it)."""
        if self._fixed is None:
            self._fixed = sorted({row for col in self.series.columns.values()
                                  if col.kind != "price" for row in col.changes()})
        return self._fixed

    # --- a stretch ------------------------------------------------------------------------------
    def stretch(self, row: int, live: set[str] | None) -> int:
        """The first row at or after `row` that must be stepped (`row` itself when it must,
        the end of the series when none must): the rows between are quiet."""
        if row <= 1:  # the first step evaluates every `when` for the first time
            return row
        readings = self.readings
        # The layout's lists are rebuilt (new objects) whenever an entry appears or goes;
        # the tuple keeps them alive, so identity cannot be fooled by a reused id.
        known = self._shape
        if known is None or known[0] is not readings.value_terms \
                or known[1] is not readings.perps or known[2] is not live:
            self._shape = (readings.value_terms, readings.perps, live)
            self._open = self._layout(live)
        if not self._open or not readings.perps_safe():
            return row
        if self.reads_value and not self._value().constant:
            return row  # a condition reads a value that moves with the prices
        stop = self.total
        events = self.fixed_events()
        at = bisect_left(events, row)
        if at < len(events):
            stop = events[at]
        stop = first_every_row(self.states, self.times, row, stop)
        books = self.bt.monitor.books
        for key, base, _ in readings.perps:
            if books["position"][key] and self.bt.column("funding", key[0], base) is None:
                rows = self._funding_rows(key[0]) or []
                at = bisect_left(rows, row)
                if at < len(rows):
                    stop = min(stop, rows[at])
        if stop <= row:
            return row
        for test in self.tests or ():
            side = test.side(row - 1)
            if not side:
                return row
            stop = test.end(row, stop, side)
        return self._guard(row, stop)

    def _guard(self, row: int, stop: int) -> int:
        """`stop`, or the first row before it where an open perp's mark is not surely on the
        safe side of its guard bound."""
        readings, prices = self.readings, self.bt.market.prices
        position = self.bt.monitor.books["position"]
        for key, base, quote in readings.perps:
            size = position[key]
            if not size:
                continue
            bound = readings.guard_bound(key)
            if bound is None:
                return row
            column = self.columns.get(base)
            if column is None:
                continue  # the mark does not move: safe now (perps_safe), safe throughout
            if row < self._first_value(column):
                return row  # the market's price until the column's first value: stepped
            level = float(bound * prices[quote])
            band = abs(level) * _SURE + _TINY
            if size > 0:
                stop = _first(column.floats(), row, stop, level + band, above=True)
            else:
                stop = _first(column.floats(), row, stop, level - band, above=False)
        return stop

    def cross(self, row: int, stop: int, snapshots: Snapshots) -> None:
        """Keep the snapshots of the quiet rows [row, stop)."""
        times = self.times[row:stop]
        value = self._value()
        if value.constant:  # a hedged book: the value the last step worked out, kept
            snapshots.repeat_last(times, repeat(snapshots.values[-1], stop - row))
        else:
            snapshots.repeat_last(times, map(value.at, range(row, stop)))

    def _value(self) -> _Value:
        """The books' value as a function of the row (accounts.portfolio_value's terms)."""
        readings, prices = self.readings, self.bt.market.prices
        books = self.bt.monitor.books
        value = _Value()
        for table, key, sign in readings.value_terms:
            value.hold(sign * table[key], prices[key[1]], self.columns.get(key[1]))
        margin = books["margin"]
        for key, quote in readings.margin_terms:
            value.hold(margin[key], prices[quote], self.columns.get(quote))
        position, entry = books["position"], books["entry"]
        for key, base, quote in readings.perps:
            value.perp(position[key], entry.get(key, ZERO), prices[base], prices[quote],
                       self.columns.get(base))
        return value


class _Value:
    """A + Σ B_j · p_j + Σ perps quoted in an asset not worth exactly 1: every term exact,
    the total rounded once, as accounts.portfolio_value works it out. A is the terms whose
    price cannot move across quiet rows; B_j the units held of an asset priced by column j
    (a perp's size counts when its quote is worth 1: size · (p - entry) is linear in p)."""

    def __init__(self) -> None:
        self.base = ZERO
        self.slopes: dict[str, tuple[Decimal, Column, Decimal]] = {}
        self.perps: list[tuple[Decimal, Decimal, Decimal, Column, Decimal]] = []

    def hold(self, units: Decimal, price: Decimal, column: Column | None) -> None:
        """`units` of an asset (negative when owed) at `price`, or at its column's."""
        if column is None:
            self.base = EXACT.add(self.base, EXACT.multiply(units, price))
            return
        self._slope(units, column, price)

    def perp(self, size: Decimal, entry: Decimal, price: Decimal, quote: Decimal,
             column: Column | None) -> None:
        """A perp of `size` entered at `entry`, its base at `price` (or its column's)."""
        if column is None:
            self.base = EXACT.add(self.base, perp_value(size, price / quote, entry, quote))
        elif quote == 1:  # the mark is the price itself, to the digit
            self.base = EXACT.subtract(self.base, EXACT.multiply(size, entry))
            self._slope(size, column, price)
        else:
            self.perps.append((size, entry, quote, column, price))

    def _slope(self, units: Decimal, column: Column, price: Decimal) -> None:
        slope, _, _ = self.slopes.get(column.name, (ZERO, column, price))
        self.slopes[column.name] = (EXACT.add(slope, units), column, price)

    @property
    def constant(self) -> bool:
        """True when no term moves with a price: the value is the same at every row."""
        return not self.perps and not any(slope for slope, _, _ in self.slopes.values())

    def at(self, row: int) -> Decimal:
        """The value at `row`: a column's price in force there (before its first value,
        the market's, which the step before left in place)."""
        total = self.base
        for slope, column, before in self.slopes.values():
            if slope:
                price = column.value(row)
                total = EXACT.add(total, EXACT.multiply(slope, before if price is None
                                                        else price))
        for size, entry, quote, column, before in self.perps:
            price = column.value(row)
            mark = (before if price is None else price) / quote
            total = EXACT.add(total, perp_value(size, mark, entry, quote))
        return +total
