"""The DAG: node ids, unrolling, phase and venue ordering, limits."""

from __future__ import annotations

import shutil
import subprocess

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratplan.dsl import parse
from stratplan.dsl.strategies import plans
from stratplan.executors.market import default_market
from stratplan.interpreter.dag import DagError, build_dag, dry_run_nodes, phase_order
from stratplan.interpreter.evaluate import Scope
from stratplan.interpreter.export import graph_dot, graph_json, graph_mermaid


def _dag(text: str):
    plan = parse(text).plan
    assert plan is not None
    return build_dag(plan, Scope({x.name: x for x in plan.lets}, {}, default_market()))


def test_node_ids_follow_the_language():
    dag = _dag("plan p\nphase entry {\n  wrap 1 ETH\n  atomic lever { wrap 1 ETH\n unwrap 1 WETH }\n"
               "  repeat 3 as i {\n    wrap 1 ETH\n    repeat 2 { unwrap 1 WETH }\n  }\n"
               "  assert 1 < 2\n}\n")
    ids = [n.id for n in dag.nodes]
    assert ids[:2] == ["entry/0", "entry/lever"]
    assert ids[2:8] == ["entry/2.0#0", "entry/2.1.0#0.0", "entry/2.1.0#0.1",
                        "entry/2.0#1", "entry/2.1.0#1.0", "entry/2.1.0#1.1"]
    assert ids[-1] == "entry/3"
    assert dag.nodes[1].op_id(1) == "entry/lever/1"
    assert len(ids) == 2 + 3 * 3 + 1


def test_loop_variable_is_bound_per_iteration():
    dag = _dag("plan p\nphase a {\n  repeat 3 as i { wrap i + 1 ETH }\n}\n")
    assert [n.loop["i"] for n in dag.nodes] == [0, 1, 2]


def test_shared_venues_keep_written_order_and_others_run_together():
    dag = _dag("plan p\nphase a {\n  spot buy 1 ETH/USDT on binance\n"
               "  spot buy 1 ETH/USDT on okx\n  spot sell 1 ETH/USDT on binance\n}\n")
    graph = dag.graph
    assert graph.has_edge("a/0", "a/2")
    assert not nx.has_path(graph, "a/0", "a/1") and not nx.has_path(graph, "a/1", "a/0")


def test_assert_is_a_barrier():
    dag = _dag("plan p\nphase a {\n  spot buy 1 ETH/USDT on binance\n"
               "  spot buy 1 ETH/USDT on okx\n  assert 1 < 2\n  spot buy 1 ETH/USDT on bybit\n}\n")
    graph = dag.graph
    assert graph.has_edge("a/0", "a/2") and graph.has_edge("a/1", "a/2")
    assert graph.has_edge("a/2", "a/3")


def test_phases_wait_for_after_or_the_previous_phase():
    dag = _dag("plan p\nphase a { spot buy 1 ETH/USDT on binance }\n"
               "phase b { spot buy 1 ETH/USDT on okx }\n"
               "phase c after a { spot buy 1 ETH/USDT on bybit }\n")
    graph = dag.graph
    assert graph.has_edge("a/0", "b/0")
    assert graph.has_edge("a/0", "c/0")
    assert not nx.has_path(graph, "b/0", "c/0")


def test_empty_phase_passes_its_dependencies_on():
    dag = _dag("plan p\nphase a { wrap 1 ETH }\nphase b { }\nphase c { unwrap 1 WETH }\n")
    assert nx.has_path(dag.graph, "a/0", "c/0")


def test_phase_order_is_topological_with_written_order_breaking_ties():
    plan = parse("plan p\nphase a { wrap 1 ETH }\nphase d after c { wrap 1 ETH }\n"
                 "phase c after a { wrap 1 ETH }\nphase b after a { wrap 1 ETH }\n").plan
    assert [p.name for p in phase_order(plan)] == ["a", "c", "d", "b"]


def test_phase_cycle_cannot_be_ordered():
    plan = parse("plan p\nphase x after z { wrap 1 ETH }\nphase z after x { wrap 1 ETH }\n").plan
    with pytest.raises(DagError):
        phase_order(plan)


