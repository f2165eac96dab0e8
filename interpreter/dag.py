"""The instruction DAG: `repeat` unrolled, stable node ids, and the ordering rules.

A phase waits for the phases in its `after` list (or the phase written before it). Inside
a phase, statements that touch a common venue keep their written order; an assert (or an
expression reading every venue, like `exposure`) waits for everything before it and holds
back everything after it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from stratplan.dsl.formatter import format_expr
from stratplan.dsl.models import (
    INSTRUCTION_KINDS,
    AnyInstruction,
    Assert,
    AtomicBlock,
    CEXTradeInstruction,
    Phase,
    Plan,
    Repeat,
    SmartContractInstruction,
    Trigger,
    WalletTransferInstruction,
)
from stratplan.executors.ledger import WALLET
from stratplan.interpreter.evaluate import (
    PORTFOLIO_FUNCTIONS,
    VENUE_STATE_FUNCTIONS,
    Scope,
    calls,
    constant,
)

if TYPE_CHECKING:  # networkx is imported where a graph is built: lint never needs one
    import networkx as nx

MAX_REPEAT = 10_000
MAX_NODES = 1_000_000
EVERY_VENUE = "*"
NO_VENUES: frozenset[str] = frozenset()


class DagError(Exception):
    """The plan cannot be turned into a DAG (the static rules say why)."""


class PlanNode(NamedTuple):
    """One node: an instruction, an atomic block (one transaction) or an assert.

    A named tuple rather than a dataclass: a million-instruction plan makes a million of
    them, and tuples are the cheapest immutable record Python has.
    """

    id: str
    phase: str
    order: int
    statement: AnyInstruction | AtomicBlock | Assert
    loop: Mapping[str, Decimal] = {}
    venues: frozenset[str] = NO_VENUES

    @property
    def line(self) -> int:
        """The source line of the statement."""
        return self.statement.span.line

    @property
    def barrier(self) -> bool:
        """True when the node must see every earlier node of its phase done."""
        return isinstance(self.statement, Assert) or EVERY_VENUE in self.venues

    @property
    def iteration(self) -> str | None:
        """The repeat iteration(s) of the node, as in its id, or None outside repeats."""
        return iteration_of(self.id)

    def op_id(self, index: int) -> str:
        """The id of an operation inside this atomic block."""
        base, _, iteration = self.id.partition("#")
        return f"{base}/{index}" + (f"#{iteration}" if iteration else "")


def iteration_of(node_id: str) -> str | None:
    """The repeat iteration(s) in a node id (`entry/2.1#3.0` -> `3.0`), None outside repeats."""
    return node_id.split("#", 1)[1] if "#" in node_id else None


def repeat_count(repeat: Repeat, scope: Scope) -> int | None:
    """The repeat's count when it is a whole constant within limits, else None."""
    if repeat.count.kind == "number":
        value: Decimal | None = repeat.count.value
    else:
        try:
            value = constant(repeat.count, scope)
        except Exception:
            return None
    if value is None or value != value.to_integral_value() or not 1 <= value <= MAX_REPEAT:
        return None
    return int(value)


def unrolled_size(body: tuple[Any, ...], scope: Scope, cap: int = MAX_NODES) -> int | None:
    """Nodes the body unrolls to, computed without unrolling; None if a count is invalid."""
    total = 0
    for stmt in body:
        if isinstance(stmt, Repeat):
            count = repeat_count(stmt, scope)
            inner = unrolled_size(stmt.body, scope, cap)
            if count is None or inner is None:
                return None
            total += count * inner
        else:
            total += 1
        if total > cap:
            return total
    return total


def _expr_venues(exprs: list[Any]) -> set[str]:
    venues: set[str] = set()
    for expr in exprs:
        if expr is None:
            continue
        for call in calls(expr):
            if call.func in PORTFOLIO_FUNCTIONS:
                venues.add(EVERY_VENUE)
            elif call.func in VENUE_STATE_FUNCTIONS and call.args and call.args[0].kind == "name":
                venues.add(call.args[0].name)
    return venues


