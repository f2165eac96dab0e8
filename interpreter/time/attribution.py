"""PnL attribution (LANGUAGE.md section 8): each step's value change split into its parts,
the price part being what the others leave, summed so that no digit is lost and the parts
add up exactly to the value change."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from stratplan.dsl.decimals import EXACT

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
