"""The canonical layout of a plan.

One statement a line, two-space indent, one blank line between top-level sections and
phases, `let` before `set`, numbers kept exactly as written (`40_000` stays `40_000`,
`40000` stays `40000`), minimal parentheses, and every comment kept where it was attached.
"""

from __future__ import annotations

from typing import Any

from stratplan.dsl.models import (
    Assert,
    AtomicBlock,
    BinOp,
    BoolOp,
    CEXTradeInstruction,
    Compare,
    Holdings,
    Neg,
    Not,
    Phase,
    Plan,
    Repeat,
    SmartContractInstruction,
    Trigger,
    WalletTransferInstruction,
)

INDENT = "  "
_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "compare": 4, "+": 5, "-": 5, "*": 6, "/": 6,
               "neg": 7}
_ATOM = 8


def _prec(expr: Any) -> int:
    if isinstance(expr, (BinOp, BoolOp)):
        return _PRECEDENCE[expr.op]
    if isinstance(expr, Compare):
        return _PRECEDENCE["compare"]
    if isinstance(expr, Not):
        return _PRECEDENCE["not"]
    if isinstance(expr, Neg):
        return _PRECEDENCE["neg"]
    return _ATOM


def _wrap(expr: Any, minimum: int) -> str:
    text = format_expr(expr)
    return f"({text})" if _prec(expr) < minimum else text


def format_expr(expr: Any) -> str:
    """An expression or amount in canonical form (depth is bounded by the parser)."""
    kind = expr.kind
    if kind == "number":
        return str(expr.text)
    if kind == "name":
        return str(expr.name)
    if kind == "asset":
        return str(expr.symbol)
    if kind in ("all", "max"):
        return str(kind)
    if kind == "call":
        return f"{expr.func}({', '.join(format_expr(a) for a in expr.args)})"
    if kind == "neg":
        operand = _wrap(expr.operand, _PRECEDENCE["neg"])
        # "- -1" rather than "--1", which reads like a typo.
        return f"- {operand}" if operand.startswith("-") else f"-{operand}"
    if kind == "not":
        return f"not {_wrap(expr.operand, _PRECEDENCE['not'])}"
    level = _prec(expr)
    left = _wrap(expr.left, level if kind != "compare" else level + 1)
    right = _wrap(expr.right, level + 1)
    return f"{left} {expr.op} {right}"


def format_instruction(instr: Any) -> str:
    """One instruction as a single line of source, without comments."""
    amount = format_expr(instr.amount)
    if isinstance(instr, WalletTransferInstruction):
        return (f"transfer {amount} {instr.token} from {instr.source_venue} "
                f"to {instr.target_venue}")
    if isinstance(instr, CEXTradeInstruction):
        text = f"{instr.market} {instr.side} {amount} {instr.pair} on {instr.venue}"
        if instr.limit is not None:
            text += f" limit {format_expr(instr.limit)}"
        if instr.leverage is not None:
            text += f" leverage {instr.leverage.text}"
        return text
    assert isinstance(instr, SmartContractInstruction)
    op, token = instr.operation, instr.token_in
    if op in ("stake", "unstake"):
        return f"{op} {amount} {token} on {instr.venue} -> {instr.token_out}"
    if op == "swap":
        text = f"swap {amount} {token} -> {instr.token_out} on {instr.venue}"
        if instr.slippage is not None:
            text += f" slippage {format_expr(instr.slippage)}"
        return text
    if op in ("wrap", "unwrap"):
        return f"{op} {amount} {token}"
    word = {"supply": "to", "repay": "to", "flash_repay": "to"}.get(op, "from")
    return f"{op.replace('_', ' ')} {amount} {token} {word} {instr.venue}"


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def comments(self, texts: tuple[str, ...], depth: int) -> None:
        self.lines.extend(INDENT * depth + text for text in texts)

    def line(self, node: Any, text: str, depth: int) -> None:
        self.comments(node.leading, depth)
        trailing = f"  {node.trailing}" if node.trailing else ""
        self.lines.append(INDENT * depth + text + trailing)

    def close(self, node: Any, depth: int) -> None:
        self.comments(node.end_comments, depth + 1)
        self.lines.append(INDENT * depth + "}")

    def blank(self) -> None:
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def statements(self, body: tuple[Any, ...], depth: int) -> None:
        # Blocks nest at most a few levels deep (the parser enforces it).
        for stmt in body:
            if isinstance(stmt, AtomicBlock):
                via = f" via {stmt.via}" if stmt.via else ""
                self.line(stmt, f"atomic {stmt.name}{via} {{", depth)
                self.statements(stmt.body, depth + 1)
                self.close(stmt, depth)
            elif isinstance(stmt, Repeat):
                var = f" as {stmt.var}" if stmt.var else ""
                self.line(stmt, f"repeat {format_expr(stmt.count)}{var} {{", depth)
                self.statements(stmt.body, depth + 1)
                self.close(stmt, depth)
            elif isinstance(stmt, Assert):
                message = f" else {quote(stmt.message)}" if stmt.message is not None else ""
                self.line(stmt, f"assert {format_expr(stmt.condition)}{message}", depth)
            else:
                self.line(stmt, format_instruction(stmt), depth)


