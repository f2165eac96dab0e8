"""The unrolled instruction list (export) and drawings of the DAG (graph)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from stratplan.dsl.formatter import format_expr, format_instruction
from stratplan.dsl.models import (
    INSTRUCTION_KINDS,
    AllAmount,
    Assert,
    AtomicBlock,
    MaxAmount,
    NameRef,
)
from stratplan.interpreter.dag import Dag, PlanNode
from stratplan.interpreter.evaluate import EvalError, Scope, constant, names_used
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


# --- drawings of the DAG (graph) ---------------------------------------------------------------
#
# A drawing shows each statement once: the passes of a `repeat` share one box, inside a
# box for the repeat that says its count (`repeat 600` is one node, not 600 nodes and 599
# edges, which Mermaid refuses past 500). Edges between passes of one repeat are what the
# repeat box stands for; the others are drawn once. Labels show the values of the
# expressions they use (`amount = 40000`, `i + 1 = 1 … 600`) as well as the names.


@dataclass
class _Drawn:
    """One drawn box: a statement and every pass of it."""

    key: int
    phase: str
    first: PlanNode
    last: PlanNode
    passes: int = 1
    repeat: int | None = None  # the (outermost) repeat box it sits in


@dataclass
class _RepeatBox:
    """A repeat as drawn: its passes, loop variable and statements."""

    phase: str
    count: int = 0
    var: str | None = None
    key: str | None = None
    last_top: int = 0
    members: list[int] = field(default_factory=list)


@dataclass
class _Drawing:
    """The boxes in order, the repeat boxes and the edges between boxes."""

    boxes: list[_Drawn]
    repeats: list[_RepeatBox]
    edges: list[tuple[int, int]]


def _repeat_key(node_id: str) -> str | None:
    """The top repeat's position in a node id (`p/2.1#3` -> `2`); None for a block's id."""
    path = node_id.split("#", 1)[0].split("/", 1)[1]
    return path.split(".", 1)[0] if "." in path else None


def _drawing(dag: Dag) -> _Drawing:
    boxes: list[_Drawn] = []
    by_statement: dict[tuple[str, int], int] = {}
    box_of: list[int] = []
    repeats: list[_RepeatBox] = []
    current: _RepeatBox | None = None
    for node in dag.nodes:
        group = (node.phase, id(node.statement))
        index = by_statement.get(group)
        if index is None:
            index = by_statement[group] = len(boxes)
            boxes.append(_Drawn(len(boxes), node.phase, node, node))
        else:
            boxes[index].passes += 1
            boxes[index].last = node
        box_of.append(index)
        iteration = node.iteration
        if iteration is None:
            current = None
            continue
        top = int(iteration.split(".", 1)[0])
        key = _repeat_key(node.id)
        if current is None or current.phase != node.phase or top < current.last_top or (
                key is not None and current.key is not None and key != current.key):
            current = _RepeatBox(node.phase)
            repeats.append(current)
        current.key = current.key or key
        current.last_top = top
        current.count = max(current.count, top + 1)
        if "." not in iteration and len(node.loop) == 1:
            current.var = next(iter(node.loop))
        if boxes[index].repeat is None:
            boxes[index].repeat = len(repeats) - 1
            current.members.append(index)
    edges: dict[tuple[int, int], None] = {}
    for index, waits in enumerate(dag.waits):
        target = box_of[index]
        for pred in waits:
            source = box_of[pred]
            # A later statement feeding an earlier one is the next pass of a repeat.
            if source < target:
                edges[(source, target)] = None
    return _Drawing(boxes, repeats, list(edges))


def _value_text(value: Decimal | None) -> str | None:
    return None if value is None or not value.is_finite() else dec(value)


def _evaluated(expr: Any, scope: Scope | None, first: PlanNode, last: PlanNode) -> str | None:
    """`= value` (or `= first … last` across passes) for a constant expression."""
    if scope is None:
        return None
    try:
        start = _value_text(constant(expr, scope.with_loop(first.loop)))
        end = _value_text(constant(expr, scope.with_loop(last.loop)))
    except EvalError:
        return None
    if start is None or end is None:
        return None
    return f"= {start}" if start == end else f"= {start} … {end}"


def _expressions(stmt: Any) -> list[Any]:
    """The expressions a statement's label shows: amounts, limits and slippages; every
    name inside a condition."""
    if isinstance(stmt, AtomicBlock):
        return [e for op in stmt.body if op.kind in INSTRUCTION_KINDS for e in _expressions(op)]
    if isinstance(stmt, Assert):
        return [NameRef(name=name, span=stmt.span) for name in sorted(names_used(stmt.condition))]
    return [getattr(stmt, name, None) for name in ("amount", "limit", "slippage")]


def _notes(box: _Drawn, scope: Scope | None) -> list[str]:
    notes: list[str] = []
    for expr in _expressions(box.first.statement):
        if expr is None or expr.kind in ("number", "all", "max"):
            continue
        value = _evaluated(expr, scope, box.first, box.last)
        note = f"{format_expr(expr)} {value}" if value else None
        if note and note not in notes:
            notes.append(note)
    return notes


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


def _lines(box: _Drawn, drawing: _Drawing, scope: Scope | None) -> list[str]:
    """A box's label lines: the statement, its operations, values, and passes."""
    lines = [_label(box.first), *_ops(box.first)]
    notes = _notes(box, scope)
    if notes:
        lines.append("(" + "; ".join(notes) + ")")
    repeat = drawing.repeats[box.repeat] if box.repeat is not None else None
    if box.passes > 1 and (repeat is None or box.passes != repeat.count):
        lines.append(f"{box.passes:,} passes")
    return lines


