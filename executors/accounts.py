"""Money arithmetic shared by executors, rules and reports: health, borrow room, value."""

from __future__ import annotations

from decimal import Decimal

from stratplan.executors.errors import ExecutionError
from stratplan.executors.ledger import Book, Ledger
from stratplan.executors.market import LendingVenue, Market

INFINITE = Decimal("Infinity")


def lending_terms(market: Market, venue: str) -> LendingVenue:
    """The venue's lending terms; ExecutionError(SP102) when it is not a lending venue."""
    terms = market.venues.get(venue)
    if not isinstance(terms, LendingVenue):
        raise ExecutionError("SP102", f"{venue} is not a lending venue")
    return terms


def _weighted(ledger: Ledger, market: Market, venue: str, field: str) -> Decimal:
    terms = lending_terms(market, venue)
    total = Decimal(0)
    for asset, amount in ledger.items("collateral", venue).items():
        asset_terms = terms.assets.get(asset)
        if asset_terms is not None:
            total += amount * market.price(asset) * getattr(asset_terms, field)
    return total


def debt_value(ledger: Ledger, market: Market, venue: str) -> Decimal:
    """USD value of the debt at a lending venue."""
    return sum((amount * market.price(asset)
                for asset, amount in ledger.items("debt", venue).items()), Decimal(0))


def health_factor(ledger: Ledger, market: Market, venue: str) -> Decimal | None:
    """Σ collateral·price·threshold / Σ debt·price; None (infinite) with no debt."""
    debt = debt_value(ledger, market, venue)
    if debt <= 0:
        return None
    return _weighted(ledger, market, venue, "liquidation_threshold") / debt


def borrow_room(ledger: Ledger, market: Market, venue: str) -> Decimal:
    """USD that may still be borrowed under the LTV limit (never negative)."""
    room = _weighted(ledger, market, venue, "ltv") - debt_value(ledger, market, venue)
    return max(room, Decimal(0))


def exposure(ledger: Ledger, market: Market, base: str) -> Decimal:
    """Net amount of `base` (and of assets whose underlying it is) over every venue."""
    total = Decimal(0)
    signs: tuple[tuple[Book, int], ...] = (("balance", 1), ("collateral", 1), ("debt", -1),
                                           ("flash", -1), ("position", 1))
    for book, sign in signs:
        for venue in ledger.venues(book):
            for key, amount in ledger.items(book, venue).items():
                asset = key.split("/")[0]  # perp positions are keyed by their BASE/QUOTE pair
                if asset == base:
                    total += sign * amount
                elif market.underlying(asset) == base:
                    total += sign * amount * market.rate(asset)
    return total


def portfolio_value(ledger: Ledger, market: Market) -> Decimal:
    """USD: balances, collateral, posted margin and unrealised perp PnL, less debt."""
    total = Decimal(0)
    signs: tuple[tuple[Book, int], ...] = (("balance", 1), ("collateral", 1), ("debt", -1),
                                           ("flash", -1))
    for book, sign in signs:
        for venue in ledger.venues(book):
            for asset, amount in ledger.items(book, venue).items():
                total += sign * amount * market.price(asset)
    for venue in ledger.venues("margin"):
        for pair, amount in ledger.items("margin", venue).items():
            total += amount * market.price(pair.split("/")[1])
    for venue in ledger.venues("position"):
        for key, size in ledger.items("position", venue).items():
            total += unrealised_pnl(ledger, market, venue, key, size)
    return total


def unrealised_pnl(ledger: Ledger, market: Market, venue: str, pair: str,
                   size: Decimal) -> Decimal:
    """USD profit of an open perp position at market prices."""
    base, quote = pair.split("/")
    mark = market.price(base) / market.price(quote)
    return size * (mark - ledger.get("entry", venue, pair)) * market.price(quote)
