"""JSON that others may have written (a journal's events, a venue store, a cache entry, a
language client's message), decoded with its nesting bounded first.

Python's JSON decoder recurses on the C stack, one level per `[` or `{`. Under the default
recursion limit a deep document is a RecursionError; but a library may raise that limit
(py-evm sets it to 100,000 when it is imported), and then 100,000 nested arrays crash the
process instead. So the nesting of a document is measured before it is decoded, by a scan
that skips strings, and a document nested deeper than the caller allows is a ValueError.
Numbers with a fraction or exponent are decoded as Decimal, never as float.
"""

from __future__ import annotations

import json
import re
import sys
from decimal import Decimal
from typing import Any

MAX_DEPTH = 64
# A string (the unrolled loop: runs of plain characters between escapes), or a bracket.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]')
# Under this recursion limit the decoder's own RecursionError comes before the C stack ends.
SAFE_RECURSION_LIMIT = 5_000


def depth(text: str | bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest (strings are skipped)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if text.count("[") + text.count("{") <= 1:
        return text.count("[") + text.count("{")
    deepest = level = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            level += 1
            deepest = max(deepest, level)
        elif token in "]}":
            level -= 1
    return deepest


def within(text: str | bytes, max_depth: int) -> bool:
    """Whether a JSON text nests at most `max_depth` deep (cheap when it holds few brackets,
    as a long document's text does)."""
    opening = text.count(b"[") + text.count(b"{") if isinstance(text, bytes) else \
        text.count("[") + text.count("{")
    return opening <= max_depth or depth(text) <= max_depth


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The value of a JSON text, numbers with a fraction as Decimal; ValueError when it is
    not JSON or nests deeper than `max_depth`."""
    if not within(text, max_depth):
        raise ValueError(f"JSON nested more than {max_depth} deep")
    try:
        return json.loads(text, parse_float=Decimal)
    except RecursionError:  # pragma: no cover - the depth is checked first
        raise ValueError("JSON nested too deeply") from None


def decodable(text: str | bytes, max_depth: int) -> bool:
    """Whether decoding a text cannot exhaust the stack: the recursion limit is Python's
    own (the decoder stops with a RecursionError in time), or the text nests at most
    `max_depth` deep. For large messages, where the scan would cost a second."""
    return sys.getrecursionlimit() <= SAFE_RECURSION_LIMIT or within(text, max_depth)


__all__ = ["MAX_DEPTH", "SAFE_RECURSION_LIMIT", "decodable", "depth", "loads", "within"]
