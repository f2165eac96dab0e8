"""Decimal parsing for market files: numbers, percentages (93%) and basis points (4bps)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator


def to_decimal(value: Any) -> Decimal:
    """A Decimal from a YAML scalar; floats go through their shortest repr, never binary."""
    if isinstance(value, bool):
        raise ValueError("expected a number, found true/false")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        scale = Decimal(1)
        if text.endswith("%"):
            text, scale = text[:-1], Decimal("0.01")
        elif text.endswith("bps"):
            text, scale = text[:-3], Decimal("0.0001")
        try:
            result = Decimal(text.strip()) * scale
        except InvalidOperation:
            raise ValueError(f"expected a number, a percentage or bps, found {value!r}") from None
    else:
        raise ValueError(f"expected a number, found {type(value).__name__}")
    if not result.is_finite():
        raise ValueError("expected a finite number")
    if result and abs(result.adjusted()) > 30:
        raise ValueError(f"number {value!r} is out of range")
    return result


Dec = Annotated[Decimal, BeforeValidator(to_decimal)]