def test_limits_are_enforced_before_unrolling():
    with pytest.raises(DagError):
        _dag("plan p\nphase a {\n  repeat 10_000 { repeat 10_000 { wrap 1 ETH } }\n}\n")


def test_dag_is_acyclic_for_examples():
    from tests.conftest import example_plans
    for path in example_plans():
        dag = _dag(path.read_text())
        assert nx.is_directed_acyclic_graph(dag.graph)
        assert len(dag.graph) == len(dag.nodes)


def test_waves_group_nodes_by_longest_chain_of_predecessors():
    dag = _dag("plan p\nphase a {\n  spot buy 1 ETH/USDT on binance\n"
               "  spot buy 1 ETH/USDT on okx\n  spot sell 1 ETH/USDT on binance\n"
               "  assert 1 < 2\n  spot buy 1 ETH/USDT on bybit\n}\n")
    ids = [[dag.nodes[i].id for i in wave] for wave in dag.waves]
    assert ids == [["a/0", "a/1"], ["a/2"], ["a/3"], ["a/4"]]


def test_waves_respect_every_dependency_for_examples():
    from tests.conftest import EXAMPLES
    for path in sorted(EXAMPLES.glob("*.plan")):
        dag = _dag(path.read_text())
        wave_of = {i: n for n, wave in enumerate(dag.waves) for i in wave}
        assert sorted(wave_of) == list(range(len(dag.nodes)))
        for index, waits in enumerate(dag.waits):
            assert all(wave_of[pred] < wave_of[index] for pred in waits), path.name
            if waits:  # the longest chain: one step after its latest predecessor
                assert wave_of[index] == max(wave_of[p] for p in waits) + 1


def test_preds_and_successors_mirror_the_integer_lists():
    dag = _dag("plan p\nphase a {\n  spot buy 1 ETH/USDT on binance\n"
               "  spot buy 1 ETH/USDT on okx\n  assert 1 < 2\n}\nphase b { wrap 1 ETH }\n")
    assert dag.preds == {"a/0": [], "a/1": [], "a/2": ["a/0", "a/1"], "b/0": ["a/2"]}
    assert dag.successors() == {"a/0": ["a/2"], "a/1": ["a/2"], "a/2": ["b/0"], "b/0": []}


@given(plans())
def test_property_dry_run_nodes_are_the_dag_nodes_in_order(plan):
    scope = Scope({x.name: x for x in plan.lets}, {}, default_market())
    try:
        dag = build_dag(plan, scope)
    except DagError:
        with pytest.raises(DagError):
            dry_run_nodes(plan, scope)
        return
    lazy = list(dry_run_nodes(plan, scope))
    assert [(n.id, n.order, n.loop) for n in lazy] == [(n.id, n.order, n.loop) for n in dag.nodes]
    assert all(a.statement is b.statement for a, b in zip(lazy, dag.nodes, strict=True))


# --- drawings (stratplan graph) -------------------------------------------------------------


def _drawn(text: str, fmt: str = "mermaid") -> str:
    plan = parse(text).plan
    assert plan is not None
    scope = Scope({x.name: x for x in plan.lets}, {}, default_market())
    dag = build_dag(plan, scope)
    return graph_mermaid(dag, scope) if fmt == "mermaid" else graph_dot(dag, plan.name, scope)


REPEAT_600 = """plan big
holdings { wallet: 1_000_000 USDT, 10 ETH }
let chunk = 100
phase funding {
  repeat 600 as i {
    transfer chunk USDT from wallet to binance
    transfer i + 1 USDT from wallet to okx
  }
  assert balance(binance, USDT) >= chunk * 600
}
"""


def test_a_repeat_is_drawn_once_with_its_count():
    mermaid = _drawn(REPEAT_600)
    edges = [line for line in mermaid.splitlines() if "-->" in line]
    assert len(edges) < 500  # Mermaid's limit; unrolled, the DAG has 1,800 edges
    assert edges == ["  n0 --> n1", "  n0 --> n2", "  n1 --> n2"]
    assert '    subgraph r0["repeat 600 as i"]' in mermaid
    assert mermaid.count("transfer chunk USDT") == 1
    dot = _drawn(REPEAT_600, "dot")
    assert 'label="repeat 600 as i"' in dot and dot.count("->") == 3