def instruction_venues(instr: AnyInstruction) -> set[str]:
    """Venues an instruction writes or reads (the wallet pays gas for on-chain ones)."""
    # `kind`, not isinstance: pydantic classes check instances through ABCMeta.
    kind = instr.kind
    if kind == "wallet_transfer":
        transfer = cast(WalletTransferInstruction, instr)
        venues = {transfer.source_venue, transfer.target_venue}
        exprs: list[Any] = [transfer.amount]
    elif kind == "cex_trade":
        trade = cast(CEXTradeInstruction, instr)
        venues = {trade.venue}
        exprs = [trade.amount, trade.limit]
    else:
        contract = cast(SmartContractInstruction, instr)
        venues = {WALLET, contract.venue} if contract.venue else {WALLET}
        exprs = [contract.amount, contract.slippage]
    extra = _expr_venues(exprs)
    return venues | extra if extra else venues


def statement_venues(stmt: AnyInstruction | AtomicBlock | Assert) -> frozenset[str]:
    """Venues a DAG node touches."""
    kind = stmt.kind
    if kind == "assert":
        return frozenset({EVERY_VENUE})
    if kind == "atomic":
        block = cast(AtomicBlock, stmt)
        venues = {WALLET} | ({block.via} if block.via else set())
        for op in block.body:
            if op.kind in INSTRUCTION_KINDS:
                venues |= instruction_venues(cast(AnyInstruction, op))
        return frozenset(venues)
    return frozenset(instruction_venues(cast(AnyInstruction, stmt)))


def phase_dependencies(plan: Plan) -> dict[str, list[str]]:
    """Phase -> the phases it waits for (unknown names are left out)."""
    names = {p.name for p in plan.phases}
    deps: dict[str, list[str]] = {}
    previous: str | None = None
    for phase in plan.phases:
        if phase.after:
            deps[phase.name] = [a for a in phase.after if a in names]
        elif phase.name not in deps:
            # A duplicate name (SP105) must not make a phase wait for itself.
            deps[phase.name] = [previous] if previous and previous != phase.name else []
        previous = phase.name
    return deps


def phase_graph(plan: Plan) -> nx.DiGraph:
    """Phases as nodes, an edge from each phase to the phases that wait for it."""
    import networkx as nx
    graph = nx.DiGraph()
    for index, phase in enumerate(plan.phases):
        if phase.name not in graph:
            graph.add_node(phase.name, index=index)
    for name, deps in phase_dependencies(plan).items():
        for dep in deps:
            graph.add_edge(dep, name)
    return graph


def phase_names_in_order(plan: Plan) -> list[str] | None:
    """The phase names in dependency order, written order breaking ties, or None when the
    dependencies loop: networkx's `lexicographical_topological_sort` of `phase_graph` keyed
    by the (last) written position, in plain Python so that linting loads no networkx
    (issue 17; tests compare the two on random dependency graphs)."""
    index = {p.name: i for i, p in enumerate(plan.phases)}
    if len(index) == len(plan.phases) and not any(p.after for p in plan.phases):
        # Unique names, no `after`: each phase waits for the one before it, so the order
        # is the written one. The common case, answered without the graph's dictionaries
        # (a few hundred bytes a phase at the peak of lint: issue 17).
        return list(index)
    waiting_for = dict.fromkeys(index, 0)
    successors: dict[str, dict[str, None]] = {name: {} for name in index}
    for name, deps in phase_dependencies(plan).items():
        for dep in deps:
            if name not in successors[dep]:  # a graph edge counts once
                successors[dep][name] = None
                waiting_for[name] += 1
    ready = [(index[name], name) for name, count in waiting_for.items() if not count]
    heapq.heapify(ready)
    names: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        names.append(name)
        for after in successors[name]:
            waiting_for[after] -= 1
            if not waiting_for[after]:
                heapq.heappush(ready, (index[after], after))
    return names if len(names) == len(index) else None


def phase_order(plan: Plan) -> list[Phase]:
    """Phases in dependency order, written order breaking ties; DagError on a cycle."""
    names = phase_names_in_order(plan)
    if names is None:
        raise DagError("phase dependencies form a cycle")
    by_name = {phase.name: phase for phase in plan.phases}
    return [by_name[name] for name in names]


def _stem(phase_name: str, prefix: str, index: int, stmt: Any) -> str:
    """A node id without its iterations: `PHASE/PATH` (`PHASE/BLOCK` for atomic blocks)."""
    return f"{phase_name}/{stmt.name}" if isinstance(stmt, AtomicBlock) else \
        f"{phase_name}/{prefix}{index}"


