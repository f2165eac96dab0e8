"""Hovers: the simulated state right after an instruction, a diagnostic code's page, or a
state function's meaning (with `oracle(V, T)`'s value beside the market price).

On an instruction: the dry run's state right after it (the balances it touched, before and
after, the health of every lending venue in use, the gas so far); inside an atomic block,
the state after the whole transaction. On a diagnostic code written in a comment
(`# noqa: SP400`), or on a flagged span: the code's `stratplan explain` page.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.formatter import format_expr, format_instruction
from stratplan.dsl.models import Assert, AtomicBlock, Repeat
from stratplan.executors.errors import MarketError
from stratplan.executors.oracle import oracle_price
from stratplan.interpreter.evaluate import FUNCTION_HELP, FUNCTIONS
from stratplan.interpreter.lint.codes import CODES, explain
from stratplan.interpreter.report import dec
from stratplan.lsp.analysis import Analysis
from stratplan.lsp.positions import contains, split_lines
from stratplan.lsp.replay import StateAfter
from stratplan.lsp.statements import holds, last_statement, statement_at
from stratplan.lsp.tokens import code_at, line_tokens


def _number(value: Decimal) -> str:
    """A decimal for reading: every digit up to 12 significant ones, else ≈ 10 of them."""
    digits = len(value.normalize().as_tuple().digits)
    if digits <= 12:
        return dec(value)
    rounded = Decimal(format(value, ".10g"))
    return "≈ " + dec(rounded)


_BOOK_WORDS = {"balance": "", "collateral": "collateral ", "debt": "debt ",
               "position": "position ", "entry": "entry price ", "margin": "margin ",
               "flash": "flash debt "}


def state_markdown(state: StateAfter) -> list[str]:
    """The state after a statement, as markdown lines."""
    lines = []
    if state.passes > 1:
        lines.append(f"after its last pass ({state.passes} passes), node `{state.node}`")
    else:
        lines.append(f"node `{state.node}`")
    lines.append("")
    for book, venue, asset, before, after in state.changes:
        lines.append(f"- {venue} {_BOOK_WORDS.get(book, book + ' ')}{asset}: "
                     f"{_number(before)} → {_number(after)}")
    if not state.changes:
        lines.append("- no balance changed")
    lines.append("")
    for venue, health in state.health.items():
        shown = "∞ (no debt)" if health is None else _number(health)
        lines.append(f"health({venue}) = {shown}  ")
    lines.append(f"gas so far: {state.gas_units:,} units = {_number(state.gas_eth)} ETH "
                 f"(${_number(state.gas_usd)})")
    return lines


def _explain_markdown(code: str) -> str | None:
    page = explain(code)
    return page.strip() if page else None


def _call_at(text: str, line: int, column: int) -> tuple[str, list[str]] | None:
    """(function, its word arguments) when the position is on the name of a state
    function's call (`oracle(aave, weETH)`), else None."""
    lines = split_lines(text)
    if not 1 <= line <= len(lines):
        return None
    found = line_tokens(lines[line - 1], line)
    for index, token in enumerate(found):
        if token.column <= column < token.end_column and token.text in FUNCTIONS and \
                index + 1 < len(found) and found[index + 1].text == "(":
            args: list[str] = []
            for inner in found[index + 2:]:
                if inner.text == ")":
                    break
                if inner.is_word:
                    args.append(inner.text)
            return token.text, args
    return None


def function_markdown(analysis: Analysis, func: str, args: list[str]) -> str:
    """A state function's signature and meaning; for `oracle(V, T)` and `price(T)` on the
    plan's market, the value now (the oracle beside the market price)."""
    names = {"venue": "V", "asset": "T"}
    signature = ", ".join(names[kind] for kind in FUNCTIONS[func])
    text = f"**`{func}({signature})`**: {FUNCTION_HELP.get(func, '')}"
    market = analysis.market
    try:
        if market is not None and func == "oracle" and len(args) == 2:
            venue, asset = args
            with arithmetic():
                oracle, price = oracle_price(market, venue, asset), market.price(asset)
            text += (f"\n\n`{venue}` values {asset} at {_number(oracle)} USD on this plan's "
                     f"market (market price {_number(price)} USD)")
        elif market is not None and func == "price" and len(args) == 1:
            text += f"\n\n{args[0]}: {_number(market.price(args[0]))} USD on this plan's market"
    except MarketError:
        pass
    return text


def hover(analysis: Analysis, line: int, column: int) -> str | None:
    """Markdown for a hover at a plan position, or None."""
    code = code_at(analysis.text, line, column)
    if code is not None:
        return _explain_markdown(code)
    call = _call_at(analysis.text, line, column)
    parts: list[str] = [] if call is None else [function_markdown(analysis, *call)]
    plan = analysis.plan
    found = statement_at(plan, line, column) if plan is not None else None
    if found is not None:
        stmt, block = found
        parts.append(_state_section(analysis, stmt, block))
    for d in analysis.lint.diagnostics:
        if contains(d.span, line, column) or (d.span.line == line and found is None):
            title = CODES.get(d.code, (None, d.code))[1]
            page = _explain_markdown(d.code) or ""
            parts.append(f"**{d.code}** ({d.severity.value}): {d.message}\n\n"
                         f"<details><summary>{title}</summary>\n\n{page}\n\n</details>"
                         if page else f"**{d.code}**: {d.message}")
    return "\n\n---\n\n".join(parts) if parts else None


def _state_section(analysis: Analysis, stmt: Any, block: AtomicBlock | None) -> str:
    target = block or stmt
    if isinstance(target, AtomicBlock):
        via = f" via {target.via}" if target.via else ""
        label = f"atomic {target.name}{via}"
    elif isinstance(target, Assert):
        label = f"assert {format_expr(target.condition)}"
    elif isinstance(target, Repeat):
        label = f"repeat {format_expr(target.count)}"
    else:
        label = format_instruction(target)
    head = f"**Dry run, right after** `{label}` (line {target.span.line})"
    if block is not None and stmt is not block:
        head += f" — `{format_instruction(stmt)}` runs inside this one transaction"
    if analysis.plan is not None and any(
            holds(trigger.body, target) for trigger in getattr(analysis.plan, "triggers", ())):
        return (f"{head}\n\nA trigger's body runs when the trigger fires, in "
                "`stratplan backtest`; the dry run covers the phases only.")
    replay = analysis.replay()
    if replay.unavailable:
        return f"{head}\n\nNo dry run: {replay.unavailable}."
    state = replay.states.get(id(last_statement(target)))
    if state is None:
        if replay.stopped:
            code, message, at = replay.stopped
            return f"{head}\n\nNot reached: the dry run stopped at line {at} ({code}: {message})."
        return f"{head}\n\nNot run by the dry run."
    body = state_markdown(state)
    if state.failure is not None:
        code, message = state.failure
        body.insert(0, f"**fails: {code}** {message} (state restored; gas paid)  ")
    elif isinstance(target, Assert):
        body.insert(0, "the assertion holds  ")
    return head + "\n\n" + "\n".join(body)

