"""The unrolled instruction list (export) and drawings of the DAG (graph)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from stratplan.dsl.formatter import format_expr, format_instruction
from stratplan.dsl.models import AllAmount, Assert, AtomicBlock, MaxAmount
from stratplan.interpreter.dag import Dag, PlanNode
from stratplan.interpreter.evaluate import EvalError, Scope, constant
from stratplan.interpreter.report import dec

_SKIP = {"span", "leading", "trailing", "kind", "amount", "limit", "slippage", "leverage"}


def _amount(expr: Any, scope: Scope) -> str | None:
    """A constant amount as a decimal string; otherwise the expression's text."""
    if expr is None:
        return None
    if isinstance(expr, (AllAmount, MaxAmount)):
        return expr.kind
    try:
        value = constant(expr, scope)
    except EvalError:
        value = None
    return dec(value) if isinstance(value, Decimal) else format_expr(expr)


def _fields(instr: Any, scope: Scope) -> dict[str, Any]:
    data = {k: v for k, v in instr.model_dump(mode="json").items() if k not in _SKIP}
    data["amount"] = _amount(instr.amount, scope)
    for extra in ("limit", "slippage"):
        if getattr(instr, extra, None) is not None:
            data[extra] = _amount(getattr(instr, extra), scope)
    if getattr(instr, "leverage", None) is not None:
        data["leverage"] = dec(instr.leverage.value)
    return data


def export_entries(dag: Dag, scope: Scope) -> Iterator[dict[str, Any]]:
    """One entry per unrolled instruction and assert, with id, dependencies and line; an
    entry of a trigger's body (v2) has `phase` null and `trigger` its trigger's name."""
    for entry in _entries(dag, scope):
        if entry["phase"] in dag.triggers:
            entry = {**entry, "phase": None, "trigger": entry["phase"]}
        yield entry


def _block_title(dag: Dag, name: str) -> str:
    """A cluster's title: `phase NAME`, or `trigger NAME every 1w` (v2)."""
    head = dag.triggers.get(name)
    return f"phase {name}" if head is None else f"trigger {name} {head}"


def _entries(dag: Dag, scope: Scope) -> Iterator[dict[str, Any]]:
    for node in dag.nodes:
        node_scope = scope.with_loop(node.loop)
        deps = list(dag.preds[node.id])  # already in node order
        stmt = node.statement
        if isinstance(stmt, AtomicBlock):
            previous = deps
            for index, op in enumerate(stmt.body):
                op_id = node.op_id(index)
                yield {"id": op_id, "family": op.kind, "phase": node.phase, "line": op.span.line,
                       "depends_on": previous, "execution_mode": "atomic",
                       "atomic_group_id": node.id, "via": stmt.via, **_fields(op, node_scope)}
                previous = [op_id]
        elif isinstance(stmt, Assert):
            yield {"id": node.id, "family": "assert", "phase": node.phase,
                   "line": node.line, "depends_on": deps,
                   "condition": format_expr(stmt.condition), "message": stmt.message}
        else:
            yield {"id": node.id, "family": stmt.kind, "phase": node.phase, "line": node.line,
                   "depends_on": deps, "execution_mode": "sequential", "atomic_group_id": None,
                   **_fields(stmt, node_scope)}


def _label(node: PlanNode) -> str:
    stmt = node.statement
    if isinstance(stmt, AtomicBlock):
        via = f" via {stmt.via}" if stmt.via else ""
        return f"atomic {stmt.name}{via}"
    if isinstance(stmt, Assert):
        return f"assert {format_expr(stmt.condition)}"
    return format_instruction(stmt)


def _ops(node: PlanNode) -> list[str]:
    stmt = node.statement
    return [format_instruction(op) for op in stmt.body] if isinstance(stmt, AtomicBlock) else []


def graph_json(dag: Dag) -> dict[str, Any]:
    """Nodes (with phase, kind, line and label) and edges."""
    blocks = list(dict.fromkeys(node.phase for node in dag.nodes))
    return {
        "phases": [name for name in blocks if name not in dag.triggers],
        "triggers": [{"name": name, "head": dag.triggers[name]} for name in blocks
                     if name in dag.triggers],
        "nodes": [{"id": n.id, "phase": n.phase, "kind": n.statement.kind, "line": n.line,
                   "label": _label(n), "operations": _ops(n)} for n in dag.nodes],
        "edges": [[a, b] for a, b in dag.graph.edges],
    }


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def graph_dot(dag: Dag, title: str) -> str:
    """Graphviz source: phases as clusters, atomic blocks as boxes, asserts as diamonds."""
    lines = [f"digraph {_dot_quote(title)} {{", "  rankdir=TB;",
             '  node [fontname="Helvetica", fontsize=10];']
    by_phase: dict[str, list[PlanNode]] = {}
    for node in dag.nodes:
        by_phase.setdefault(node.phase, []).append(node)
    for index, (phase, nodes) in enumerate(by_phase.items()):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f"    label={_dot_quote(_block_title(dag, phase))}; style=rounded; "
                     f"color={'gray50' if phase not in dag.triggers else 'darkorange'};")
        for node in nodes:
            stmt = node.statement
            if isinstance(stmt, AtomicBlock):
                body = "\\l".join(op.replace("\\", "\\\\").replace('"', '\\"') for op in _ops(node))
                label = _label(node).replace('"', '\\"') + "\\n" + body + "\\l"
                lines.append(f'    {_dot_quote(node.id)} [shape=box, style="filled,bold", '
                             f'fillcolor="#e8f0fe", label="{label}"];')
            elif isinstance(stmt, Assert):
                lines.append(f"    {_dot_quote(node.id)} [shape=diamond, "
                             f"label={_dot_quote(_label(node))}];")
            else:
                lines.append(f"    {_dot_quote(node.id)} [shape=ellipse, "
                             f"label={_dot_quote(_label(node))}];")
        lines.append("  }")
    for a, b in dag.graph.edges:
        lines.append(f"  {_dot_quote(a)} -> {_dot_quote(b)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def graph_mermaid(dag: Dag) -> str:
    """Mermaid flowchart: phases as subgraphs, atomic blocks as boxes."""
    ids = {node.id: f"n{i}" for i, node in enumerate(dag.nodes)}
    lines = ["flowchart TD"]
    by_phase: dict[str, list[PlanNode]] = {}
    for node in dag.nodes:
        by_phase.setdefault(node.phase, []).append(node)
    for index, (phase, nodes) in enumerate(by_phase.items()):
        lines.append(f'  subgraph p{index}["{_mermaid_text(_block_title(dag, phase))}"]')
        for node in nodes:
            label = _mermaid_text(_label(node))
            if isinstance(node.statement, AtomicBlock):
                body = "<br/>".join(_mermaid_text(op) for op in _ops(node))
                lines.append(f'    {ids[node.id]}["{label}<br/>{body}"]')
            elif isinstance(node.statement, Assert):
                lines.append(f'    {ids[node.id]}{{"{label}"}}')
            else:
                lines.append(f'    {ids[node.id]}("{label}")')
        lines.append("  end")
    for a, b in dag.graph.edges:
        lines.append(f"  {ids[a]} --> {ids[b]}")
    return "\n".join(lines) + "\n"
