"""The numbers of a market file: parsing (plain, `93%`, `4bps`) and the constraints each kind obeys.

Every number in a market file goes through `to_decimal`: an exact decimal, finite, within
the range of LANGUAGE.md section 2 (zero, or 1e-30..1e30 in magnitude) and at most 40
significant digits (`stratplan.dsl.decimals`), computed inside `arithmetic()`. A boolean,
`nan` or `inf` is never a number.

The constrained types below are the one place that says what a fee, a price, a leverage or
a gas amount may be; the market models (executors/market.py) only name them:

    taker_fee: Fee          # 0 <= fee < 1
    price: Positive         # > 0
    withdraw_fee: NonNegative
    max_leverage: Leverage  # >= 1
    base_tx: GasUnits       # a whole number >= 0
    funding: SignedFraction # -1 < rate < 1
    close_factor: Share     # 0 < value <= 1
    funding_interval: Duration  # `8h`, held as 28800 seconds

A new field of a known kind names its type; a new kind adds one checker here.
Messages are short and end with what was found: `must not be negative (got -0.001)`;
pydantic adds the field path and the market loader the file name.
"""

from __future__ import annotations

import re
from decimal import Decimal, DecimalException, Inexact, Rounded, Underflow
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from stratplan.dsl.decimals import PRECISION, arithmetic, exact_digits, in_range

# ASCII digits only (LANGUAGE.md section 2: a Bengali or fullwidth digit is never a number),
# `_` between digits as in plans; an optional `%` or `bps` suffix.
_NUMBER = re.compile(r"([+-]?(?:[0-9](?:_?[0-9])*(?:\.(?:[0-9](?:_?[0-9])*)?)?|\.[0-9](?:_?[0-9])*)"
                     r"(?:[eE][+-]?[0-9]+)?)[ \t]*(%|bps)?\Z")
_NOT_FINITE = {"inf", "infinity", "nan", "snan", ".inf", ".nan"}
_SCALE = {None: 0, "%": -2, "bps": -4}
_SHOWN = 40  # characters of an offending value quoted in a message


