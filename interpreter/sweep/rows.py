"""What a cached sweep row must look like to be used (DESIGN.md, "What is trusted").

A cache file is JSON anyone who can write the folder may have edited, cut or planted. A row
read back is used only when it has exactly the shape `sweep.run.evaluate` writes: its key,
a status of `ok`, `failed` or `error`, a summary and PnL that are objects of the expected
kinds (every metric a sweep may rank by a decimal string, a whole number or null; every
`min_health.VENUE` an object with its value and time; every `firings.TRIGGER` a count;
every PnL part a decimal string), an error that is text or null, and `deterministic`
true. Anything else is not an error: the row is computed again, as if it had never been
cached.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from stratplan.interpreter.time.metric_names import METRICS

FIELDS = frozenset({"key", "status", "summary", "pnl", "error", "deterministic"})
_SCALARS = (str, int, type(None))


def _decimal_text(value: Any) -> bool:
    """A finite decimal written as text (how reports hold amounts)."""
    if not isinstance(value, str) or len(value) > 200:
        return False
    try:
        return Decimal(value).is_finite()
    except (InvalidOperation, ValueError):
        return False


def _metric(value: Any) -> bool:
    """What a rankable metric may be: a decimal string, a whole number, or null."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or _decimal_text(value)


def _summary(summary: Any) -> bool:
    if not isinstance(summary, dict) or not all(isinstance(k, str) for k in summary):
        return False
    if not all(name in summary and _metric(summary[name]) for name in METRICS):
        return False
    health, firings = summary.get("min_health"), summary.get("firings")
    if not isinstance(health, dict) or not isinstance(firings, dict):
        return False
    for reading in health.values():
        if not (isinstance(reading, dict) and _metric(reading.get("value"))
                and isinstance(reading.get("time"), _SCALARS)):
            return False
    if not all(isinstance(count, int) and not isinstance(count, bool) and count >= 0
               for count in firings.values()):
        return False
    for name, value in summary.items():
        if name in ("min_health", "firings"):
            continue
        nested = value.values() if isinstance(value, dict) else (value,)
        if not all(isinstance(item, _SCALARS) and not isinstance(item, bool)
                   for item in nested):
            return False
    return True


def _pnl(pnl: Any) -> bool:
    return isinstance(pnl, dict) and all(isinstance(k, str) and _decimal_text(v)
                                         for k, v in pnl.items())


def cached_row(data: Any, key: str) -> dict[str, Any] | None:
    """The row a cache file holds when it has the shape a sweep writes and the key asked
    for, else None (the point is computed again)."""
    if not isinstance(data, dict) or set(data) != FIELDS or data["key"] != key:
        return None
    if data["deterministic"] is not True:
        return None
    status, error = data["status"], data["error"]
    if not (error is None or isinstance(error, str)):
        return None
    if status == "error":
        valid = data["summary"] is None and data["pnl"] is None and isinstance(error, str)
    elif status in ("ok", "failed"):
        valid = _summary(data["summary"]) and _pnl(data["pnl"])
    else:
        valid = False
    return data if valid else None


__all__ = ["FIELDS", "cached_row"]
