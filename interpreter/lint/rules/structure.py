"""The plan's own names and shape (SP105-SP110): names unique and defined before use,
`after` naming phases with no cycle, `all` and `max` where allowed, repeat counts and
the unrolled size within the limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from stratplan.dsl.diagnostics import Diagnostic
from stratplan.dsl.models import (
    AllAmount,
    CEXTradeInstruction,
    MaxAmount,
    WalletTransferInstruction,
)
from stratplan.dsl.spans import Span
from stratplan.interpreter.dag import (
    MAX_NODES,
    MAX_REPEAT,
    phase_graph,
    phase_names_in_order,
    repeat_count,
    unrolled_size,
)
from stratplan.interpreter.evaluate import FUNCTIONS, calls, names_used
from stratplan.interpreter.lint.rules.registry import OPTIONS, RuleContext, diag, rule, suggest

ALL_ALLOWED = {"wallet_transfer", "spot_sell", "stake", "unstake", "supply", "withdraw",
               "repay", "swap", "wrap", "unwrap", "flash_repay"}


@rule("SP105")
def duplicate_names(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Phases, atomic blocks in a phase, lets, options and loop variables are unique."""
    def dupes(items: Iterable[tuple[str, Span]], what: str) -> Iterator[Diagnostic]:
        seen: dict[str, Span] = {}
        for name, span in items:
            if name in seen:
                yield diag("SP105", f"duplicate {what} `{name}` (first at line {seen[name].line})",
                           ctx.at(span, name))
            else:
                seen[name] = span
    # Phases and triggers share one namespace (node ids start with either name).
    named = sorted([*((p.name, p.span) for p in ctx.plan.phases),
                    *((t.name, t.span) for t in ctx.plan.triggers)],
                   key=lambda item: (item[1].line, item[1].column))
    yield from dupes(named, "phase or trigger")
    yield from dupes(((x.name, x.span) for x in ctx.plan.lets), "constant")
    yield from dupes(((x.name, x.span) for x in ctx.plan.sets), "option")
    # One pass over the visits, grouped by phase (a scan per phase would be quadratic).
    blocks: dict[int, list[tuple[str, Span]]] = {}
    for stmt, place in ctx.visits():
        if stmt.kind == "atomic":
            blocks.setdefault(id(place.phase), []).append((stmt.name, stmt.span))
    for phase in ctx.blocks:
        if id(phase) in blocks:
            yield from dupes(blocks[id(phase)], f"atomic block in {phase.name}")
    lets = {x.name for x in ctx.plan.lets}
    for stmt, place in ctx.visits():
        if stmt.kind == "repeat" and stmt.var:
            outer = {r.var for r in place.repeats if r.var}
            if stmt.var in lets or stmt.var in outer:
                yield diag("SP105", f"loop variable `{stmt.var}` hides another name",
                           ctx.at(stmt.span, stmt.var))


@rule("SP106")
def unknown_after(ctx: RuleContext) -> Iterator[Diagnostic]:
    """`after` must name phases of the plan."""
    names = {p.name for p in ctx.plan.phases}
    for phase in ctx.plan.phases:
        for name in phase.after:
            if name not in names:
                span = ctx.at(Span(line=phase.span.line, column=phase.span.column,
                                   end_line=phase.span.line, end_column=10_000), name)
                yield diag("SP106", f"phase {phase.name} waits for unknown phase `{name}`",
                           span, suggest(name, names))


