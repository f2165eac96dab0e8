"""Interest and funding over time, as the venues do them (LANGUAGE.md section 8, step 2).

Functions of the ledger and the market, so a live adapter can bring its own:
- Aave's liquidity index grows a supplied balance linearly: `* (1 + r·Δt)`;
- its borrow index compounds, approximated as Aave does by three terms of the series:
  `* (1 + x + x²/2 + x³/6)` with `x = r·Δt`;
- a funding settlement moves `rates.funding_payment` (`-size · mark · rate`) of the quote
  asset at the venue (size signed, so a short receives a positive rate); a payment larger
  than the free balance is taken from the position's posted margin.

Times are in years (seconds / 31,536,000). Each function returns the change in units of
the asset it touched, so the caller can attribute it in USD.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from stratplan.executors.accounts import perp_position
from stratplan.executors.ledger import Ledger
from stratplan.executors.market import Market
from stratplan.executors.rates import funding_payment

SECONDS_PER_YEAR = Decimal(31_536_000)
ZERO = Decimal(0)
_HALF = Decimal("0.5")
_SIXTH = Decimal(1) / Decimal(6)


def years(milliseconds: int) -> Decimal:
    """A time interval in milliseconds as a fraction of a 365-day year."""
    return Decimal(milliseconds) / (SECONDS_PER_YEAR * 1000)


def supply_factor(apr: Decimal, dt_years: Decimal) -> Decimal:
    """Aave's linear liquidity index over Δt: 1 + r·Δt."""
    return 1 + apr * dt_years


def borrow_factor(apr: Decimal, dt_years: Decimal) -> Decimal:
    """Aave's compounded borrow index over Δt: 1 + x + x²/2 + x³/6, x = r·Δt."""
    x = apr * dt_years
    return 1 + x + x * x * _HALF + x * x * x * _SIXTH


def grow(ledger: Ledger, book: Literal["collateral", "debt"], venue: str, asset: str,
         factor: Decimal) -> Decimal:
    """Multiply one entry of a book by its index's growth; returns the growth in units."""
    held = ledger.get(book, venue, asset)
    if not held:
        return ZERO
    interest = held * factor - held
    ledger.add(book, venue, asset, interest)
    return interest


def accrue_supply(ledger: Ledger, venue: str, asset: str, apr: Decimal,
                  dt_years: Decimal) -> Decimal:
    """Grow the collateral of `asset` at `venue`; returns the interest in units."""
    return grow(ledger, "collateral", venue, asset, supply_factor(apr, dt_years)) if apr else ZERO


def accrue_borrow(ledger: Ledger, venue: str, asset: str, apr: Decimal,
                  dt_years: Decimal) -> Decimal:
    """Grow the debt of `asset` at `venue`; returns the interest in units (what is owed more)."""
    return grow(ledger, "debt", venue, asset, borrow_factor(apr, dt_years)) if apr else ZERO


def settle_funding(ledger: Ledger, market: Market, venue: str, pair: str,
                   rate: Decimal) -> Decimal:
    """One funding settlement at `rate` on the perp `pair` at `venue`, at the market's mark;
    returns the quote received (negative when paid). What the free balance cannot pay
    comes out of the margin."""
    if not rate or not ledger.get("position", venue, pair):
        return ZERO
    position = perp_position(ledger, market, venue, pair)
    quote = position.quote
    received = funding_payment(position, rate)
    if received >= 0:
        ledger.add("balance", venue, quote, received)
        return received
    owed = -received
    free = ledger.get("balance", venue, quote)
    from_balance = min(free, owed)
    if from_balance:
        ledger.add("balance", venue, quote, -from_balance)
    rest = owed - from_balance
    if rest:
        from_margin = min(ledger.get("margin", venue, pair), rest)
        if from_margin:
            ledger.add("margin", venue, pair, -from_margin)
        rest -= from_margin
    # What neither could pay is forgiven (the position is liquidated at the next check).
    return -(owed - rest)
