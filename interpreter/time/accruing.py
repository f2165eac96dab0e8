"""Accruing rows: the rows of a lending book where only prices, rates and interest move,
worked out a block of rows at a time, one column per number (issue 27).

A lending account accrues interest at every row, so no row of a leveraged loop is quiet
(time/quiet.py), and the general step (`backtest._run`) pays at each one for what it must
be ready for: any firing, any book, any venue. Between two events nothing of that happens:
the books keep their entries and only their amounts grow, the market's prices and rates
follow the series. `AccruingRows.cross(row)` steps such rows itself and stops *before* the
first row where something else could happen; the loop steps that row in full.

What a row does here, as the general step does it (the names are theirs):
1. `Backtest.apply_row`: each rate-bearing asset's rate (`rate_at`), the price columns,
   the prices derived as price(underlying) · rate; 2. `attribution.staking_part`: the net
   units of an asset whose rate moved · price(underlying) · Δrate; 3. `Backtest.accrue`:
   each collateral and debt entry times its index's growth (`accrual.grow`: held · factor
   - held, added), its interest · price into `supply_interest` / `borrow_interest`;
   4. `Readings.health` at the oracle prices; 5. the triggers; 6. `Readings.value` (exact
   terms, rounded once), `Readings.exposures`, `close_parts`, the snapshot.

How: a `_Block` of up to `BLOCK` rows works each of these numbers out for every row of
the block at once, as a column: `map` over the columns with the very operations of the
step, in its order, on the same numbers (only the amounts' growth, each row's from the row
before's, is a loop). So every number equals the general step's to the last digit
(tests/interpreter/test_backtest_accruing.py), and CPython spends its time in `decimal`
rather than in the bytecode around it (docs/performance.md, item 47). Then the block's
first row where the loop must step is found, and only the rows before it are kept.

It stops before a row (the loop steps it) where:
- a lending account's health is below 1 (liquidations), or a health a condition reads
  cannot be read;
- a `when` condition rises outside its cooldown (a firing), or cannot be evaluated;
- an `every` trigger is due, or a funding column has a cell (a settlement);
- an amount would go below zero (the ledger refuses it: the general step reports it).

It steps nothing when the books or the conditions are not of its kind (`_Layout`): every
entry in a wallet, a CEX balance or a lending account (no perp, margin or flash debt, no
debt outside a lending venue), every `when` condition compiled with sides that are
constants, `health(V)`, `price(X)` or what the books hold but `exposure` (a condition on
prices or on the books, `value()` being both, is evaluated row by row, with the row's
prices and amounts written to the market and the books first, as the step writes them;
rates are written only when the stretch ends), and no oracle column among the prices it reads. At the end of a stretch
it writes the amounts to the books and applies the last row again (`apply_row`), so the
market is as the general step would have left it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Container, Iterator, Sequence
from decimal import Decimal, DecimalException
from functools import reduce
from itertools import chain, compress, pairwise, repeat
from operator import add, gt, is_not, mul, or_, pos, sub, truediv
from typing import Any, cast

from stratplan.dsl.decimals import EXACT
from stratplan.interpreter.evaluate import Scope
from stratplan.interpreter.series.columns import has_none
from stratplan.interpreter.time.readings import Readings, oracle_prices
from stratplan.interpreter.time.results import Snapshots
from stratplan.interpreter.time.triggers import (
    BOOK_READINGS,
    HealthVsConstant,
    TriggerState,
    first_every_row,
    fixed_value,
)

ZERO, ONE = Decimal(0), Decimal(1)
_HUGE = Decimal("1e30")


class _Unsupported(Exception):
    """Books or conditions this module does not step."""


class _Layout:
    """What one stretch reads and writes, worked out once per layout of the books and set of
    live assets (`Readings` rebuilds its lists when an entry appears or goes)."""

    def __init__(self, bt: Any, readings: Readings, live: Container[str]) -> None:
        books = bt.monitor.books
        if readings.perps or readings.margin_terms or readings.stray_debt \
                or books["flash"] or books["position"] or not readings.lending:
            raise _Unsupported
        reads = bt.reads(live)
        if reads.oracles:
            raise _Unsupported
        market = bt.market
        # The amounts: one slot per value term, in `Readings.value`'s order.
        self.terms = readings.value_terms
        slot = {(id(table), key): index for index, (table, key, _) in enumerate(self.terms)}
        self.value = [(index, sign, key[1]) for index, (_, key, sign) in enumerate(self.terms)]
        self.rates = reads.rates
        self.prices = reads.prices
        self.derived = [(asset, underlying, underlying in bt.priced, bt.base_rates[asset])
                        for asset, underlying in reads.derived]
        # `staking_part`: each rate-bearing asset's terms, for its net units.
        self.net = {asset: [(index, sign) for index, sign, held in self.value if held == asset]
                    for asset, _, _, _ in self.rates}
        self.underlying = {asset: market.assets[asset].underlying for asset, _, _, _ in self.rates}
        # `accrue`: entries in the order it walks them, with their slot.
        collateral, debt = books["collateral"], books["debt"]
        self.accrual = [(slot[id(collateral), key], "supply", *key, "supply_interest")
                        for key in readings.accrual_order["collateral"]]
        self.accrual += [(slot[id(debt), key], "borrow", *key, "borrow_interest")
                         for key in readings.accrual_order["debt"]]
        # `Readings.health`: per account, (slot, oracle rule, threshold) and (slot, rule).
        self.accounts = [(account.venue,
                          [(slot[id(collateral), key], rule, lt)
                           for key, rule, lt in account.collateral],
                          [(slot[id(debt), key], rule) for key, rule in account.debts])
                         for account in readings.lending]
        # `Readings.exposures`: per base, (slot, sign, rate-bearing asset or None).
        self.exposure = [(base, [(slot[id(table), key], sign, asset)
                                 for table, key, sign, asset in terms])
                         for base, terms in readings.exposure_terms.items()]


class AccruingRows:
    """Steps the accruing rows of one backtest (see the module's docstring)."""

    def __init__(self, bt: Any, readings: Readings, states: Sequence[TriggerState],
                 scope: Scope) -> None:
        self.bt, self.readings, self.states = bt, readings, states
        self.times = bt.series.times
        self.total = len(self.times)
        read: set[str] | None = set()
        for state in states:
            if state.period:
                continue
            found = _followed(getattr(state.trigger, "when", None), scope) \
                if state.compiled is not None else None
            read = None if found is None or read is None else read | found
        self.conditions = read is not None
        # A condition on the books reads the amounts there: each row's are written first.
        self.books_read = read is not None and "books" in read
        self.prices_read = read is not None and "price" in read
        self._shape: tuple[Any, ...] | None = None
        self._layout: _Layout | None = None
        self._settlements: list[int] | None = None

    def _of(self, live: Container[str] | None) -> _Layout | None:
        readings = self.readings
        shape = self._shape
        if shape is None or shape[0] is not readings.value_terms or shape[1] is not live \
                or shape[2] is not readings.lending:
            self._shape = (readings.value_terms, live, readings.lending)
            self._layout = None
            if self.conditions and live is not None:
                try:
                    self._layout = _Layout(self.bt, readings, live)
                except _Unsupported:
                    pass
        return self._layout

    def _settlement_rows(self) -> list[int]:
        """Rows where a funding column has a cell (indexed on first use)."""
        if self._settlements is None:
            self._settlements = sorted({row for col in self.bt.series.by_kind("funding")
                                        for row in col.changes()})
        return self._settlements

    def _limit(self, row: int) -> int:
        """The first row at or after `row` that is surely not stepped here: a settlement,
        an `every` due, the end."""
        stop = self.total
        rows = self._settlement_rows()
        at = bisect_left(rows, row)
        if at < len(rows):
            stop = rows[at]
        return first_every_row(self.states, self.times, row, stop)

    def cross(self, row: int, live: Container[str] | None, snapshots: Snapshots,
              totals: dict[str, Decimal],
              progress: Callable[[int, int], None] | None = None) -> int:
        """Step the rows from `row` on while nothing but accrual can happen; returns the
        first row not stepped (`row` when none was)."""
        if row <= 1:  # the first step evaluates every `when` for the first time
            return row
        layout = self._of(live)
        if layout is None or live is None:
            return row
        stop = self._limit(row)
        if stop <= row:
            return row
        done = self._run(layout, live, row, stop, snapshots, totals)
        if done > row and progress is not None:
            progress(done - 1, self.total)
        return done

    def _run(self, layout: _Layout, live: Container[str], first: int, stop: int,
             snapshots: Snapshots, totals: dict[str, Decimal]) -> int:
        """Rows [first, stop) block by block, until one stops before its end; returns the
        first row not stepped, the books and the market left as the step leaves them."""
        bt, market = self.bt, self.bt.market
        units = [table[key] for table, key, _ in layout.terms]
        rates = {asset: market.assets[asset].rate for asset, _, _, _ in layout.rates}
        whens = [state for state in self.states if not state.period
                 and getattr(state.trigger, "when", None) is not None]
        row = first
        while row < stop:
            end = min(stop, row + BLOCK)
            try:
                block = _Block(self, layout, row, end, units, rates)
            except (_Unsupported, DecimalException):
                # A block works out rows past where the step would stop (a liquidation may
                # change the books before them): arithmetic that fails there is left to
                # the loop, which steps these rows in full and reports what fails.
                break
            done = self._commit(block, layout, whens, snapshots, totals)
            row += done
            if row < end:
                break
        # The amounts of the last row stepped here (also what a condition on the books
        # found written at a row the loop steps instead, put back).
        for (book, key, _), amount in zip(layout.terms, units, strict=True):
            if book[key] is not amount:
                book[key] = amount
        if row > first:
            # The market as the step leaves it: rates (new `AssetInfo`s) and prices of the
            # last row stepped here, the same `live` reads.
            bt.apply_row(row - 1, live)
            self.readings.refresh()
        return row

    def _commit(self, block: _Block, layout: _Layout, whens: list[TriggerState],
                snapshots: Snapshots, totals: dict[str, Decimal]) -> int:
        """Keep the block's rows up to the first the loop must step; returns how many."""
        count = block.low
        if count and whens:
            count = self._conditions(block, layout, whens, block.tables(0, count)) \
                if self.prices_read or self.books_read else self._columns(block, whens, count)
        if not count:
            return 0
        a, units = block.first, block.units
        times = self.times[a:a + count]
        values = block.values(layout, count)
        health = {venue: column[:count] for venue, column in block.health.items()}
        parts = {name: column[:count] for name, column in block.parts.items()}
        for name, column in parts.items():  # as `close_parts` totals them: zeros skipped
            totals[name] = reduce(EXACT.add, filter(None, column), totals[name])
        snapshots.extend(times, values, health, block.exposures, parts)
        last = count - 1
        for index, column in block.amounts.items():
            units[index] = column[last]
        for asset, column in block.rates.items():
            block.held_rates[asset] = column[last]
        prices = self.bt.market.prices
        for asset, column in block.prices.items():
            prices[asset] = column[last]
        return count

    def _columns(self, block: _Block, whens: list[TriggerState], count: int) -> int:
        """`_conditions` for conditions that read only the health tables: each condition
        over the first `count` rows at once (`health(V) <op> constant` over V's column),
        then the first row where one rises outside its cooldown."""
        times, a = self.times, block.first
        stop, found = count, []
        for state in whens:
            compiled = state.compiled
            assert compiled is not None
            simple = compiled if isinstance(compiled, HealthVsConstant) else None
            column = None if simple is None else block.health.get(simple.venue)
            try:
                rows = None if column is None else column[:stop]
                # A health of 1e30 or more is SP110 (`evaluate.ranged`): the compiled
                # condition raises it, and the row is the loop's.
                if simple is not None and rows is not None and not has_none(rows) \
                        and max(cast(list[Decimal], rows)) < _HUGE:
                    held = list(map(simple.test, cast(list[Decimal], rows),
                                    repeat(simple.bound)))
                else:
                    held = list(map(bool, map(compiled, block.tables(0, stop))))
            except Exception:  # the row that fails is found row by row
                return self._conditions(block, block.layout, whens, block.tables(0, count))
            for at in compress(range(stop), map(gt, held, chain((state.held,), held))):
                if times[a + at] >= state.blocked_until:
                    stop = at
                    break
            found.append(held)
        if stop:
            for state, held in zip(whens, found, strict=True):
                state.held = held[stop - 1]
        return stop

    def _conditions(self, block: _Block, layout: _Layout, whens: list[TriggerState],
                    tables: list[dict[str, Decimal | None]]) -> int:
        """The first of the block's rows (one a health table) where a `when` condition
        rises outside its cooldown or fails (the loop steps it), each condition's value up
        to it kept as the step keeps it (`state.held`)."""
        times = self.times
        a = block.first
        prices, market = block.prices, self.bt.market.prices
        for at, table in enumerate(tables):
            if self.prices_read:  # a condition reads the market's prices, as written
                for asset, column in prices.items():
                    market[asset] = column[at]
            if self.books_read:  # ... or the books' amounts (put back in `_run`)
                for index, column in block.amounts.items():
                    book, key, _ = layout.terms[index]
                    book[key] = column[at]
            held = _held(whens, table, times[a + at])
            if held is None:
                return at
            for state, holds in zip(whens, held, strict=True):
                state.held = holds
        return len(tables)


BLOCK = 256  # rows a block works out at once: the rows past a stop are worked out in vain


class _Block:
    """One block of accruing rows, worked out a column at a time: each number of each row
    as the step works it out (the module's docstring, 1-4), with the same operations
    on the same numbers in the same order, so to the last digit. `low` is the first row
    where health falls below 1 or an amount would go below zero (the loop steps it)."""

    def __init__(self, rows: AccruingRows, layout: _Layout, first: int, stop: int,
                 units: list[Decimal], held_rates: dict[str, Decimal]) -> None:
        self.bt, self.layout = rows.bt, layout
        self.first, self.stop, self.count = first, stop, stop - first
        self.units, self.held_rates = units, held_rates
        self._market, self._assets = self.bt.market.prices, self.bt.market.assets
        self.rates: dict[str, list[Decimal]] = {}
        self.prices: dict[str, list[Decimal]] = {}
        self.amounts: dict[int, list[Decimal]] = {}
        self.parts: dict[str, list[Decimal]] = {}
        self.health: dict[str, list[Decimal | None]] = {}
        moved = self._apply_rows()
        refused = self._accrue()
        self._staking(moved)
        self.low = min(refused, self._health())

    def _apply_rows(self) -> list[tuple[str, list[tuple[int, Decimal, Decimal]]]]:
        """1. `apply_row`: the rates (a rate's object kept until it changes, as the step
        keeps it), the price columns (a value carried over an empty cell), the derived
        prices; returns each moving rate's changes (row, old, new)."""
        bt, count, first, stop = self.bt, self.count, self.first, self.stop
        prices = self._market
        moved = []
        for asset, info, col, apr in self.layout.rates:
            found = col.values(first, stop) if col is not None else [None] * count
            if has_none(found):
                found = [bt.rate_at(first + at, asset, info, col, apr) if value is None
                         else value for at, value in enumerate(found)]
            current, column, changes = self.held_rates[asset], [], []
            for at, value in enumerate(found):
                if value != current:
                    changes.append((at, current, value))
                    current = value
                column.append(current)
            self.rates[asset] = column
            moved.append((asset, changes))
        for asset, col in self.layout.prices:
            found = col.values(first, stop)
            if has_none(found):
                current = prices.get(asset)
                for at, value in enumerate(found):
                    if value is None:
                        found[at] = current
                    else:
                        current = value
            if has_none(found):  # no price yet (the step would not find one either)
                raise _Unsupported
            self.prices[asset] = found
        for asset, underlying, priced, base in self.layout.derived:
            under = self.prices.get(underlying)
            if under is None:
                if underlying not in prices:
                    continue
                under = [prices[underlying]] * count
            rate = self.rate(asset)
            if priced:
                self.prices[asset] = list(map(mul, under, rate))
                continue
            own, current, column = self.prices.get(asset), prices.get(asset), []
            for at in range(count):
                if own is not None:
                    current = own[at]
                if rate[at] != base:
                    current = under[at] * rate[at]
                column.append(current)
            self.prices[asset] = column
        return moved

    def _accrue(self) -> int:
        """3. `accrue`: each entry's amount after each row (`accrual.grow`), its interest
        · price into its part; returns the first row where an amount would grow below
        zero (`count` when none does)."""
        bt, count, first, stop = self.bt, self.count, self.first, self.stop
        refused = count
        times = bt.series.times
        dts = [bt.years_before(row) for row in range(first, stop)] \
            if len(set(map(sub, times[first:stop], times[first - 1:stop - 1]))) > 1 \
            else [bt.years_before(first)] * count
        for index, kind, venue, asset, part in self.layout.accrual:
            aprs = bt.aprs(kind, venue, asset, first - 1, stop - 1)
            amount = self.units[index]
            column: list[Decimal] = []
            interests: list[Decimal | None] = []
            for begin, end in _runs(aprs, dts):  # one factor a run (`Backtest.factor`)
                apr = aprs[begin]
                if not apr:
                    interests.extend(repeat(None, end - begin))
                    column.extend(repeat(amount, end - begin))
                    continue
                factor = bt.factor(kind, venue, asset, apr, dts[begin])
                for _ in range(end - begin):
                    interest = ZERO
                    if amount:
                        interest = amount * factor - amount
                        if interest:
                            amount = amount + interest
                    interests.append(interest)
                    column.append(amount)
            if min(column) <= ZERO:
                refused = min(refused, next((at for at, (interest, grown)
                                             in enumerate(zip(interests, column, strict=True))
                                             if interest and grown <= ZERO), count))
            self.amounts[index] = column
            price = self.price(asset)
            given = self.parts.get(part) or [ZERO] * count
            grow = add if kind == "supply" else sub  # debt: what is owed more
            if has_none(interests):  # rows at a zero APR: no interest, the part untouched
                self.parts[part] = [value if interest is None else grow(value, interest * cost)
                                    for value, interest, cost in zip(given, interests, price,
                                                                     strict=True)]
            else:
                self.parts[part] = list(map(grow, given, map(mul, interests, price)))
        return refused

    def _staking(self, moved: list[tuple[str, list[tuple[int, Decimal, Decimal]]]]) -> None:
        """2. `staking_part`: at each row where a rate moved, the net units before the
        row's accrual · price(underlying) · Δrate."""
        for asset, changes in moved:
            underlying = self.layout.underlying[asset]
            staking = self.parts.get("staking") or [ZERO] * self.count
            priced = underlying in self.prices or underlying in self._market
            cost = self.price(underlying) if priced else []
            net_terms = [(sign, self.units[index], self.amounts.get(index))
                         for index, sign in self.layout.net[asset]]
            for at, old, new in changes:
                delta = new - old
                if not delta or not priced:
                    continue
                net = ZERO
                for sign, unit, grown in net_terms:
                    net += sign * (unit if grown is None or not at else grown[at - 1])
                if net:
                    staking[at] += net * cost[at] * delta
            if changes:
                self.parts["staking"] = staking

    def _health(self) -> int:
        """4. `Readings.health` at the oracle prices, venue by venue; returns the first
        row where one is below 1 (`count` when none is)."""
        count = self.count
        feed = self.bt.market.oracle_feed()  # no oracle column among what is read: fixed
        oracles: dict[tuple[str, str | None], list[Decimal]] = {}

        def oracle(rule: tuple[str, str | None]) -> list[Decimal]:
            column = oracles.get(rule)
            if column is None:
                column = oracles[rule] = oracle_prices(rule, feed, self.price, self.rate,
                                                       count)
            return column

        low = count
        for venue, collateral, debts in self.layout.accounts:
            threshold: Any = repeat(ZERO, count)
            for index, rule, lt in collateral:
                if lt is not None:
                    threshold = map(add, threshold, map(mul, map(mul, self.amount(index),
                                                                 oracle(rule)), repeat(lt)))
            owed: Any = repeat(ZERO, count)
            for index, rule in debts:
                owed = map(add, owed, map(mul, self.amount(index), oracle(rule)))
            thresholds, owing = list(threshold), list(owed)
            health: list[Decimal | None]
            if min(owing) > 0:
                ratios: list[Decimal] = list(map(truediv, thresholds, owing))
                below = next(compress(range(count), map(ONE.__gt__, ratios)), count)
                health = cast(list[Decimal | None], ratios)
            else:
                health = [t / o if o > 0 else None for t, o in zip(thresholds, owing,
                                                                   strict=True)]
                below = next((at for at, value in enumerate(health)
                              if value is not None and value < 1), count)
            self.health[venue] = health
            low = min(low, below)
        return low

    def tables(self, start: int, stop: int) -> list[dict[str, Decimal | None]]:
        """Rows [start, stop)'s health tables (`Readings.health`'s, venue by venue)."""
        venues = list(self.health)
        if len(venues) == 1:
            venue = venues[0]
            return [{venue: value} for value in self.health[venue][start:stop]]
        columns = [column[start:stop] for column in self.health.values()]
        return [dict(zip(venues, row, strict=True)) for row in zip(*columns, strict=True)] \
            if venues else [{} for _ in range(stop - start)]

    def price(self, asset: str) -> list[Decimal]:
        """The asset's price at each row: its column, else the market's (constant)."""
        column = self.prices.get(asset)
        return column if column is not None else [self._market[asset]] * self.count

    def rate(self, asset: str) -> list[Decimal]:
        """The asset's rate at each row: the stretch's when it moves, else the market's."""
        column = self.rates.get(asset)
        return column if column is not None else [self._assets[asset].rate] * self.count

    def amount(self, index: int) -> list[Decimal]:
        """A value term's amount after each row's accrual."""
        column = self.amounts.get(index)
        return column if column is not None else [self.units[index]] * self.count

    def values(self, layout: _Layout, count: int) -> list[Decimal]:
        """The first `count` rows' values: exact terms, rounded once (`Readings.value`)."""
        total: Any = repeat(ZERO, count)
        for index, sign, asset in layout.value:
            terms = map(EXACT.multiply, self.amount(index), self.price(asset))
            total = map(EXACT.add if sign > 0 else EXACT.subtract, total, terms)
        return list(map(pos, total))

    def exposures(self, start: int, stop: int) -> dict[str, list[Decimal]]:
        """Rows [start, stop)'s exposure, base by base (`Readings.exposures`)."""
        count = stop - start
        found = {}
        for base, terms in self.layout.exposure:
            amount: Any = repeat(ZERO, count)
            for index, sign, asset in terms:
                held = map(mul, repeat(sign, count), self.amount(index)[start:stop])
                if asset is not None:
                    held = map(mul, held, self.rate(asset)[start:stop])
                amount = map(add, amount, held)
            found[base] = list(amount)
        return found


def _runs(aprs: list[Decimal], dts: list[Decimal]) -> Iterator[tuple[int, int]]:
    """The rows [begin, end) over which the APR and the interval are the very same objects:
    one index growth factor each."""
    count = len(aprs)
    moved = map(or_, map(is_not, aprs[1:], aprs[:-1]), map(is_not, dts[1:], dts[:-1]))
    return pairwise([0, *compress(range(1, count), moved), count])


def _held(whens: list[TriggerState], table: dict[str, Decimal | None],
          now: int) -> list[bool] | None:
    """Each `when` condition's value at the row, None when the row must be stepped in
    full (a rising edge outside the cooldown, or a condition that fails)."""
    found = []
    for state in whens:
        compiled = state.compiled
        assert compiled is not None
        try:
            value = bool(compiled(table))
        except Exception:  # the general step records the failure
            return None
        if value and not state.held and now >= state.blocked_until:
            return None
        found.append(value)
    return found


# What the books hold, read by a compiled condition through the evaluator
# (triggers.BOOK_READINGS): followed when the amounts are written to the books at each row.
# `exposure` also reads rates, which a stretch writes only at its end: not followed.
_BOOKS = BOOK_READINGS - {"exposure"}


def _followed(condition: Any, scope: Scope) -> set[str] | None:
    """What a `when` condition reads, when a row's health table, the market's prices and
    the books' amounts are enough to evaluate it: comparisons of constants, `health(V)`,
    `price(X)` and what the books hold ({"health", "price", "books"}, those it reads);
    None for any other condition."""
    if condition is None:
        return None
    found: set[str] = set()

    def side(expr: Any) -> bool:
        if fixed_value(expr, scope) is not None:
            return True
        if expr.kind != "call":
            return False
        if expr.func in ("health", "price"):
            found.add(expr.func)
            return True
        if expr.func in _BOOKS:
            found.add("books")
            if expr.func == "value":  # the books at the market's prices
                found.add("price")
            return True
        return False

    def walk(expr: Any) -> bool:
        if expr.kind == "not":
            return walk(expr.operand)
        if expr.kind == "boolop":
            return walk(expr.left) and walk(expr.right)
        if expr.kind == "compare":
            return side(expr.left) and side(expr.right)
        return False

    return found if walk(condition) else None
