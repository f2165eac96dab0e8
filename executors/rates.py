"""What a position earns or pays over time at the market's rates: the carry.

The market's `rates:` section (executors/market.py, `Rates`) gives the funding rate of each
perp per funding interval, the supply and borrow APR of each asset at each lending venue,
and the staking APR by which a rate-bearing asset's rate grows (weETH → ETH). This module
turns them into yearly income, in USD at the market's prices (LANGUAGE.md section 7):

- funding: each perp pays `-size · mark · rate` of its quote asset per funding interval
  (size signed: a short receives a positive rate), `31,536,000 s / funding_interval`
  times a year;
- supply: collateral · price · supply APR;
- borrow: -debt · price · borrow APR;
- staking: (held - owed) · price · staking APR of every rate-bearing asset, wherever it is
  held (wallet, CEX, collateral) or owed.

The carry is a projection at constant prices and rates, with simple (not compounded) rates:
those of the market it is given. A backtest gives the market of its last step, whose
prices, funding and lending rates are the series' values in force there (LANGUAGE.md
section 9); the staking APR stays the market's (a series gives `rate`, not its APR).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from stratplan.executors.accounts import PerpPosition, cex_terms, perp_positions
from stratplan.executors.ledger import Book, Ledger
from stratplan.executors.market import Market

SECONDS_PER_YEAR = 31_536_000  # 365 days: the year of LANGUAGE.md section 8
ZERO = Decimal(0)


def fundings_per_year(market: Market, venue: str) -> Decimal:
    """How many funding settlements the venue makes in a year."""
    return Decimal(SECONDS_PER_YEAR) / cex_terms(market, venue).funding_interval


def funding_payment(position: PerpPosition, rate: Decimal) -> Decimal:
    """The quote asset one funding settlement at `rate` pays the position (negative: it
    pays): -size · mark · rate."""
    return -position.size * position.mark_price * rate


@dataclass(frozen=True)
class Carry:
    """Projected income a year, in USD: funding, supply and borrow interest, staking."""

    funding_usd: Decimal
    supply_usd: Decimal
    borrow_usd: Decimal  # negative: interest paid
    staking_usd: Decimal

    @property
    def total_usd(self) -> Decimal:
        """Everything together."""
        return self.funding_usd + self.supply_usd + self.borrow_usd + self.staking_usd

    def apr(self, value_usd: Decimal) -> Decimal | None:
        """The total as a fraction of `value_usd` (the end value); None when that is not
        positive."""
        return self.total_usd / value_usd if value_usd > 0 else None


def funding_carry(ledger: Ledger, market: Market) -> Decimal:
    """Yearly funding of every open perp, in USD."""
    total = ZERO
    for position in perp_positions(ledger, market):
        rate = market.funding_rate(position.venue, position.base)
        if rate:
            per_year = funding_payment(position, rate) * fundings_per_year(market, position.venue)
            total += per_year * market.price(position.quote)
    return total


def interest_carry(ledger: Ledger, market: Market) -> tuple[Decimal, Decimal]:
    """(supply, borrow) interest a year in USD; borrow is negative."""
    supply = borrow = ZERO
    for venue in ledger.venues("collateral"):
        for asset, amount in ledger.items("collateral", venue).items():
            supply += amount * market.price(asset) * market.supply_rate(venue, asset)
    for venue in ledger.venues("debt"):
        for asset, amount in ledger.items("debt", venue).items():
            borrow -= amount * market.price(asset) * market.borrow_rate(venue, asset)
    return supply, borrow


_STAKED: tuple[tuple[Book, int], ...] = (("balance", 1), ("collateral", 1), ("debt", -1))


def staking_carry(ledger: Ledger, market: Market) -> Decimal:
    """Yearly growth in USD of rate-bearing assets held, less that of those owed."""
    total = ZERO
    for book, sign in _STAKED:
        for venue in ledger.venues(book):
            for asset, amount in ledger.items(book, venue).items():
                apr = market.staking_rate(asset)
                if apr:
                    total += sign * amount * market.price(asset) * apr
    return total


def carry(ledger: Ledger, market: Market) -> Carry:
    """The position's projected yearly income at the market's rates."""
    supply, borrow = interest_carry(ledger, market)
    return Carry(funding_carry(ledger, market), supply, borrow, staking_carry(ledger, market))