def _repeat_title(repeat: _RepeatBox) -> str:
    var = f" as {repeat.var}" if repeat.var else ""
    return f"repeat {repeat.count:,}{var}"


def graph_json(dag: Dag, scope: Scope | None = None) -> dict[str, Any]:
    """Every node (with phase, kind, line, label and its values) and every edge: the
    unrolled DAG as data (the drawings fold repeats; this does not)."""
    nodes = []
    for n in dag.nodes:
        notes = _notes(_Drawn(0, n.phase, n, n), scope)
        label = _label(n) + (f" ({'; '.join(notes)})" if notes else "")
        nodes.append({"id": n.id, "phase": n.phase, "kind": n.statement.kind, "line": n.line,
                      "label": label, "operations": _ops(n)})
    blocks = list(dict.fromkeys(node.phase for node in dag.nodes))
    return {
        "phases": [name for name in blocks if name not in dag.triggers],
        "triggers": [{"name": name, "head": dag.triggers[name]} for name in blocks
                     if name in dag.triggers],
        "nodes": nodes,
        "edges": [[a, b] for a, b in dag.graph.edges],
    }


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_lines(lines: list[str], left: bool) -> str:
    escaped = [line.replace("\\", "\\\\").replace('"', '\\"') for line in lines]
    if left:
        return '"' + "\\n".join(escaped[:1]) + "\\n" + "\\l".join(escaped[1:]) + '\\l"'
    return '"' + "\\n".join(escaped) + '"'


def _layout(drawing: _Drawing) -> Iterator[tuple[str, Any]]:
    """The nesting both renderers draw, as events: ("phase", name), ("repeat", index),
    ("box", box), ("end repeat", None), ("end phase", None); each statement once, each
    repeat as one group holding its members."""
    for phase in dict.fromkeys(box.phase for box in drawing.boxes):
        yield "phase", phase
        drawn_repeats: set[int] = set()
        for box in drawing.boxes:
            if box.phase != phase:
                continue
            if box.repeat is None:
                yield "box", box
            elif box.repeat not in drawn_repeats:
                drawn_repeats.add(box.repeat)
                yield "repeat", box.repeat
                for member in drawing.repeats[box.repeat].members:
                    yield "box", drawing.boxes[member]
                yield "end repeat", None
        yield "end phase", None


