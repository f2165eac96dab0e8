"""Durations (LANGUAGE.md section 2): the one reading of `30s`, `15m`, `8h`, `1d`, `2w`.

A duration is what the grammar's DURATION terminal matches (`grammar/plan.lark`: ASCII
digits, `_` between digits, an optional fraction, then one of s, m, h, d, w, and no
exponent), its number read by the number rules of section 2 (`numbers.number_value`:
exact, at most 40 digits, within 1e-30..1e30). Times are counted in whole milliseconds (a
series' times, a backtest's steps), so a duration is a positive whole number of
milliseconds, and no longer than the span of times a series can hold (year 1970 to 9999).
`every` and `cooldown` in a plan, and `--step` and `--days` on the command line, all read
their durations here: a duration a plan refuses, the command line refuses too.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal
from functools import cache

from stratplan.dsl.numbers import LiteralError, number_value, shown_literal
from stratplan.dsl.packagedata import data_text

UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
# The longest duration: from 1970-01-01 to the end of 9999 (the times a series can hold).
MAX_DURATION_MS = 253_402_300_799_999
EXAMPLES = "30s, 15m, 8h, 1d or 2w"
# Wide enough that a 40-digit value times a unit is never rounded (a fraction of a
# millisecond must not round to a whole one).
_EXACT = Context(prec=100, Emax=999_999, Emin=-999_999)


class DurationError(ValueError):
    """Text that is not a usable duration: the diagnostic code (SP100 not a duration, SP104
    zero or shorter than a millisecond, SP110 out of range or not a whole number of
    milliseconds) and a one-line message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@cache
def duration_pattern() -> re.Pattern[str]:
    """The grammar's DURATION terminal, as a regular expression (read from the grammar
    file's text: no parser is built)."""
    grammar = data_text("stratplan.grammar", "plan.lark")
    found = re.search(r"^DURATION\s*:\s*/(.+)/\s*$", grammar, re.MULTILINE)
    if found is None:  # pragma: no cover - the grammar ships with the package
        raise RuntimeError("the grammar has no DURATION terminal")
    return re.compile(found.group(1))


def duration_ms(text: str) -> int:
    """A duration as the grammar writes it, in milliseconds; DurationError otherwise."""
    shown = shown_literal(text)
    if not duration_pattern().fullmatch(text):
        raise DurationError("SP100", f"{shown!r} is not a duration (a number written with "
                            f"the digits 0-9 and a unit s, m, h, d or w: {EXAMPLES})")
    try:
        value = number_value(text[:-1])
    except LiteralError as exc:
        raise DurationError(exc.code, f"duration {shown}: {exc.message}") from None
    return _whole_ms(value, text[-1], shown)


def _whole_ms(value: Decimal, unit: str, shown: str) -> int:
    ms = _EXACT.multiply(value, Decimal(UNIT_MS[unit]))
    if ms <= 0:
        raise DurationError("SP104", f"duration {shown} is zero: a duration is positive")
    if ms < 1:
        raise DurationError("SP104", f"duration {shown} is shorter than a millisecond (times "
                            "are counted in whole milliseconds)")
    if ms != ms.to_integral_value():
        raise DurationError("SP110", f"duration {shown} is not a whole number of "
                            "milliseconds (times are counted in whole milliseconds)")
    if ms > MAX_DURATION_MS:
        raise DurationError("SP110", f"duration {shown} is longer than any span of times "
                            "(1970 to 9999)")
    return int(ms)


def value_ms(value: Decimal, unit: str, shown: str) -> int:
    """A duration already split into its number and unit (a parsed plan's), in
    milliseconds; DurationError as `duration_ms`."""
    if unit not in UNIT_MS:
        raise DurationError("SP100", f"{shown!r} is not a duration unit")
    return _whole_ms(value, unit, shown)


def days_ms(text: str) -> int:
    """`--days N`: a whole number of days in ASCII digits, read as the duration `Nd`;
    DurationError otherwise."""
    if not (text.isascii() and text.isdigit()):
        raise DurationError("SP100", f"expected a whole number of days (digits 0-9), got "
                            f"{shown_literal(text)!r}")
    return duration_ms(f"{text}d")


__all__ = ["EXAMPLES", "MAX_DURATION_MS", "UNIT_MS", "DurationError", "days_ms",
           "duration_ms", "duration_pattern", "value_ms"]