def _unroll(phase_name: str, body: tuple[Any, ...], prefix: str, suffix: str,
            scope: Scope, out: list[tuple[str, Any, Mapping[str, Decimal]]]) -> None:
    """Append (node id, statement, loop bindings) for every node of the body to `out`.

    Ids are `PHASE/INDEX` (or `PHASE/BLOCK`) plus `#I.J` for the repeat iterations; a body
    without nested repeats is unrolled in place, as most repeat bodies are.
    """
    # Nesting is bounded by the parser (MAX_BLOCK_NESTING), so recursion depth is too.
    loop = scope.loop
    append = out.append
    for index, stmt in enumerate(body):
        if not isinstance(stmt, Repeat):
            append((_stem(phase_name, prefix, index, stmt) + suffix, stmt, loop))
            continue
        count = repeat_count(stmt, scope)
        if count is None:
            raise DagError(f"invalid repeat count at line {stmt.span.line}")
        path = f"{prefix}{index}."
        flat = not any(isinstance(inner, Repeat) for inner in stmt.body)
        stems = [_stem(phase_name, path, i, inner) for i, inner in enumerate(stmt.body)] \
            if flat else []
        for k in range(count):
            # Without a loop variable every pass shares the enclosing bindings.
            inner_scope = scope.with_loop({**loop, stmt.var: Decimal(k)}) if stmt.var else scope
            inner_suffix = f"{suffix}.{k}" if suffix else f"#{k}"
            if flat:
                inner_loop = inner_scope.loop
                for stem, inner in zip(stems, stmt.body, strict=True):
                    append((stem + inner_suffix, inner, inner_loop))
            else:
                _unroll(phase_name, stmt.body, path, inner_suffix, inner_scope, out)


@dataclass
class Dag:
    """The plan's nodes in dry-run order and, for each, the nodes it waits for.

    `waits[i]` holds the positions (in `nodes`, ascending) of the nodes that node `i` waits
    for; node positions are a topological order. `waves` groups the positions by when they
    can start: a wave holds the nodes whose longest chain of predecessors has the same
    length, in node order, so running the waves one after another is Kahn's algorithm taken
    a whole ready set at a time. `preds` gives the dependencies by node id and `graph` as a
    networkx DiGraph, both built on first use: the run and the dry run only need the integer
    lists, which cost a fraction of the time and memory.
    """

    nodes: list[PlanNode]
    waits: list[tuple[int, ...]]
    waves: list[list[int]]
    # v2, `build_dag(..., triggers=True)` (graph, export): trigger name -> its head
    # (`every 1w`, `when health(aave) < 1.1 cooldown 1d`); its nodes' `phase` is that name.
    triggers: dict[str, str] = field(default_factory=dict)
    _preds: dict[str, list[str]] | None = field(default=None, repr=False)
    _graph: nx.DiGraph | None = field(default=None, repr=False)

    @property
    def preds(self) -> dict[str, list[str]]:
        """Node id -> the ids of the nodes it waits for, in node order."""
        if self._preds is None:
            ids = [node.id for node in self.nodes]
            self._preds = {ids[i]: [ids[j] for j in waits] for i, waits in enumerate(self.waits)}
        return self._preds

    @property
    def graph(self) -> nx.DiGraph:
        """The DAG as a networkx DiGraph; every node carries its PlanNode as `node`."""
        if self._graph is None:
            import networkx as nx
            graph = nx.DiGraph()
            graph.add_nodes_from((node.id, {"node": node}) for node in self.nodes)
            graph.add_edges_from((pred, node_id) for node_id, preds in self.preds.items()
                                 for pred in preds)
            self._graph = graph
        return self._graph

    def by_id(self) -> dict[str, PlanNode]:
        """Node id -> node."""
        return {node.id: node for node in self.nodes}

    def __repr__(self) -> str:
        # asyncio formats its coroutines' arguments; a full repr of a large DAG is costly.
        return f"Dag({len(self.nodes)} nodes)"

    def successors(self) -> dict[str, list[str]]:
        """Node id -> the ids of the nodes waiting for it."""
        ids = [node.id for node in self.nodes]
        result: dict[str, list[str]] = {node_id: [] for node_id in ids}
        for index, waits in enumerate(self.waits):
            for pred in waits:
                result[ids[pred]].append(ids[index])
        return result


def _checked_phases(plan: Plan, scope: Scope, triggers: bool = False) -> list[Phase]:
    """Phases in order, after checking the plan can be unrolled; DagError if not."""
    phases = phase_order(plan)
    bodies = [*plan.phases, *(t.as_phase() for t in plan.triggers)] if triggers \
        else plan.phases
    size = unrolled_size(tuple(s for p in bodies for s in p.body), scope)
    if size is None or size > MAX_NODES:
        raise DagError("the plan exceeds the repeat or size limits")
    return phases


