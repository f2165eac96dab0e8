"""PnL attribution (LANGUAGE.md section 8): each step's value change split into its parts,
the price part being what the others leave, summed so that no digit is lost and the parts
add up exactly to the value change."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from stratplan.dsl.decimals import EXACT
from stratplan.executors.ledger import Book
from stratplan.interpreter.time.readings import Readings

ZERO = Decimal(0)


def sum_parts(parts: Mapping[str, Decimal], skip: str) -> Decimal:
    """The exact sum of the parts but one (zeros skipped: they change no digit)."""
    total = ZERO
    for name, value in parts.items():
        if value and name != skip:
            total = EXACT.add(total, value)
    return total


def add_parts(totals: dict[str, Decimal], parts: Mapping[str, Decimal]) -> None:
    """Add each part to its total, exactly."""
    for name, value in parts.items():
        if value:
            totals[name] = EXACT.add(totals[name], value)


def close_parts(parts: dict[str, Decimal], totals: dict[str, Decimal], change: Decimal) -> None:
    """Set the step's price part to what the other parts leave of the value change, and
    add every part to the totals (exactly; `sum_parts` and `add_parts` in one pass over the parts)."""
    add, rest = EXACT.add, ZERO
    for name, value in parts.items():
        if value:
            rest = add(rest, value)
            totals[name] = add(totals[name], value)
    price = parts["price"] = EXACT.subtract(change, rest)
    if price:
        totals["price"] = add(totals["price"], price)


def final_pnl(totals: dict[str, Decimal], change: Decimal) -> dict[str, Decimal]:
    """The attribution with `price` as the remainder, so the parts sum exactly to `change`."""
    pnl = dict(totals)
    pnl["price"] = EXACT.subtract(change, sum_parts(totals, skip="price"))
    pnl["total"] = change
    return pnl


_STAKED: tuple[tuple[Book, int], ...] = (("balance", 1), ("collateral", 1), ("debt", -1),
                                         ("flash", -1))


def staking_part(bt: Any, changed: list[tuple[str, Decimal]], parts: dict[str, Decimal],
                 readings: Readings | None = None) -> None:
    """Growth of rate-bearing assets' rates: net units * price(underlying) * Δrate, the
    net units summed over every book and venue (in venue order); through `readings` when
    given (its layout is that of the books: nothing changed them since its refresh)."""
    market, books = bt.market, bt.monitor.books
    for asset, old_rate in changed:
        info = market.assets[asset]
        delta = info.rate - old_rate
        if not delta or info.underlying not in market.prices:
            continue
        if readings is not None:
            net = readings.net_units(asset)
        else:
            net = ZERO
            for book, sign in _STAKED:
                for venue, held in sorted(books[book]):
                    if held == asset:
                        net += sign * books[book][(venue, held)]
        if net:
            parts["staking"] += net * market.prices[info.underlying] * delta
