"""The faster LALR loop (dsl/lalr.py) gives exactly what Lark's own loop gives.

Both loops run the same tables, callbacks and lexer; for every text the outcome must be
the same: the same models with the same spans and comments, or the same exception raised
by a callback, or a syntax error in both (which `parse` then reports from Lark's loop)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lark.exceptions import UnexpectedInput

from stratplan.dsl import builder, parser
from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.grammar import plan_lark
from stratplan.dsl.lalr import UNIT, LalrLoop, NoAction
from stratplan.dsl.performance import paused_gc
from stratplan.dsl.strategies import edited_plan_texts, plan_texts

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.plan"))
CONFORMANCE = sorted((ROOT.parent / "shared" / "conformance-v3").rglob("*.plan"))


def _outcome(run: Any, text: str) -> tuple[Any, ...]:
    builder.BUILDER.reset()
    builder.COMMENTS.clear()
    try:
        value = run(parser._one_line_end(text))
    except (NoAction, UnexpectedInput):
        return ("syntax error",)
    except Exception as exc:  # a callback's own error (a limit, a decimal signal)
        return ("raised", type(exc).__name__, str(exc))
    return ("ok", value, list(builder.COMMENTS))


def _same(text: str) -> tuple[Any, ...]:
    lark = plan_lark()
    with parser._LOCK, paused_gc(), arithmetic():
        try:
            fast = _outcome(parser._loop(lark).parse, text)
            stock = _outcome(lark.parse, text)
        finally:
            builder.BUILDER.reset()
            builder.COMMENTS.clear()
    assert fast == stock
    return stock


def test_the_loop_knows_the_expression_ladder_as_unit_steps():
    loop = parser._loop(plan_lark())
    # `?expr: or_expr`, `?or_expr: and_expr`, ... `?atom: number`: at least the ladder.
    assert loop.unit_rules >= 9
    units = {entry[1] for row in loop.states.values() for entry in row.values()
             if entry[0] == UNIT}
    assert {"expr", "or_expr", "and_expr", "sum", "product", "unary"} <= units


def test_examples_and_conformance_plans_parse_alike():
    assert EXAMPLES and CONFORMANCE
    outcomes = [_same(path.read_text(encoding="utf-8"))[0] for path in EXAMPLES + CONFORMANCE]
    assert outcomes.count("ok") >= len(EXAMPLES)


def test_parse_reports_lark_s_own_syntax_error_and_resets_what_the_fast_loop_built(
        monkeypatch):
    text = 'plan p\nphase a {\n  transfer 1 USDT from wallet to binance # one\n  spot buy\n}\n'
    result = parser.parse(text, "x.plan")
    assert not result.ok
    (found,) = result.diagnostics
    assert (found.code, found.span.line) == ("SP100", 4)  # after `buy`: the amount is missing
    with monkeypatch.context() as patched:
        patched.setattr(parser, "_parse_text", lambda lark, text: lark.parse(text))
        assert parser.parse(text, "x.plan").diagnostics == result.diagnostics
    # After the failed parse, a good one keeps only its own comments.
    good = parser.parse('plan q\nphase a {\n  wrap 1 ETH  # two\n}\n', "y.plan")
    assert good.ok and good.plan is not None
    assert good.plan.phases[0].body[0].trailing == "# two"


def test_parse_with_either_loop_gives_equal_results(monkeypatch):
    texts = [path.read_text(encoding="utf-8") for path in EXAMPLES]
    fast = [parser.parse(text, "p.plan") for text in texts]
    monkeypatch.setattr(parser, "_parse_text", lambda lark, text: lark.parse(text))
    stock = [parser.parse(text, "p.plan") for text in texts]
    assert [(r.plan, r.diagnostics, r.noqa) for r in fast] == \
        [(r.plan, r.diagnostics, r.noqa) for r in stock]


@given(plan_texts())
def test_property_plans_parse_alike(text):
    assert _same(text)[0] == "ok"


@given(edited_plan_texts())
def test_property_edited_plans_parse_or_fail_alike(text):
    _same(text)


@given(st.text(max_size=200))
def test_property_any_text_parses_or_fails_alike(text):
    _same(text)


@pytest.mark.parametrize("text", ["", "plan", "plan p", "plan p\n", "plan p phase a {}"])
def test_short_texts_and_the_end_of_input(text):
    _same(text)


def test_a_loop_over_tables_without_unit_rules_still_parses_alike(monkeypatch):
    # Every reduction through the callbacks: the loop must not depend on the shortcut.
    monkeypatch.setattr("stratplan.dsl.lalr._is_unit", lambda rule, callback: False)
    loop = LalrLoop(plan_lark())
    assert loop.unit_rules == 0
    text = EXAMPLES[0].read_text(encoding="utf-8")
    with parser._LOCK, paused_gc(), arithmetic():
        try:
            slow = _outcome(loop.parse, text)
            fast = _outcome(parser._loop(plan_lark()).parse, text)
        finally:
            builder.BUILDER.reset()
            builder.COMMENTS.clear()
    assert slow[0] == "ok" and slow == fast


def test_tables_the_loop_does_not_understand_leave_lark_s_own_loop_working(monkeypatch):
    class Foreign:
        def __init__(self, lark: Any) -> None:
            raise AttributeError("no parse_table here")

    monkeypatch.setattr(parser, "LalrLoop", Foreign)
    lark = plan_lark()
    parser._loop.cache_clear()
    try:
        assert parser._loop(lark) is None
        text = EXAMPLES[0].read_text(encoding="utf-8")
        result = parser.parse(text, "p.plan")
        assert result.ok
    finally:
        parser._loop.cache_clear()
    monkeypatch.undo()
    assert parser.parse(text, "p.plan").plan == result.plan
    assert isinstance(parser._loop(lark), LalrLoop)
