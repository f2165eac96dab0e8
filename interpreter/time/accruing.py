"""Accruing rows: the rows of a lending book where only prices, rates and interest move,
stepped by one loop over the row's few numbers (issue 27).

A lending account accrues interest at every row, so no row of a leveraged loop is quiet
(time/quiet.py), and the general step (`backtest._run`) pays at each one for what it must
be ready for: any firing, any book, any venue. Between two events nothing of that happens:
the books keep their entries and only their amounts grow, the market's prices and rates
follow the series. `AccruingRows.cross(row)` steps such rows itself, with the step's own
arithmetic in the step's own order on the amounts held in a list, and stops *before* the
first row where something else could happen; the loop steps that row in full.

What a row does here, as the general step does it (the names are theirs):
1. `Backtest.apply_row`: each rate-bearing asset's rate (`rate_at`), the price columns,
   the prices derived as price(underlying) · rate; 2. `attribution.staking_part`: the net units of an asset
   whose rate moved · price(underlying) · Δrate; 3. `Backtest.accrue`: each collateral and
   debt entry times its index's growth (`accrual.grow`: held · factor - held, added), its
   interest · price into `supply_interest` / `borrow_interest`; 4. `Readings.health` at the
   oracle prices; 5. the triggers; 6. `Readings.value` (exact terms, rounded once),
   `Readings.exposures`, `close_parts`, the snapshot. Amounts, rates and prices are read
   and written in the same order with the same operations, so every number equals the
   general step's to the last digit (tests/interpreter/test_backtest_accruing.py).

It stops before a row (the loop steps it) where:
- a lending account's health is below 1 (liquidations), or a health a condition reads
  cannot be read;
- a `when` condition rises outside its cooldown (a firing), or cannot be evaluated;
- an `every` trigger is due, or a funding column has a cell (a settlement);
- an amount would go below zero (the ledger refuses it: the general step reports it).

It steps nothing when the books or the conditions are not of its kind (`_Layout`): every
entry in a wallet, a CEX balance or a lending account (no perp, margin or flash debt, no
debt outside a lending venue), every `when` condition compiled with sides that are
constants, `health(V)`, `price(X)` or what the books hold but `exposure` (prices are
written to the market at every row, as the step writes them, and so are the amounts when a
condition reads the books; rates only when the stretch ends), and no oracle column among
the prices it reads. At the end of a stretch it writes the amounts to the books and applies
the last row again (`apply_row`), so the market is as the general step would have left it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Container, Sequence
from decimal import Decimal
from typing import Any

from stratplan.dsl.decimals import EXACT
from stratplan.interpreter.evaluate import Scope
from stratplan.interpreter.time.attribution import close_parts
from stratplan.interpreter.time.readings import Readings, oracle_price
from stratplan.interpreter.time.results import PARTS, Snapshot, Snapshots
from stratplan.interpreter.time.triggers import (
    BOOK_READINGS,
    TriggerState,
    first_every_row,
    fixed_value,
)

ZERO = Decimal(0)


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
        bt, times, states = self.bt, self.times, self.states
        market = bt.market
        prices, assets = market.prices, market.assets
        units = [table[key] for table, key, _ in layout.terms]
        rates = {asset: assets[asset].rate for asset, _, _, _ in layout.rates}
        whens = [state for state in states if not state.period
                 and getattr(state.trigger, "when", None) is not None]
        feed = market.oracle_feed()  # no oracle column among what is read: fixed here
        previous = snapshots.values[-1]
        add, subtract, multiply = EXACT.add, EXACT.subtract, EXACT.multiply
        row = first
        while row < stop:
            now = times[row]
            parts = dict.fromkeys(PARTS, ZERO)
            # 1. apply_row (rates, prices, derived prices)
            # The row's rates (nothing after the loop reads `rates`: the market's are set
            # by `apply_row` at the end, and a row the loop steps instead sets its own).
            changed = []
            for asset, info, col, apr in layout.rates:
                rate = bt.rate_at(row, asset, info, col, apr)
                old = rates[asset]
                if rate != old:
                    changed.append((asset, old, rate))
                    rates[asset] = rate
            # Prices are written to the market as the step writes them (a condition on
            # `price(X)` reads them there); a row the loop steps instead writes its own.
            for asset, col in layout.prices:
                value = col.value(row)
                if value is not None:
                    prices[asset] = value
            for asset, underlying, priced, base in layout.derived:
                if underlying in prices:
                    rate = _rate(asset, rates, assets)
                    if priced or rate != base:
                        prices[asset] = prices[underlying] * rate
            # 2. staking: the net units before accrual
            for asset, old, new in changed:
                delta = new - old
                underlying = layout.underlying[asset]
                if not delta or underlying not in prices:
                    continue
                net = ZERO
                for index, sign in layout.net[asset]:
                    net += sign * units[index]
                if net:
                    parts["staking"] += net * prices[underlying] * delta
            # 3. accrual
            grown = list(units)
            dt = bt.years_before(row)
            refused = False
            for index, kind, venue, asset, part in layout.accrual:
                apr = bt.apr(kind, venue, asset, row - 1)
                if not apr:
                    continue
                amount = grown[index]
                interest = ZERO
                if amount:  # `accrual.grow`
                    interest = amount * bt.factor(kind, venue, asset, apr, dt) - amount
                    if interest:
                        grown[index] = amount + interest
                        refused = refused or grown[index] <= ZERO
                if kind == "supply":
                    parts[part] += interest * prices[asset]
                else:  # what is owed more
                    parts[part] -= interest * prices[asset]
            # 4. health at the oracle prices
            table = {}
            low = refused
            for venue, collateral, debts in layout.accounts:
                threshold = ZERO
                for index, rule, lt in collateral:
                    if lt is not None:
                        threshold += grown[index] * oracle_price(rule, feed, prices, assets,
                                                                 rates) * lt
                owed = ZERO
                for index, rule in debts:
                    owed += grown[index] * oracle_price(rule, feed, prices, assets, rates)
                health = threshold / owed if owed > 0 else None
                table[venue] = health
                if health is not None and health < 1:
                    low = True
            # 5. triggers: stop before a firing (or anything the step must decide)
            if self.books_read and not low:  # put back at the end (`units`) if stopped
                for index, (book, key, _) in enumerate(layout.terms):
                    if grown[index] is not units[index]:
                        book[key] = grown[index]
            held = self._held(whens, table, now) if not low else None
            if held is None:  # the loop steps this row in full
                break
            for state, holds in zip(whens, held, strict=True):
                state.held = holds
            units = grown
            # 6. the snapshot
            total = ZERO
            for index, sign, asset in layout.value:
                term = multiply(units[index], prices[asset])
                total = add(total, term) if sign > 0 else subtract(total, term)
            value = +total
            exposures = {}
            for base, terms in layout.exposure:
                amount = ZERO
                for index, sign, asset in terms:
                    if asset is None:
                        amount += sign * units[index]
                    else:
                        amount += sign * units[index] * _rate(asset, rates, assets)
                exposures[base] = amount
            snap = Snapshot(now, value, table, exposures, parts)
            snap.health_before = table
            close_parts(parts, totals, subtract(value, previous))
            previous = value
            snapshots.append(snap)
            row += 1
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

    def _held(self, whens: list[TriggerState], table: dict[str, Decimal | None],
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


def _rate(asset: str, rates: dict[str, Decimal], assets: Any) -> Decimal:
    """An asset's rate at the row: the stretch's for a rate that moves, else the market's."""
    rate = rates.get(asset)
    return assets[asset].rate if rate is None else rate


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
