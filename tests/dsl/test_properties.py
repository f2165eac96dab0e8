"""Property tests of the front end: round trip, idempotence, and parse never raising."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stratplan.dsl import format_plan, parse
from stratplan.dsl.models import Plan, without_spans
from stratplan.dsl.strategies import plan_texts, plans


@given(plans())
def test_property_parse_of_format_is_the_same_plan(plan):
    result = parse(format_plan(plan))
    assert result.plan is not None, result.diagnostics
    assert without_spans(result.plan) == without_spans(plan)


@given(plans())
def test_property_format_is_idempotent(plan):
    once = format_plan(plan)
    twice = format_plan(parse(once).plan)
    assert once == twice


@given(plan_texts())
def test_property_odd_spacing_parses_to_the_canonical_form(text):
    result = parse(text)
    assert result.plan is not None, result.diagnostics
    assert format_plan(parse(format_plan(result.plan)).plan) == format_plan(result.plan)


@given(st.text(max_size=400))
def test_property_parse_never_raises_on_text(text):
    result = parse(text)
    assert (result.plan is None) == bool(result.diagnostics)
    assert all(d.code in ("SP100", "SP110") for d in result.diagnostics)


@given(st.binary(max_size=400))
def test_property_parse_never_raises_on_bytes(data):
    result = parse(data)
    assert (result.plan is None) == bool(result.diagnostics)


def test_from_type_plan_uses_the_registered_strategy():
    strategy = st.from_type(Plan)

    @given(strategy)
    def check(plan):
        assert isinstance(plan, Plan)
        assert parse(format_plan(plan)).plan is not None
    check()
