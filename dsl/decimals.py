"""The one decimal arithmetic of stratplan: precision, range, and what counts as exact.

LANGUAGE.md section 2: arithmetic keeps at least 40 significant digits; a literal that
cannot be held exactly, or a literal or value whose magnitude leaves 1e-30..1e30 (zero
aside), is SP110. Every entry point that computes with plan or market numbers (parse,
lint, run, the market loader) does so inside `arithmetic()`, so a user's own decimal
context is never changed and ours is the same in every thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext

PRECISION = 40
SMALLEST = Decimal("1e-30")
LARGEST = Decimal("1e30")

# Overflow, invalid operations and division by zero raise (the caller turns them into a
# diagnostic); rounding to 40 digits is expected and stays silent.
CONTEXT = Context(prec=PRECISION, Emax=999_999, Emin=-999_999,
                  traps=[Overflow, InvalidOperation, DivisionByZero], flags=[])

# Sums that must lose no digit (a portfolio's value, the PnL attribution): exact for any
# number of 40-digit terms of the range plans allow (products have at most 80 digits).
EXACT = Context(prec=400, Emax=999_999, Emin=-999_999)


@contextmanager
def arithmetic() -> Iterator[Context]:
    """stratplan's decimal context for the block (thread-local, restored on exit)."""
    with localcontext(CONTEXT) as context:
        yield context


def in_range(value: Decimal) -> bool:
    """True for zero and for finite values with 1e-30 <= |value| <= 1e30.

    Works on any Decimal, however large its exponent: no arithmetic, so no Overflow."""
    if not value.is_finite():
        return False
    if value.is_zero():
        return True
    exponent = value.adjusted()
    if not -31 <= exponent <= 30:
        return False
    magnitude = value.copy_abs()
    return SMALLEST <= magnitude <= LARGEST


def exact_digits(value: Decimal) -> bool:
    """True when the value's significant digits fit the precision (nothing rounded away)."""
    # Zeros at either end carry no digit of information: 1e29 and 100.0 have one.
    significant = "".join(map(str, value.as_tuple().digits)).strip("0")
    return len(significant) <= PRECISION


def readable(value: Decimal) -> str:
    """A value for a person (messages, the text report): at most 8 significant digits,
    never scientific notation (LANGUAGE.md section 7)."""
    if not value.is_finite():
        return "infinity" if value > 0 else "-infinity"
    if value.is_zero():
        return "0"
    shown = value.quantize(Decimal(1).scaleb(value.adjusted() - 7)) if value.adjusted() < 30 else value
    return format(shown.normalize(), "f")


JSON_DIGITS = 40


def json_number(value: Decimal, digits: int | None = JSON_DIGITS) -> str:
    """A decimal string for JSON: no exponent, no trailing zeros, at most `digits`
    significant digits (LANGUAGE.md section 9; None keeps every digit, for the PnL parts of
    a backtest, which must add up exactly)."""
    if value.is_zero():
        return "0"
    # Explicit contexts: `normalize` rounds to the current context's precision (28 digits
    # by default), which must not cut a value short of its 40 (or all) digits.
    size = len(value.as_tuple().digits)
    keep = size if digits is None else min(size, digits)
    context = Context(prec=max(keep, 1), Emax=999_999, Emin=-999_999)
    return format(value.normalize(context), "f")