def show(value: Any) -> str:
    """The value as the user wrote it (near enough), short enough for a one-line message."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, int):  # str() refuses an int of more than 4300 digits
        text = str(Decimal(value))
    elif isinstance(value, Decimal) and in_range(value) and exact_digits(value):
        with arithmetic():
            text = format(value.normalize(), "f")  # 100% is 1, not 1.00
    elif isinstance(value, Decimal | float | str):
        text = str(value)
    else:
        text = type(value).__name__
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."


def _out_of_range(value: Any) -> ValueError:
    return ValueError(f"out of range: a number is zero or between 1e-30 and 1e30 in magnitude "
                      f"(got {show(value)})")


def _checked(result: Decimal, original: Any) -> Decimal:
    """`result` when it is finite, exact and in range; ValueError naming `original` otherwise."""
    if not result.is_finite():
        raise ValueError(f"must be a finite number (got {show(original)})")
    if not exact_digits(result):
        raise ValueError(f"has more than {PRECISION} significant digits, so it cannot be held "
                         f"exactly (got {show(original)})")
    if not in_range(result):
        raise _out_of_range(original)
    return result.copy_abs() if result.is_zero() else result  # -0 is 0


def _from_text(value: str) -> Decimal:
    text = value.strip()
    match = _NUMBER.match(text)
    if match is None:
        if text.lower().lstrip("+-") in _NOT_FINITE:
            raise ValueError(f"must be a finite number (got {show(value)})")
        raise ValueError("must be a number, a percentage (93%) or basis points (4bps) "
                         f"(got {show(value)})")
    digits, suffix = match.groups()
    try:
        with arithmetic() as context:
            # Scaling a percentage or bps must neither round nor underflow to zero silently.
            context.traps[Inexact] = context.traps[Rounded] = context.traps[Underflow] = True
            number = Decimal(digits.replace("_", ""))
            if not exact_digits(number):
                return _checked(number, value)  # says why
            return _checked(number.scaleb(_SCALE[suffix]), value)
    except DecimalException:
        raise _out_of_range(value) from None


def to_decimal(value: Any) -> Decimal:
    """An exact Decimal from a market file's scalar; ValueError with a one-line reason.

    Numbers, `93%` (0.93) and `4bps` (0.0004). A float (YAML data not read by the market
    loader, which keeps a float's text) goes through its shortest repr, never binary.
    """
    if isinstance(value, bool):
        raise ValueError(f"must be a number, not a boolean (got {show(value)})")
    if isinstance(value, str):
        return _from_text(value)
    try:
        if isinstance(value, Decimal):
            result = value
        elif isinstance(value, int):
            result = Decimal(value)
        elif isinstance(value, float):
            result = Decimal(repr(value))
        else:
            raise ValueError(f"must be a number (got {show(value)})")
        return _checked(result, value)
    except DecimalException:
        raise _out_of_range(value) from None


def to_units(value: Any) -> int:
    """A whole, non-negative number (gas units); ValueError otherwise."""
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if number is None:
        decimal = to_decimal(value)
        if decimal != decimal.to_integral_value():
            raise ValueError(f"must be a whole number (got {show(value)})")
        number = int(decimal)
    elif not in_range(Decimal(number)):
        raise _out_of_range(value)
    if number < 0:
        raise ValueError(f"must not be negative (got {show(value)})")
    return number


_DURATION = re.compile(r"([0-9](?:_?[0-9])*(?:\.[0-9](?:_?[0-9])*)?)[ \t]*(s|m|h|d|w)\Z")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def to_seconds(value: Any) -> Decimal:
    """A duration written with its unit as in plans (`30s`, `15m`, `8h`, `1d`, `2w`), in
    seconds; positive (LANGUAGE.md section 2). A bare number is refused: its unit is unsure."""
    if isinstance(value, Decimal):  # a model's own value, validated already
        return positive(value)
    text = value.strip() if isinstance(value, str) else None
    match = _DURATION.match(text) if text is not None else None
    if match is None:
        raise ValueError(f"must be a duration with its unit, such as 8h, 30m or 1d "
                         f"(got {show(value)})")
    number = to_decimal(match.group(1))
    with arithmetic():
        seconds = _checked(number * _SECONDS[match.group(2)], value)
    if seconds <= 0:
        raise ValueError(f"must be a positive duration (got {show(value)})")
    return seconds


# --- the checks, one per kind of number -------------------------------------------------------


def non_negative(value: Decimal) -> Decimal:
    """Fees, amounts and rates: zero or more."""
    if value < 0:
        raise ValueError(f"must not be negative (got {show(value)})")
    return value


def positive(value: Decimal) -> Decimal:
    """Prices and conversion rates: more than zero."""
    if value <= 0:
        raise ValueError(f"must be positive (got {show(value)})")
    return value


def fraction(value: Decimal) -> Decimal:
    """Fee rates, LTVs and thresholds: 0 <= value < 1 (a 100% fee or LTV is nonsense)."""
    non_negative(value)
    if value >= 1:
        raise ValueError(f"must be below 1 (100%) (got {show(value)})")
    return value


def share(value: Decimal) -> Decimal:
    """A part of a whole that must be some of it: 0 < value <= 1 (a close factor)."""
    if value <= 0 or value > 1:
        raise ValueError(f"must be above 0 and at most 1 (100%) (got {show(value)})")
    return value


def signed_fraction(value: Decimal) -> Decimal:
    """A rate that may be paid either way (funding): -1 < value < 1."""
    if abs(value) >= 1:
        raise ValueError(f"must be between -1 and 1 (-100% and 100%) (got {show(value)})")
    return value


def leverage(value: Decimal) -> Decimal:
    """A leverage: at least 1 (1x)."""
    if value < 1:
        raise ValueError(f"must be at least 1 (got {show(value)})")
    return value


Dec = Annotated[Decimal, BeforeValidator(to_decimal)]
"""Any market number: finite, exact, in range."""
NonNegative = Annotated[Decimal, BeforeValidator(to_decimal), AfterValidator(non_negative)]
"""An amount or a rate that cannot be negative (a withdrawal fee in units, a gas price)."""
Positive = Annotated[Decimal, BeforeValidator(to_decimal), AfterValidator(positive)]
"""A price or a conversion rate."""
Fraction = Annotated[Decimal, BeforeValidator(to_decimal), AfterValidator(fraction)]
"""0 <= value < 1: an LTV or a liquidation threshold."""
Fee = Fraction
"""A fee rate (taker, flash loan, swap): 0 <= fee < 1."""
Share = Annotated[Decimal, BeforeValidator(to_decimal), AfterValidator(share)]
"""0 < value <= 1: a close factor (the part of a debt one liquidation may repay)."""
Leverage = Annotated[Decimal, BeforeValidator(to_decimal), AfterValidator(leverage)]
"""A leverage: >= 1."""
GasUnits = Annotated[int, BeforeValidator(to_units)]
"""Gas units: a whole number >= 0."""
SignedFraction = Annotated[Decimal, BeforeValidator(to_decimal), AfterValidator(signed_fraction)]
"""-1 < value < 1: a funding rate per interval, which longs or shorts may pay."""
Duration = Annotated[Decimal, BeforeValidator(to_seconds)]
"""A positive duration (`8h`), held in seconds."""
