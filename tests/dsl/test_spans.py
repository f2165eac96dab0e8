"""Spans: a slotted dataclass, built fast by the parser, equal to one built the plain way,
and validated and serialised by pydantic exactly as the model it replaced."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from stratplan.dsl.diagnostics import Diagnostic, error
from stratplan.dsl.spans import Span, new_span

positions = st.integers(min_value=1, max_value=10**7)


@given(positions, positions, positions, positions)
def test_new_span_equals_the_constructor(line, column, end_line, end_column):
    fast = new_span(line, column, end_line, end_column)
    plain = Span(line=line, column=column, end_line=end_line, end_column=end_column)
    assert fast == plain and hash(fast) == hash(plain) and repr(fast) == repr(plain)
    assert pickle.loads(pickle.dumps(fast)) == plain


def test_a_span_is_small_and_frozen():
    span = new_span(3, 4, 3, 9)
    assert not hasattr(span, "__dict__")
    with pytest.raises(AttributeError):
        span.line = 5  # type: ignore[misc]


def test_a_diagnostic_dumps_and_validates_its_span_as_before():
    found = error("SP100", "bad", new_span(2, 3, 2, 8))
    assert found.model_dump(mode="json")["span"] == \
        {"line": 2, "column": 3, "end_line": 2, "end_column": 8}
    again = Diagnostic.model_validate_json(found.model_dump_json())
    assert again == found and type(again.span) is Span
    with pytest.raises(ValidationError):
        Diagnostic.model_validate({**found.model_dump(), "span": {"line": "x"}})


def test_join_spans_from_the_first_start_to_the_last_end():
    assert Span.join(new_span(1, 5, 1, 9), new_span(3, 2, 4, 7)) == new_span(1, 5, 4, 7)
