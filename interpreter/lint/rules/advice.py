"""Advice (SP400, SP401): contract operations that could share a transaction, constants
nobody reads. `contract_runs` is also the language server's fix for SP400.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from stratplan.dsl.diagnostics import Diagnostic
from stratplan.dsl.models import SmartContractInstruction
from stratplan.interpreter.dag import repeat_count
from stratplan.interpreter.evaluate import EvalError, constant, names_used
from stratplan.interpreter.lint.rules.registry import RuleContext, diag, rule


@rule("SP400")
def could_be_atomic(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Runs of contract operations outside atomic blocks pay one base fee each."""
    bodies: list[tuple[tuple[Any, ...], int]] = [(p.body, 1) for p in ctx.blocks]
    for stmt, place in ctx.visits():
        if stmt.kind == "repeat" and place.atomic is None:
            passes = 1
            for repeat in (*place.repeats, stmt):
                passes *= repeat_count(repeat, ctx.scope) or 1
            bodies.append((stmt.body, passes))
    base = ctx.market.gas.base_tx if ctx.market else 21_000
    gwei = ctx.market.gas.price_gwei if ctx.market else Decimal(20)
    for setting in ctx.plan.sets:
        if setting.name == "gas_price_gwei":
            try:
                gwei = constant(setting.value, ctx.scope) or gwei
            except EvalError:
                pass
    for body, passes in bodies:
        for run in contract_runs(body):
            units = (len(run) - 1) * base * passes
            eth = Decimal(units) * gwei / Decimal(1_000_000_000)
            yield diag("SP400", f"{len(run)} consecutive contract operations could be one "
                       f"atomic block, saving {units:,} gas ({eth.normalize():f} ETH)",
                       run[0].span, "wrap them in `atomic NAME { ... }`")


def contract_runs(body: Sequence[Any]) -> Iterator[list[SmartContractInstruction]]:
    """The runs of two or more consecutive contract operations directly in a body (SP400;
    the language server's fix wraps the same runs)."""
    run: list[SmartContractInstruction] = []
    for stmt in (*body, None):
        if isinstance(stmt, SmartContractInstruction):
            run.append(stmt)
            continue
        if len(run) >= 2:
            yield run
        run = []


@rule("SP401")
def unused_let(ctx: RuleContext) -> Iterator[Diagnostic]:
    """A constant nobody reads is probably a mistake."""
    used: set[str] = set()
    for expr, _ in ctx.expressions():
        used |= names_used(expr)
    for let in ctx.plan.lets:
        if let.name not in used:
            yield diag("SP401", f"constant `{let.name}` is never used", ctx.at(let.span, let.name),
                       "remove it, or use it")