@rule("SP107")
def phase_cycle(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Phase dependencies must not loop; reported at the cycle's first phase in the file."""
    if phase_names_in_order(ctx.plan) is not None:
        return  # no loop: networkx (slow to import) is needed only to name one
    import networkx as nx
    graph = phase_graph(ctx.plan)
    index = {p.name: i for i, p in enumerate(ctx.plan.phases)}
    by_name = {p.name: p for p in ctx.plan.phases}
    for component in nx.strongly_connected_components(graph):
        if len(component) == 1:
            (only,) = component
            if not graph.has_edge(only, only):
                continue
        first = min(component, key=lambda n: index[n])
        members = sorted(component, key=lambda n: index[n])
        phase = by_name[first]
        header = Span(line=phase.span.line, column=phase.span.column, end_line=phase.span.line,
                      end_column=phase.span.column + len("phase"))
        yield diag("SP107", "phase dependencies form a cycle: " +
                   " -> ".join([*members, members[0]]), header,
                   "remove one `after` so the phases can run in some order")


@rule("SP108")
def undefined_names(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Names must be defined before use; functions and options must exist."""
    defined: set[str] = set()
    for let in ctx.plan.lets:
        yield from _check_expr(ctx, let.value, defined)
        defined.add(let.name)
    lets = {let.name for let in ctx.plan.lets}
    for setting in ctx.plan.sets:
        if setting.name not in OPTIONS:
            yield diag("SP108", f"unknown option `{setting.name}`", ctx.at(setting.span, setting.name),
                       suggest(setting.name, OPTIONS) or f"options: {', '.join(sorted(OPTIONS))}")
        yield from _check_expr(ctx, setting.value, lets)
    for expr, place in ctx.expressions():
        if place is None:
            continue
        loop_vars = {r.var for r in place.repeats if r.var}
        yield from _check_expr(ctx, expr, lets | loop_vars)


def _check_expr(ctx: RuleContext, expr: Any, defined: set[str]) -> Iterator[Diagnostic]:
    for name in sorted(names_used(expr) - defined):
        yield diag("SP108", f"undefined name `{name}`", ctx.at(expr.span, name),
                   suggest(name, defined))
    for call in calls(expr):
        signature = FUNCTIONS.get(call.func)
        if signature is None:
            yield diag("SP108", f"unknown function `{call.func}`", call.span,
                       suggest(call.func, FUNCTIONS) or f"functions: {', '.join(FUNCTIONS)}")
        elif len(call.args) != len(signature):
            yield diag("SP108", f"`{call.func}` takes {len(signature)} argument(s): "
                       f"{call.func}({', '.join(s.upper() for s in signature)})", call.span)
        else:
            for arg, kind in zip(call.args, signature, strict=True):
                if kind == "asset" and arg.kind != "asset":
                    yield diag("SP108", f"`{call.func}` expects an asset symbol here", arg.span)
                elif kind == "venue" and arg.kind != "name":
                    yield diag("SP108", f"`{call.func}` expects a venue name here", arg.span)


def _instruction_key(stmt: Any) -> str:
    if isinstance(stmt, WalletTransferInstruction):
        return "wallet_transfer"
    if isinstance(stmt, CEXTradeInstruction):
        return f"{stmt.market}_{stmt.side}"
    return str(stmt.operation)


@rule("SP109")
def all_or_max(ctx: RuleContext) -> Iterator[Diagnostic]:
    """`all` only where the instruction draws from a balance; `max` only for borrow."""
    for stmt, _ in ctx.instructions():
        key = _instruction_key(stmt)
        if isinstance(stmt.amount, AllAmount) and key not in ALL_ALLOWED:
            yield diag("SP109", f"`all` is not allowed for {key.replace('_', ' ')}",
                       stmt.amount.span, "write the amount")
        if isinstance(stmt.amount, MaxAmount) and key != "borrow":
            yield diag("SP109", f"`max` is only allowed for borrow, not {key.replace('_', ' ')}",
                       stmt.amount.span, "write the amount")


@rule("SP110")
def limits(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Repeat counts are whole constants from 1 to 10,000; a plan unrolls to at most 1M nodes."""
    bad = False
    for stmt in ctx.statements:
        if stmt.kind == "repeat" and repeat_count(stmt, ctx.scope) is None:
            bad = True
            yield diag("SP110", f"repeat count must be a whole constant from 1 to {MAX_REPEAT:,}",
                       stmt.count.span)
    if not bad:
        # Reported at the top-level statement where the running total crosses the limit.
        total = 0
        for phase in ctx.blocks:
            for stmt in phase.body:
                total += unrolled_size((stmt,), ctx.scope) or 0
                if total > MAX_NODES:
                    yield diag("SP110", f"the plan unrolls to more than {MAX_NODES:,} "
                               "instructions", stmt.span, "split the plan, or lower the counts")
                    return
