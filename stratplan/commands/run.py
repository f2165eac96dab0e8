"""`stratplan run FILE`: run a sound plan against the simulated venues and print the report
(text tables or JSON); with `--journal`, journaled so that `stratplan resume` can finish it
after a crash (docs/journal.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratplan.commands.common import (
    MARKET_HELP,
    PATH_HELP,
    UsageError,
    add_command,
    add_report_options,
    error,
    out,
    refuse_steps_with_json,
    series_option,
    set_option,
    sound_plan,
)

if TYPE_CHECKING:
    from stratplan.executors.market import Market
    from stratplan.interpreter.dag import Dag


def register(sub: Any) -> None:
    """Add the `run` subcommand to the CLI's subparsers."""
    run = add_command(sub, "run", "run a plan against simulated venues",
                      "Run a sound plan against the simulated venues and print the report.")
    run.add_argument("path", metavar="FILE", help=PATH_HELP)
    add_report_options(run)
    run.add_argument("--market", metavar="FILE", help=MARKET_HELP)
    run.add_argument("--series", metavar="CSV", help="run the phases at the first time of "
                     "this series (default: the plan's `use series`, else the market)")
    run.add_argument("--journal", metavar="FILE",
                     help="write an append-only journal (SQLite) so that `stratplan resume "
                          "FILE` can finish the run after a crash (default: no journal)")
    set_option(run)
    from stratplan.commands.evm import add_executor_options
    add_executor_options(run)
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    """Execute a plan against simulated venues and report."""
    from stratplan.dsl.performance import paused_gc
    # The whole command, not only the execution: the rules and the DAG of a large plan
    # build millions of acyclic objects, and generational collections rescanning them cost
    # as much as the run itself (issue 17). Reference counting still frees everything.
    with paused_gc():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from stratplan.interpreter.dag import DagError
    from stratplan.interpreter.run import run_plan
    from stratplan.render.run import render_run
    from stratplan.render.text import dumps
    refuse_steps_with_json(args)
    plan, market, dag, checked = sound_plan(args.path, args.market, lets=args.set)
    market, dag = _series_start(args, plan, market, dag)  # journaled too: the same prices
    if args.executor == "evm":  # every on-chain node as a transaction on a local chain
        from stratplan.commands.evm import run_evm
        return run_evm(args, plan, market, dag)
    if args.journal is not None:
        # The journal reads the plan's files into its header and runs what the header
        # says, so that a resume runs the same (docs/journal.md).
        from stratplan.interpreter.journal import run_journaled
        from stratplan.interpreter.sweep.params import collect
        return report_journaled(args, args.path, lambda: run_journaled(
            checked.source, args.journal, plan_path=args.path, market_path=args.market,
            series_path=args.series, sets=collect(args.set or ())))
    try:
        result = run_plan(plan, market, dag=dag)
    except DagError as exc:
        raise UsageError(f"{args.path}: {exc}") from None
    if args.format == "json":
        sys.stdout.write(dumps(result.report))
    else:
        render_run(result.report, out(), args.path, args.steps)
    if plan.triggers:  # v2: `run` is one instant; the triggers live over time
        count = len(plan.triggers)
        note = (f"{count} trigger{'s' if count > 1 else ''} not run: `stratplan backtest` "
                "runs the phases and then the triggers over a series")
        if args.format == "json":
            error(note)
        else:
            out().print(note, markup=False, highlight=False)
    return 0 if result.report["status"] == "ok" else 1


def _series_start(args: argparse.Namespace, plan: Any, market: Market,
                  dag: Dag) -> tuple[Market, Dag]:
    """With `--series` or the plan's `use series` (v2), the phases run at the series'
    first time: its prices and rates; otherwise the market as it is."""
    series = series_option(args.series)
    if series is None and plan.series is not None:
        from stratplan.interpreter.lint.with_series import resolve_series
        series, problem = resolve_series(plan, Path(args.path).parent)
        if problem is not None:
            raise UsageError(f"{args.path}:{problem.span.line}: {problem.message}")
    if series is None:
        return market, dag
    from stratplan.interpreter.series.read import unknown_in_market
    problem_column = unknown_in_market(series, market)
    if problem_column is not None:
        raise UsageError(f"{series.source}: {problem_column}")
    from stratplan.interpreter.dag import DagError, build_dag
    from stratplan.interpreter.evaluate import Scope
    from stratplan.interpreter.time.backtest import start_market
    market = start_market(plan, market, series)
    try:
        return market, build_dag(plan, Scope({let.name: let for let in plan.lets}, {}, market))
    except DagError as exc:
        raise UsageError(f"{args.path}: {exc}") from None


def report_journaled(args: argparse.Namespace, path: str, start: Any) -> int:
    """A journaled run or resume (docs/journal.md), reported as `run` reports: `start()`
    runs it; its notices go to stderr, its report to stdout in `args.format`."""
    from stratplan.interpreter.dag import DagError
    from stratplan.interpreter.journal import JournalError
    from stratplan.render.run import render_run
    from stratplan.render.text import dumps
    try:
        result = start()
    except (JournalError, DagError) as exc:
        raise UsageError(str(exc)) from None
    for notice in result.notices:
        error(notice)
    if args.format == "json":
        sys.stdout.write(dumps(result.report))
    else:
        render_run(result.report, out(), result.plan_path or path, args.steps)
    return 0 if result.report["status"] == "ok" else 1
