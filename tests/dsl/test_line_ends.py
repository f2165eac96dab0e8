"""Line ends (issue 11): `\\n`, `\\r\\n` and a lone `\\r` each end one line, for every
position: diagnostics, spans, comments and the `# noqa` table."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratplan.dsl import parse
from stratplan.dsl.models import Model, without_spans
from stratplan.dsl.spans import Span, position, split_lines
from stratplan.dsl.strategies import plan_texts

ENDS = {"lf": "\n", "crlf": "\r\n", "cr": "\r"}


def with_ends(text: str, end: str) -> str:
    return text.replace("\n", end)


def spans(model: Any) -> list[tuple[str, Span]]:
    """Every span in a parsed plan, with the path to it, in a stable order."""
    found: list[tuple[str, Span]] = []

    def walk(item: Any, path: str) -> None:
        if isinstance(item, Span):
            found.append((path, item))
        elif isinstance(item, Model):
            for name in type(item).model_fields:
                walk(getattr(item, name), f"{path}.{name}")
        elif isinstance(item, (tuple, list)):
            for index, child in enumerate(item):
                walk(child, f"{path}[{index}]")

    walk(model, "plan")
    return found


def where(result: Any) -> list[tuple[str, int, int, int, int, str]]:
    return [(d.code, d.span.line, d.span.column, d.span.end_line, d.span.end_column, d.message)
            for d in result.diagnostics]


# Each case: plan text written with \n, and (code, line, column, end_line, end_column).
DIAGNOSED = [
    ("plan broken\n\nphase funding {\n  transfer 40_000 USDT from wallet binance\n}\n",
     ("SP100", 4, 36, 4, 43)),
    ("plan p\n# a comment\nphase a {\n  wrap 1 ETH\n", ("SP100", 4, 13, 4, 14)),
    ("plan p\nphase a {\n\n  transfer 5 ETH\n}\n", ("SP100", 4, 17, 4, 18)),
    ("plan p\n\nphase Hedge {\n  wrap 1 ETH\n}\n", ("SP100", 3, 7, 3, 12)),
    ("plan p\nholdings {\n  wallet: 20ETH\n}\nphase a { wrap 1 ETH }\n", ("SP100", 3, 11, 3, 16)),
    ("plan p\nphase a {\n  wrap 1 ETH\n  wrap 1__0 ETH\n}\n", ("SP100", 4, 9, 4, 11)),
    ("plan p\nphase a {\n  # note\n  transfer 1\u09ea USDT from wallet to binance\n}\n",
     ("SP100", 4, 13, 4, 14)),
    ("plan p\n\nlet x = 1e999999999\nphase a { wrap 1 ETH }\n", ("SP110", 3, 9, 3, 20)),
    ("plan p\nphase a {\n  wrap 1 @ ETH\n}\n", ("SP100", 3, 10, 3, 11)),
    ('plan p "a description"\n\n\nphase a {\n  wrap 1 ETH\n}\n}\n', ("SP100", 6, 2, 6, 3)),
    ("plan p\nphase a {\n  assert " + "(" * 101 + "1" + ")" * 101 + " > 0\n}\n",
     ("SP110", 3, 11, 3, 212)),
]


@pytest.mark.parametrize("text, expected", DIAGNOSED, ids=range(len(DIAGNOSED)))
def test_every_line_end_gives_the_same_position(text, expected):
    results = {name: where(parse(with_ends(text, end))) for name, end in ENDS.items()}
    assert results["lf"] and results["lf"][0][:5] == expected
    assert results["crlf"] == results["lf"]
    assert results["cr"] == results["lf"]


@pytest.mark.parametrize("end", ENDS.values(), ids=ENDS.keys())
def test_diagnostic_positions_point_into_the_lines_an_editor_shows(end):
    text = with_ends("plan p\n\nphase a {\n  wrap 1 ETH\n  wrap 1 XYZ from\n}\n", end)
    diagnostic = parse(text).diagnostics[0]
    line = split_lines(text)[diagnostic.span.line - 1]
    assert line[diagnostic.span.column - 1:diagnostic.span.end_column - 1] == "from"


def test_mixed_line_ends_in_one_file():
    text = "plan p\r\n\rphase a {\n  wrap 1 ETH\r\n  transfer 1 ETH from wallet binance\r}\r"
    diagnostic = parse(text).diagnostics[0]
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == ("SP100", 5, 30)
    assert split_lines(text)[4][29:36] == "binance"


PLAN = """plan p "lines"  # the plan
# before the holdings
holdings {
  wallet: 100 USDT, 1 ETH  # noqa: SP400, sp401
}
let x = 1 +
  2
