"""JSON others may have written is decoded with its nesting bounded first (dsl/jsondata.py):
a library that raises the recursion limit (py-evm does) must not turn 100,000 nested arrays
into a crash of the process (issue 23)."""

from __future__ import annotations

import sys
from decimal import Decimal

import pytest

from stratplan.dsl.jsondata import decodable, depth, loads, within


def test_depth_counts_brackets_outside_strings():
    assert depth('{"a": [1, [2, {"b": "[[[[{{"}]]}') == 4
    assert depth(b'"\\"[[["') == 0
    assert depth("[]" * 1000) == 1


def test_loads_keeps_decimals_and_refuses_deep_documents():
    assert loads('{"x": 1.10, "y": [1e-31]}') == {"x": Decimal("1.10"), "y": [Decimal("1e-31")]}
    with pytest.raises(ValueError, match="nested more than 64 deep"):
        loads("[" * 65 + "]" * 65)
    with pytest.raises(ValueError):
        loads("{bad}")


def test_a_raised_recursion_limit_does_not_make_deep_json_a_crash():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)  # what importing py-evm does
    try:
        with pytest.raises(ValueError):
            loads("[" * 100_000 + "]" * 100_000)
    finally:
        sys.setrecursionlimit(old)


def test_a_long_text_with_few_brackets_is_not_scanned_and_decodable_follows_the_limit():
    text = '{"text": "' + "# x\\n" * 100_000 + '"}'
    assert within(text, 2) and decodable(text, 2)
    deep = "[" * 300 + "]" * 300
    old = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(1000)
        assert decodable(deep, 128)  # Python's own limit stops the decoder in time
        sys.setrecursionlimit(100_000)
        assert not decodable(deep, 128)
    finally:
        sys.setrecursionlimit(old)
