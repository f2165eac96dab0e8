"""Running a whole plan: build the DAG, dispatch it concurrently, and report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.models import Plan
from stratplan.dsl.performance import paused_gc
from stratplan.executors.accounts import portfolio_value
from stratplan.executors.market import Market
from stratplan.executors.protocol import Executor
from stratplan.executors.registry import discover
from stratplan.interpreter.dag import Dag, build_dag
from stratplan.interpreter.engine import Engine, Outcome, run_sync
from stratplan.interpreter.report import build_report


@dataclass
class RunResult:
    """The outcome of `stratplan run`: the report and the engine that produced it."""

    report: dict[str, Any]
    outcome: Outcome
    engine: Engine
    dag: Dag


def run_plan(plan: Plan, market: Market, executors: Mapping[str, Executor] | None = None,
             *, concurrent: bool = True, dag: Dag | None = None) -> RunResult:
    """Execute a statically sound plan against simulated venues (DagError if it is not).

    `dag` may be passed when the caller already built the plan's DAG for this market."""
    with paused_gc(), arithmetic():
        engine = Engine(plan, market, executors if executors is not None else discover())
        if dag is None:
            dag = build_dag(plan, engine.scope)
        start = portfolio_value(engine.monitor, market)
        if concurrent:
            outcome = run_sync(engine.run_concurrent(dag))
        else:
            outcome = run_sync(engine.run_sequential(dag.nodes))
        report = build_report(plan, dag, outcome, engine.monitor, market, start)
    return RunResult(report, outcome, engine, dag)
