"""What executors need from the state they act on (the interpreter's position monitor).

Amounts live in books keyed by (venue, asset): balances, lending collateral and debt,
perp positions with their entry price and posted margin, and outstanding flash debt.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

Book = Literal["balance", "collateral", "debt", "position", "entry", "margin", "flash"]
# Books that may go negative: a perp position is signed; an entry price is a price.
SIGNED_BOOKS = frozenset({"position", "entry"})
Cost = Literal["fee", "slippage"]
# The on-chain wallet's venue name: it pays gas and signs every contract operation.
WALLET = "wallet"


@runtime_checkable
class Ledger(Protocol):
    """Balances, collateral, debt, positions, margin, flash debt, gas and fees."""

    def get(self, book: Book, venue: str, asset: str) -> Decimal:
        """The amount in a book (zero when absent)."""
        ...

    def add(self, book: Book, venue: str, asset: str, delta: Decimal) -> None:
        """Change an amount; raises ExecutionError(SP300) rather than go below zero."""
        ...

    def items(self, book: Book, venue: str) -> dict[str, Decimal]:
        """Every non-zero asset amount of a book at one venue."""
        ...

    def venues(self, book: Book) -> set[str]:
        """The venues with a non-zero amount in a book."""
        ...

    def pay_gas(self, units: int, eth: Decimal, usd: Decimal) -> None:
        """Take gas (in ETH) from the wallet; raises ExecutionError(SP300) if it cannot pay."""
        ...

    def record_cost(self, kind: Cost, usd: Decimal) -> None:
        """Count a fee or slippage, in USD, for the report."""
        ...
