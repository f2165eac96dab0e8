"""Golden files: plan -> formatter output, and broken plan -> its SP100 message."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratplan.dsl import format_plan, parse
from stratplan.dsl.models import without_spans

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("source", sorted((GOLDEN / "format").glob("*.plan")),
                         ids=lambda p: p.name)
def test_formatter_output_matches_golden(source: Path):
    result = parse(source.read_text(encoding="utf-8"), str(source))
    assert result.plan is not None, result.diagnostics
    expected = source.with_suffix(".expected").read_text(encoding="utf-8")
    assert format_plan(result.plan) == expected
    again = parse(expected)
    assert again.plan is not None
    assert without_spans(again.plan) == without_spans(result.plan)
    assert format_plan(again.plan) == expected


@pytest.mark.parametrize("source", sorted((GOLDEN / "errors").glob("*.plan")),
                         ids=lambda p: p.name)
def test_syntax_error_message_matches_golden(source: Path):
    result = parse(source.read_text(encoding="utf-8"), str(source))
    assert result.plan is None
    got = [f"{d.span.line}:{d.span.column}: {d.code} {d.message}" for d in result.diagnostics]
    expected = source.with_suffix(".expected").read_text(encoding="utf-8").splitlines()
    assert got == expected


def test_every_comment_survives_formatting():
    source = (GOLDEN / "format" / "messy_basis.plan").read_text(encoding="utf-8")
    formatted = format_plan(parse(source).plan)
    comments = [line[line.index("#"):] for line in source.splitlines()
                if "#" in line and '"' not in line]
    for comment in comments:
        assert comment.strip() in formatted


def test_declarations_in_any_order_format_in_canonical_order():
    source = ("plan p\nlet a = 1  # the size\nset min_health = 1.2\nholdings { wallet: 1 ETH }\n"
              'use market "m.yaml"\nphase x { wrap a ETH }\n')
    result = parse(source)
    assert result.plan is not None
    formatted = format_plan(result.plan)
    assert formatted == ('plan p\n\nuse market "m.yaml"\n\nholdings {\n  wallet: 1 ETH\n}\n\n'
                         "let a = 1  # the size\n\nset min_health = 1.2\n\n"
                         "phase x {\n  wrap a ETH\n}\n")
    assert without_spans(parse(formatted).plan) == without_spans(result.plan)


def test_a_second_holdings_block_is_a_syntax_error():
    result = parse("plan p\nholdings { wallet: 1 ETH }\nholdings { wallet: 2 ETH }\n"
                   "phase x { wrap 1 ETH }\n")
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("SP100", 3)]
    assert "at most one `holdings`" in result.diagnostics[0].message