def dry_run_nodes(plan: Plan, scope: Scope) -> Iterator[PlanNode]:
    """The DAG's nodes in dry-run order, one at a time, without their dependencies or
    venues (a sequential dry run needs neither); DagError at once, as `build_dag`."""
    phases = _checked_phases(plan, scope)

    def nodes() -> Iterator[PlanNode]:
        index, new_node = 0, tuple.__new__
        for phase in phases:
            unrolled: list[tuple[str, Any, Mapping[str, Decimal]]] = []
            _unroll(phase.name, phase.body, "", "", scope, unrolled)
            name = phase.name
            for node_id, stmt, loop in unrolled:
                # tuple.__new__ skips the named tuple's Python-level __new__ (one per node).
                yield new_node(PlanNode, (node_id, name, index, stmt, loop, NO_VENUES))
                index += 1

    return nodes()


def trigger_head(trigger: Trigger) -> str:
    """`every 1w` or `when C [cooldown D]`, as written by the formatter."""
    if trigger.every is not None:
        return f"every {trigger.every.text}"
    head = f"when {format_expr(trigger.when)}" if trigger.when is not None else "when"
    return head + (f" cooldown {trigger.cooldown.text}" if trigger.cooldown is not None else "")


def build_dag(plan: Plan, scope: Scope, triggers: bool = False) -> Dag:
    """Unroll the plan and connect its nodes; DagError when the static rules would object.

    With `triggers` (graph and export, never a run), each trigger's body follows the
    phases as a block of its own that waits for nothing: the DAG one firing runs."""
    phases = _checked_phases(plan, scope, triggers)
    heads = {t.name: trigger_head(t) for t in plan.triggers} if triggers else {}
    ordered = len(phases)
    if triggers:
        phases = [*phases, *(t.as_phase() for t in plan.triggers)]
    nodes: list[PlanNode] = []
    waits: list[tuple[int, ...]] = []
    # The wave of each node (its longest chain of predecessors), found as the nodes come.
    depth: list[int] = []
    waves: list[list[int]] = []
    tails_of: dict[str, tuple[int, ...]] = {}
    deps = phase_dependencies(plan)
    # Per statement (repeats share their body's): its venues and whether it is a barrier.
    shape_of: dict[int, tuple[frozenset[str], bool]] = {}
    append_node, append_waits, new_node = nodes.append, waits.append, tuple.__new__
    append_depth = depth.append
    for number, phase in enumerate(phases):
        entry = () if number >= ordered else \
            tuple(sorted({i for dep in deps[phase.name] for i in tails_of.get(dep, ())}))
        entry_level = max((depth[i] for i in entry), default=-1) + 1
        last_by_venue: dict[str, int] = {}
        barrier: int | None = None
        unrolled: list[tuple[str, Any, Mapping[str, Decimal]]] = []
        _unroll(phase.name, phase.body, "", "", scope, unrolled)
        name = phase.name
        for node_id, stmt, loop in unrolled:
            shape = shape_of.get(id(stmt))
            if shape is None:
                venues = statement_venues(stmt)
                shape = shape_of[id(stmt)] = (venues, isinstance(stmt, Assert)
                                              or EVERY_VENUE in venues)
            venues, is_barrier = shape
            index = len(nodes)
            # tuple.__new__ skips the named tuple's Python-level __new__ (one per node).
            append_node(new_node(PlanNode, (node_id, name, index, stmt, loop, venues)))
            preds: set[int] = set()
            if is_barrier:
                preds.update(last_by_venue.values())
                last_by_venue = {}
                if not preds and barrier is not None:
                    preds.add(barrier)
                barrier = index
            else:
                for venue in venues:
                    last = last_by_venue.get(venue)
                    if last is not None:
                        preds.add(last)
                    last_by_venue[venue] = index
                if not preds and barrier is not None:
                    preds.add(barrier)
            if not preds:
                append_waits(entry)
                level = entry_level
            elif len(preds) == 1:
                (pred,) = preds
                append_waits((pred,))
                level = depth[pred] + 1
            else:
                append_waits(tuple(sorted(preds)))
                level = max(depth[pred] for pred in preds) + 1
            append_depth(level)
            if level == len(waves):
                waves.append([index])
            else:
                waves[level].append(index)
        tails = tuple(sorted(set(last_by_venue.values()))) or (
            (barrier,) if barrier is not None else ())
        tails_of[phase.name] = tails if tails else entry
    return Dag(nodes, waits, waves, triggers=heads)