phase a {  # noqa
  # a lone comment
  wrap 1 ETH
  atomic b {
    supply 1 ETH to aave  # noqa: SP400
  }
}
# the end
"""


def test_every_span_comment_and_noqa_line_is_the_same_for_every_line_end():
    results = {name: parse(with_ends(PLAN, end)) for name, end in ENDS.items()}
    lf = results["lf"]
    assert lf.plan is not None
    assert lf.noqa == {4: frozenset({"SP400", "SP401"}), 8: None, 12: frozenset({"SP400"})}
    assert lf.plan.lets[0].span == Span(line=6, column=1, end_line=7, end_column=4)
    atomic = lf.plan.phases[0].body[1]
    assert atomic.span == Span(line=11, column=3, end_line=13, end_column=4)
    for name in ("crlf", "cr"):
        result = results[name]
        assert result.plan is not None, result.diagnostics
        assert result.noqa == lf.noqa
        assert spans(result.plan) == spans(lf.plan)
        assert result.plan == lf.plan  # comments and their placement included


def test_a_comment_ends_at_a_lone_carriage_return():
    text = "plan p # one\rphase a { wrap 1 ETH } # two\r# three\r"
    result = parse(text)
    assert result.plan is not None, result.diagnostics
    assert result.plan.phases[0].span.line == 2
    assert result.plan.trailing == "# one"
    assert result.plan.phases[0].body[0].trailing == "# two"
    assert result.plan.end_comments == ("# three",)


def test_a_string_cannot_run_over_a_lone_carriage_return():
    result = parse('plan p "one\rtwo"\rphase a { wrap 1 ETH }')
    assert [(d.code, d.span.line, d.span.column) for d in result.diagnostics] == \
        [("SP100", 1, 8)]


def test_source_is_the_text_as_given():
    text = "plan p\rphase a { wrap 1 ETH }\r\n"
    assert parse(text).source == text
    assert parse(text.encode()).source == text


@pytest.mark.parametrize("end", ENDS.values(), ids=ENDS.keys())
def test_byte_level_errors_count_lines_the_same_way(end):
    bad_utf8 = with_ends("plan p\n\nphase a { wrap 1 ", end).encode() + b"\xc3\x28TH }"
    nul = with_ends("plan p\n\nphase a {\x00 }", end)
    for data, column in ((bad_utf8, 18), (nul, 10)):
        diagnostic = parse(data).diagnostics[0]
        assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == \
            ("SP100", 3, column)


def test_split_lines_ends_lines_where_an_editor_does():
    assert split_lines("a\rb\r\nc\nd\x0ce\x0bf\x85g\u2028h\u2029i\x1cj\n") == \
        ["a", "b", "c", "d\x0ce\x0bf\x85g\u2028h\u2029i\x1cj"]
    assert split_lines("") == [] and split_lines("\n") == [""] and split_lines("a") == ["a"]
    assert split_lines("a\r\r\nb\n\n") == ["a", "", "b", ""]
    assert split_lines("x\ry\n") == "x\ry\n".splitlines()


def test_position_counts_lines_as_split_lines_does():
    text = "ab\rc\r\nde\nf\x0cg\u2028h"
    for offset, char in enumerate(text):
        line, column = position(text, offset)
        if char in "\r\n":
            continue
        assert split_lines(text)[line - 1][column - 1] == char
    assert position(text, text.index("\n")) == position(text, text.index("\r\n"))
    assert position(text, len(text)) == (4, 6)
    assert position("", 0) == (1, 1)


@given(plan_texts(), st.sampled_from(["\r\n", "\r"]))
def test_property_a_plan_means_the_same_with_any_line_end(text, end):
    lf = parse(text)
    other = parse(text.replace("\n", end))
    assert lf.plan is not None and other.plan is not None, other.diagnostics
    assert spans(other.plan) == spans(lf.plan)
    assert len(spans(lf.plan)) >= 2  # the plan's own and its first phase's, at least
    assert other.noqa == lf.noqa
    assert without_spans(other.plan) == without_spans(lf.plan)


@given(plan_texts(), st.integers(0, 10_000), st.sampled_from(["@", "Hedge", "20ETH", "1__0",
                                                              "\u09ea", "1e99", "{", "phase"]))
def test_property_a_broken_plan_fails_at_the_same_place_with_any_line_end(text, where_, bad):
    where_ %= len(text) + 1
    text = text[:where_] + bad + text[where_:]
    lf = where(parse(text))
    assert where(parse(text.replace("\n", "\r\n"))) == lf
    assert where(parse(text.replace("\n", "\r"))) == lf
