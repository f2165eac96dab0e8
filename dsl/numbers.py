"""Number literals (LANGUAGE.md section 2): the exact value of a literal, suffix applied
(`number_value`), why a literal is not a plan number (`LiteralError`: SP100, SP110), and the
diagnostic a decimal signal becomes while a plan is parsed (`signal_diagnostic`)."""

from __future__ import annotations

import re
from decimal import (
    Clamped,
    Decimal,
    DecimalException,
    Inexact,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
)
from typing import cast

from stratplan.dsl.decimals import PRECISION, in_range
from stratplan.dsl.diagnostics import Diagnostic, error
from stratplan.dsl.spans import Span

# The NUMBER terminal, its parts named (ASCII digits only: `\d` and Decimal() also take
# Bengali or fullwidth digits).
_LITERAL = re.compile(r"([0-9]+(?:_[0-9]+)*(?:\.[0-9]+(?:_[0-9]+)*)?)"
                      r"(?:[eE]([+-]?[0-9]+))?(%|bps|x)?").fullmatch
# Powers of ten a suffix scales by: `93%` = 0.93, `30bps` = 0.003, `3x` = 3.
_SUFFIX_SHIFT = {"%": -2, "bps": -4, "x": 0}
_ZERO = Decimal(0)


class LiteralError(ValueError):
    """A number literal that is not a plan number: its code (SP100, SP110) and why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def shown_literal(text: str, limit: int = 48) -> str:
    """A literal as a message quotes it: a huge one is cut in the middle."""
    return text if len(text) <= limit else f"{text[:limit // 2]}…{text[-limit // 4:]}"


def _out_of_range(text: str) -> LiteralError:
    return LiteralError("SP110", f"number {shown_literal(text)} is out of range (its magnitude must "
                        "be between 1e-30 and 1e30)")


def number_value(text: str) -> Decimal:
    """The exact value of a number literal, suffix applied: `93%` -> 0.93, `30bps` -> 0.003.

    Nothing is rounded, whatever the decimal context: the value is exactly what is written.
    Raises LiteralError (a ValueError) with SP100 when the text is not a literal the
    grammar accepts (ASCII digits only), and with SP110 when it has more significant digits
    than a plan number holds (decimals.PRECISION) or its value, suffix applied, leaves
    1e-30..1e30 (zero aside); the message says which.
    """
    if len(text) <= 30 and text.isascii() and text.isdigit():
        return Decimal(text)  # the common case, a plain integer: zero or in 1..1e30 - 1
    match = _LITERAL(text)
    if match is None:
        raise LiteralError("SP100", f'"{shown_literal(text)}" is not a number (numbers are written '
                           "with the ASCII digits 0-9, like 40_000, 0.59 or 1.5e3)")
    mantissa, exponent, suffix = match.groups()
    if "_" in mantissa:
        mantissa = mantissa.replace("_", "")
    if len(mantissa) > PRECISION:
        # The rule of decimals.exact_digits (zeros at either end carry no digit: 100 and
        # 0.001 have one), counted on the text, so a literal of a million digits is never
        # built.
        significant = len(mantissa.replace(".", "").strip("0"))
        if significant > PRECISION:
            raise LiteralError("SP110", f"number {shown_literal(text)} has {significant:,} "
                               f"significant digits; at most {PRECISION} can be held exactly")
    shift = _SUFFIX_SHIFT[suffix] if suffix else 0
    if exponent is not None or shift:
        if exponent is not None and len(exponent) > 12:  # beyond what Decimal can hold
            if mantissa.replace(".", "").strip("0"):
                raise _out_of_range(text)
            return _ZERO
        # Scaled by a power of ten in the text, so that no context rounds it.
        mantissa = f"{mantissa}E{int(exponent or 0) + shift}"
    value = Decimal(mantissa)
    if not value:
        # Any zero, whatever its exponent (0e999999999 is just 0).
        return value if -PRECISION <= cast(int, value.as_tuple().exponent) <= 0 else _ZERO
    adjusted = value.adjusted()  # |value| is in [10**adjusted, 10**(adjusted + 1))
    # in_range settles the edge (1e30 is in, 1.5e30 out); it computes abs() in the decimal
    # context, which would overflow far beyond the range, so the exponent settles the rest.
    if -30 <= adjusted < 30 or (adjusted == 30 and in_range(value)):
        return value
    raise _out_of_range(text)


def signal_diagnostic(exc: DecimalException, span: Span) -> Diagnostic:
    """The diagnostic a decimal signal becomes (LANGUAGE.md sections 2 and 6): SP110 when a
    value leaves the range or cannot be held exactly, SP104 when it is not a finite number
    (a division by zero or an invalid operation, and any other signal)."""
    if isinstance(exc, (Overflow, Underflow, Subnormal, Clamped)):
        return error("SP110", "a number is out of range (its magnitude must be between "
                     "1e-30 and 1e30)", span)
    if isinstance(exc, Inexact | Rounded):
        return error("SP110", f"a number cannot be held exactly with {PRECISION} "
                     "significant digits", span)
    return error("SP104", "a number is not finite (a division by zero, or an operation "
                 "with no finite result)", span)