def quote(text: str) -> str:
    """A string literal for `text`."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _holdings(writer: _Writer, holdings: Holdings) -> None:
    writer.line(holdings, "holdings {", 0)
    for entry in holdings.entries:
        amounts = ", ".join(f"{a.amount.text} {a.asset}" for a in entry.amounts)
        writer.line(entry, f"{entry.venue}: {amounts}", 1)
    writer.close(holdings, 0)


def _phase(writer: _Writer, phase: Phase) -> None:
    after = f" after {', '.join(phase.after)}" if phase.after else ""
    writer.line(phase, f"phase {phase.name}{after} {{", 0)
    writer.statements(phase.body, 1)
    writer.close(phase, 0)


def _trigger(writer: _Writer, trigger: Trigger) -> None:
    if trigger.every is not None:
        head = f"every {trigger.every.text}"
    else:
        head = f"when {format_expr(trigger.when)}"
        if trigger.cooldown is not None:
            head += f" cooldown {trigger.cooldown.text}"
    writer.line(trigger, f"trigger {trigger.name} {head} {{", 0)
    writer.statements(trigger.body, 1)
    writer.close(trigger, 0)


def format_plan(plan: Plan) -> str:
    """The plan in canonical layout, ending with one newline."""
    writer = _Writer()
    description = f" {quote(plan.description)}" if plan.description is not None else ""
    writer.line(plan, f"plan {plan.name}{description}", 0)
    if plan.market is not None:
        writer.blank()
        writer.line(plan.market, f"use market {quote(plan.market.path)}", 0)
    if plan.series is not None:
        if plan.market is None:
            writer.blank()
        writer.line(plan.series, f"use series {quote(plan.series.path)}", 0)
    if plan.holdings is not None:
        writer.blank()
        _holdings(writer, plan.holdings)
    if plan.lets:
        writer.blank()
        for let in plan.lets:
            writer.line(let, f"let {let.name} = {format_expr(let.value)}", 0)
    if plan.sets:
        writer.blank()
        for setting in plan.sets:
            writer.line(setting, f"set {setting.name} = {format_expr(setting.value)}", 0)
    # Phases and triggers keep their written order (triggers fire in file order).
    blocks: list[Phase | Trigger] = [*plan.phases, *plan.triggers]
    blocks.sort(key=lambda block: (block.span.line, block.span.column))
    for block in blocks:
        writer.blank()
        if isinstance(block, Trigger):
            _trigger(writer, block)
        else:
            _phase(writer, block)
    if plan.end_comments:
        writer.blank()
        writer.comments(plan.end_comments, 0)
    return "\n".join(writer.lines) + "\n"