def test_labels_show_values_beside_names():
    mermaid = _drawn(REPEAT_600)
    assert "transfer chunk USDT from wallet to binance<br/>(chunk = 100)" in mermaid
    assert "transfer i + 1 USDT from wallet to okx<br/>(i + 1 = 1 … 600)" in mermaid
    assert "assert balance(binance, USDT) #gt;= chunk * 600<br/>(chunk = 100)" in mermaid


def test_nested_repeats_atomic_blocks_and_neighbouring_repeats():
    text = """plan n
holdings { wallet: 100 ETH }
phase p {
  repeat 3 {
    repeat 4 { wrap 0.1 ETH }
    atomic back { unwrap 0.4 WETH }
  }
  repeat 2 { atomic again { wrap 1 ETH } }
  repeat 5 as k { unwrap 0.1 WETH }
}
"""
    mermaid = _drawn(text)
    assert mermaid.count('subgraph r') == 3
    assert '["repeat 3"]' in mermaid and '["repeat 2"]' in mermaid
    assert '["repeat 5 as k"]' in mermaid
    assert "wrap 0.1 ETH<br/>12 passes" in mermaid  # 3 * 4, inside the repeat 3 box
    assert mermaid.count("atomic back") == 1 and mermaid.count("atomic again") == 1
    assert len([line for line in mermaid.splitlines() if "-->" in line]) < 10


def test_graph_json_keeps_every_node_with_values():
    plan = parse(REPEAT_600).plan
    assert plan is not None
    scope = Scope({x.name: x for x in plan.lets}, {}, default_market())
    data = graph_json(build_dag(plan, scope), scope)
    assert len(data["nodes"]) == 1201
    labels = {node["id"]: node["label"] for node in data["nodes"]}
    assert labels["funding/0.1#41"] == "transfer i + 1 USDT from wallet to okx (i + 1 = 42)"


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_a_folded_repeat_renders_with_graphviz():
    run = subprocess.run(["dot", "-Tsvg"], input=_drawn(REPEAT_600, "dot"), text=True,
                         capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "repeat 600 as i" in run.stdout


# --- issue 17: the phase order without networkx is networkx's order ----------------------

_PHASE_NAMES = st.sampled_from(["a", "b", "c", "d", "e", "f"])


@given(st.lists(st.tuples(_PHASE_NAMES, st.lists(_PHASE_NAMES, max_size=3)), min_size=1,
                max_size=8))
@settings(max_examples=300, deadline=None)
def test_phase_order_in_plain_python_is_networkx_lexicographical_sort(phases):
    """Duplicate names, unknown and repeated `after` names, self-loops and cycles included."""
    from stratplan.interpreter.dag import phase_graph, phase_names_in_order
    text = "plan p\n" + "".join(
        f"phase {name}{' after ' + ', '.join(after) if after else ''} {{ wrap 1 ETH }}\n"
        for name, after in phases)
    plan = parse(text).plan
    assert plan is not None
    index = {p.name: i for i, p in enumerate(plan.phases)}
    try:
        expected = list(nx.lexicographical_topological_sort(phase_graph(plan),
                                                            key=lambda n: index[n]))
    except nx.NetworkXUnfeasible:
        expected = None
    assert phase_names_in_order(plan) == expected
    assert (expected is None) == (not nx.is_directed_acyclic_graph(phase_graph(plan)))


@given(st.lists(st.integers(0, 999), min_size=1, max_size=40, unique=True)
       .map(lambda keys: [f"n{k}" for k in keys]))
@settings(max_examples=100, deadline=None)
def test_phase_order_without_after_is_the_written_order_as_networkx_finds(names):
    """The shortcut for unique names and no `after` (issue 17) agrees with networkx."""
    from stratplan.interpreter.dag import phase_graph, phase_names_in_order
    plan = parse("plan p\n" + "".join(f"phase {name} {{ wrap 1 ETH }}\n" for name in names)).plan
    assert plan is not None
    index = {p.name: i for i, p in enumerate(plan.phases)}
    expected = list(nx.lexicographical_topological_sort(phase_graph(plan),
                                                        key=lambda n: index[n]))
    assert phase_names_in_order(plan) == expected == names
