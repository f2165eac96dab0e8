"""The lint's lean paths (issue 17: memory per instruction) against the plain ones.

The rules read the plan through parallel lists (`RuleContext`), and the dry run records no
steps and caches no preparation of a statement that runs once; both must find exactly
what the plain walk and the plain sequential run find.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratplan.dsl import parse
from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.models import INSTRUCTION_KINDS, Plan
from stratplan.executors.market import default_market
from stratplan.executors.registry import discover
from stratplan.interpreter.dag import DagError, dry_run_nodes
from stratplan.interpreter.engine import Engine, run_sync
from stratplan.interpreter.lint.pipeline import lint_source
from stratplan.interpreter.lint.rules import RuleContext, run_rules
from stratplan.interpreter.testing.strategies import plans, valid_plans
from tests.conftest import conformance_cases, example_plans
from tests.interpreter.test_fuzz import mutated_examples
from tests.interpreter.test_run import _AwaitOnly

# Warnings (SP302) outside and inside a repeat, then a failure (SP305) in iteration 4.
WARNS_THEN_FAILS = """\
plan t
holdings { wallet: 100_000 USDT, 20 ETH }
set min_health = 1.5
phase p {
  atomic lever {
    stake 10 ETH on etherfi -> weETH
    supply all weETH to aave
    borrow 7.5 WETH from aave
  }
  repeat 6 as i {
    borrow 0.5 + i / 10 WETH from aave
  }
}
"""
PLANS = [p.read_text() for p in example_plans() + conformance_cases()] + [WARNS_THEN_FAILS]


# --- the rules' walk ---------------------------------------------------------------------


def _plain_walk(plan: Plan) -> list[tuple[Any, Any, Any, tuple[Any, ...]]]:
    """(statement, phase name, atomic block, repeats) in the order written: the walk as a
    record per statement, as the rules read it before issue 17."""
    found: list[tuple[Any, Any, Any, tuple[Any, ...]]] = []

    def walk(name: str, body: tuple[Any, ...], atomic: Any, repeats: tuple[Any, ...]) -> None:
        for stmt in body:
            found.append((stmt, name, atomic, repeats))
            if stmt.kind == "atomic":
                walk(name, stmt.body, atomic or stmt, repeats)
            elif stmt.kind == "repeat":
                walk(name, stmt.body, atomic, (*repeats, stmt))

    for phase in [*plan.phases, *(t.as_phase() for t in plan.triggers)]:
        walk(phase.name, phase.body, None, ())
    return found


def _check_walk(plan: Plan) -> None:
    ctx = RuleContext(plan, None, "")
    visits = [(stmt, place.phase.name, place.atomic, place.repeats)
              for stmt, place in ctx.visits()]
    plain = _plain_walk(plan)
    assert [v[0] for v in visits] == [v[0] for v in plain]  # the same objects, same order
    assert [(v[1], v[2], v[3]) for v in visits] == [(v[1], v[2], v[3]) for v in plain]
    # `instructions()` picks by the walk's bytes: the same as testing each statement.
    assert list(ctx.instructions()) == [(s, p) for s, p in ctx.visits()
                                        if s.kind in INSTRUCTION_KINDS]
    # The expressions, read twice (the second time from the kept lists).
    first = list(ctx.expressions())
    assert list(ctx.expressions()) == first
    plain_exprs = [let.value for let in plan.lets] + [s.value for s in plan.sets] + \
        [t.when for t in plan.triggers if t.when is not None]
    for stmt, _, _, _ in plain:
        for name in ("amount", "limit", "slippage", "count", "condition"):
            expr = getattr(stmt, name, None)
            if expr is not None and expr.kind not in ("all", "max"):
                plain_exprs.append(expr)
    assert [expr for expr, _ in first] == plain_exprs


@given(plans())
def test_property_the_rules_walk_is_the_plain_walk(plan):
    _check_walk(plan)


@pytest.mark.parametrize("text", PLANS)
def test_the_rules_walk_is_the_plain_walk_on_examples_and_conformance(text):
    plan = parse(text).plan
    if plan is not None:
        _check_walk(plan)


def test_source_lines_are_split_only_when_a_diagnostic_is_narrowed():
    text = "plan t\nholdings { wallet: 1 ETH }\nphase p {\n  wrap 0.5 ETH\n}\n"
    plan = parse(text).plan
    assert plan is not None
    ctx = RuleContext(plan, default_market(), text)
    assert ctx._lines is None
    span = plan.phases[0].body[0].span
    assert ctx.at(span, "ETH").column == span.column + len("wrap 0.5 ")
    assert ctx._lines == text.splitlines()


# --- the dry run -------------------------------------------------------------------------


def _dry_run(plan: Plan, executors: Any, steps: bool) -> tuple[Any, Engine] | None:
    with arithmetic():
        engine = Engine(plan, default_market(), executors)
        try:
            nodes = dry_run_nodes(plan, engine.scope)
        except DagError:
            return None
        return run_sync(engine.run_sequential(nodes, steps=steps)), engine


def _check_dry_run(text: str | bytes | Plan, awaited: bool = False) -> None:
    plan = text if isinstance(text, Plan) else parse(text).plan
    if plan is None:
        return
    with arithmetic():
        if any(d.is_error for d in run_rules(RuleContext(plan, default_market()))):
            return  # lint runs no dry run then
    executors = discover()
    if awaited:  # the trades must be awaited: the loop starts half-way
        executors = {f: _AwaitOnly(e) if f == "cex_trade" else e for f, e in executors.items()}
    plain = _dry_run(plan, executors, steps=True)
    lean = _dry_run(plan, executors, steps=False)
    if plain is None:
        assert lean is None
        return
    assert lean is not None
    (plain_outcome, plain_engine), (lean_outcome, lean_engine) = plain, lean
    assert lean_outcome.warnings == plain_outcome.warnings
    assert lean_outcome.failure == plain_outcome.failure
    assert lean_engine.monitor.snapshot() == plain_engine.monitor.snapshot()
    assert lean_outcome.steps == []
    # Only statements inside repeats (they run again) keep their preparation.
    repeated = {id(node.statement) for node in dry_run_nodes(plan, lean_engine.scope)
                if node.iteration is not None}
    assert set(lean_engine._prepared) <= repeated


@pytest.mark.parametrize("awaited", [False, True])
@pytest.mark.parametrize("text", PLANS)
def test_a_dry_run_without_steps_finds_what_the_plain_run_finds(text, awaited):
    _check_dry_run(text, awaited)


@given(mutated_examples(), st.booleans())
def test_property_a_dry_run_without_steps_finds_what_the_plain_run_finds(data, awaited):
    _check_dry_run(data, awaited)


@given(valid_plans())
def test_property_a_dry_run_without_steps_agrees_on_generated_plans(plan):
    _check_dry_run(plan)


def test_a_flat_dry_run_keeps_no_preparation_and_a_repeat_keeps_one():
    flat = ("plan t\nholdings { wallet: 10 ETH }\nphase p {\n  wrap 0.5 ETH\n"
            "  unwrap 0.5 WETH\n}\n")
    looped = ("plan t\nholdings { wallet: 10 ETH }\nphase p {\n  repeat 3 {\n"
              "    wrap 0.5 ETH\n  }\n}\n")
    for text, kept in ((flat, 0), (looped, 1)):
        plan = parse(text).plan
        assert plan is not None
        result = _dry_run(plan, discover(), steps=False)
        assert result is not None
        outcome, engine = result
        assert outcome.failure is None and len(engine._prepared) == kept
    assert lint_source(looped, "t.plan").diagnostics == []


def test_lint_source_keeps_the_file_limit_unless_an_embedding_program_lifts_it():
    from stratplan.interpreter.lint.pipeline import lint_source

    text = "plan p\nholdings { wallet: 1 ETH }\nphase a {\n  wrap 0.5 ETH\n}\n" + "#" * 64
    refused = lint_source(text, "p.plan", max_bytes=32)
    assert [d.code for d in refused.diagnostics] == ["SP110"]
    assert lint_source(text, "p.plan", max_bytes=None).diagnostics == []
    assert lint_source(text, "p.plan").diagnostics == []  # under the default 16 MiB
