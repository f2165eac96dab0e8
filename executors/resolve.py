"""Turning `all` and plain amounts into the Decimal an operation uses."""

from __future__ import annotations

from decimal import Decimal

from stratplan.dsl.decimals import readable
from stratplan.executors.errors import ExecutionError
from stratplan.executors.ledger import Book, Ledger
from stratplan.executors.protocol import Order

ZERO = Decimal(0)


def fmt(value: Decimal) -> str:
    """A Decimal for messages: at most 8 significant digits, no exponent (the same figures
    as the rest of a message and the text report)."""
    return readable(value)


def drawn(order: Order, available: Decimal) -> Decimal:
    """The amount an order uses: `all` is everything available; others must be positive."""
    amount = order.amount
    if isinstance(amount, str):
        if amount == "all":
            return available
        raise ExecutionError("SP109", "`max` is only allowed for borrow")
    if amount <= 0:
        raise ExecutionError("SP104", f"the amount {fmt(amount)} is not positive")
    return amount


def drawn_from(order: Order, ledger: Ledger, book: Book, venue: str, asset: str) -> Decimal:
    """`drawn` against an amount in the ledger, read only when the order says `all`."""
    amount = order.amount
    if isinstance(amount, str) or amount <= ZERO:  # ZERO: no int conversion per call
        return drawn(order, ledger.get(book, venue, asset))
    return amount