# How each kind of box is drawn: an atomic block as a filled box, an assert as a diamond,
# any other statement as an ellipse (dot) or a rounded box (mermaid).
_DOT_SHAPES = {"atomic": 'shape=box, style="filled,bold", fillcolor="#e8f0fe"',
               "assert": "shape=diamond", "step": "shape=ellipse"}
_MERMAID_SHAPES = {"atomic": ("[", "]"), "assert": ("{", "}"), "step": ("(", ")")}


def _box_kind(box: _Drawn) -> str:
    statement = box.first.statement
    if isinstance(statement, AtomicBlock):
        return "atomic"
    return "assert" if isinstance(statement, Assert) else "step"


def graph_dot(dag: Dag, title: str, scope: Scope | None = None) -> str:
    """Graphviz source: phases and repeats as clusters, atomic blocks as boxes, asserts as
    diamonds; each statement once."""
    drawing = _drawing(dag)
    lines = [f"digraph {_dot_quote(title)} {{", "  rankdir=TB;",
             '  node [fontname="Helvetica", fontsize=10];']

    def draw(box: _Drawn, indent: str) -> None:
        kind = _box_kind(box)
        text = _dot_lines(_lines(box, drawing, scope), kind == "atomic")
        name = _dot_quote(box.first.id.split("#", 1)[0])
        lines.append(f"{indent}{name} [{_DOT_SHAPES[kind]}, label={text}];")

    clusters = 0
    for event, item in _layout(drawing):
        if event == "phase":
            lines.append(f"  subgraph cluster_{clusters} {{")
            clusters += 1
            lines.append(f"    label={_dot_quote(_block_title(dag, item))}; style=rounded; "
                         f"color={'gray50' if item not in dag.triggers else 'darkorange'};")
        elif event == "repeat":
            lines.append(f"    subgraph cluster_{clusters} {{")
            clusters += 1
            lines.append(f"      label={_dot_quote(_repeat_title(drawing.repeats[item]))}; "
                         "style=dashed; color=gray40;")
        elif event == "box":
            draw(item, "      " if item.repeat is not None else "    ")
        else:
            lines.append("    }" if event == "end repeat" else "  }")
    for a, b in drawing.edges:
        source = _dot_quote(drawing.boxes[a].first.id.split("#", 1)[0])
        target = _dot_quote(drawing.boxes[b].first.id.split("#", 1)[0])
        lines.append(f"  {source} -> {target};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;") \
        .replace(">", "#gt;")


def graph_mermaid(dag: Dag, scope: Scope | None = None) -> str:
    """Mermaid flowchart: phases and repeats as subgraphs, atomic blocks as boxes; each
    statement once, so the edge count stays that of the plan as written."""
    drawing = _drawing(dag)
    lines = ["flowchart TD"]

    def draw(box: _Drawn, indent: str) -> None:
        label = "<br/>".join(_mermaid_text(line) for line in _lines(box, drawing, scope))
        opening, closing = _MERMAID_SHAPES[_box_kind(box)]
        lines.append(f'{indent}n{box.key}{opening}"{label}"{closing}')

    phases = 0
    for event, item in _layout(drawing):
        if event == "phase":
            lines.append(f'  subgraph p{phases}["{_mermaid_text(_block_title(dag, item))}"]')
            phases += 1
        elif event == "repeat":
            lines.append(f'    subgraph r{item}["{_repeat_title(drawing.repeats[item])}"]')
        elif event == "box":
            draw(item, "      " if item.repeat is not None else "    ")
        else:
            lines.append("    end" if event == "end repeat" else "  end")
    for a, b in drawing.edges:
        lines.append(f"  n{a} --> n{b}")
    return "\n".join(lines) + "\n"
