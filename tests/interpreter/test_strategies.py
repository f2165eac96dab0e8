"""The public strategies draw what they promise, with hypothesis health checks on."""

from __future__ import annotations

from hypothesis import given, settings

from stratplan.dsl.formatter import format_plan
from stratplan.interpreter.lint.pipeline import lint_source
from stratplan.interpreter.testing.strategies import instructions, markets, valid_plans


def _instruction_count(body) -> int:
    return sum(_instruction_count(s.body) if s.kind in ("atomic", "repeat")
               else s.kind != "assert" for s in body)


def test_valid_plans_are_mostly_non_trivial_and_lint_clean():
    seen = {"n": 0, "nontrivial": 0, "flash": 0}

    # Health checks stay on: filtering or slow generation would fail this test.
    @settings(max_examples=80, deadline=None, database=None)
    @given(valid_plans())
    def draw(plan):
        seen["n"] += 1
        count = sum(_instruction_count(p.body) for p in plan.phases)
        seen["nontrivial"] += len(plan.phases) >= 2 and count >= 4
        text = format_plan(plan)
        seen["flash"] += "flash borrow" in text
        result = lint_source(text, "generated.plan")
        assert result.diagnostics == [], [(d.code, d.message) for d in result.diagnostics]

    draw()
    assert seen["nontrivial"] / seen["n"] >= 0.9, seen
    assert seen["flash"] / seen["n"] >= 0.3, seen


@settings(max_examples=20, deadline=None)
@given(valid_plans(market=None), markets())
def test_markets_are_valid_and_plans_lint_on_the_default(plan, market):
    assert market.prices["weETH"] == market.prices["ETH"] * market.assets["weETH"].rate
    assert lint_source(format_plan(plan), "p.plan").errors == 0


@given(instructions())
def test_instructions_format_to_one_line(instr):
    from stratplan.dsl.formatter import format_instruction
    assert "\n" not in format_instruction(instr)
