"""`stratplan sweep`: the backtest at every point of a grid of `let` values (issue 14).

    stratplan sweep FILE --grid NAME=V1,V2,... [--grid NAME=A:B:STEP ...] [--set NAME=VALUE]
                         [--series S] [--market M] [--from T] [--to T] [--days N --step D]
                         [--metric M] [--engine local|ray] [--address ADDR] [--workers N]
                         [--format text|json|csv] [--plot FILE.png]
                         [--cache-dir DIR | --no-cache]

Exit codes: 0 when every point ran with no failure, 1 when a point failed (a firing or the
phases failed) or could not run (its row says why), 2 on bad input. docs/sweep.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratplan.commands.common import (
    UsageError,
    check_output,
    error,
    plan_inputs,
    set_option,
    sound_plan,
    write_png,
)
from stratplan.commands.time_options import add_time_options, check_time_options, series_for
from stratplan.interpreter.time.metric_names import HIGHER_BETTER, LOWER_BETTER

if TYPE_CHECKING:  # the sweep itself is imported by the command, not by `--help` (issue 17)
    from stratplan.interpreter.sweep.run import Axis

_EPILOG = ("exit codes: 0 every point ran with no failure, 1 a point failed or could not run, "
           "2 usage, file or market error, 3 internal error")


def _axis(text: str) -> Axis:
    from stratplan.interpreter.sweep.run import SweepError, parse_axis
    try:
        return parse_axis(text)
    except SweepError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _workers(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of workers ≥ 1, not {text!r}")
    return int(text)


def register(sub: Any) -> None:
    """Add the `sweep` subcommand to the CLI's subparsers."""
    parser = sub.add_parser(
        "sweep", help="backtest a plan at every point of a grid of `let` values",
        description="Run the backtest at every point of a grid of the plan's `let` values "
                    "(on a process pool, or on Ray), and rank the points by a summary "
                    "metric. Results are cached by content: a re-run computes only new "
                    "points.", epilog=_EPILOG)
    parser.add_argument("path", metavar="FILE", help="the plan file")
    parser.add_argument("--grid", action="append", type=_axis, required=True,
                        metavar="NAME=V1,V2,...|NAME=A:B:STEP",
                        help="values of the plan's `let NAME`: a list, or a range from A to B "
                             "inclusive by STEP; repeat for more names (the points are every "
                             "combination) (default: none; at least one is required)")
    set_option(parser)
    add_time_options(parser)
    parser.add_argument("--metric", default="return", metavar="M",
                        help="summary metric to rank by: "
                             f"{', '.join(HIGHER_BETTER)} (higher is better), "
                             f"{', '.join(LOWER_BETTER)} (lower is better), min_health.VENUE, "
                             "pnl.PART (higher is better), firings.TRIGGER (most first) "
                             "(default: %(default)s)")
    parser.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="local: a process pool; ray: Ray tasks (pip install "
                             "\"stratplan[ray]\") (default: %(default)s)")
    parser.add_argument("--address", metavar="ADDR", help="with --engine ray: the Ray "
                        "cluster to join, as ray.init(address=...) takes it (default: start "
                        "a local Ray runtime)")
    parser.add_argument("--workers", type=_workers, metavar="N",
                        help="processes of the local pool, or CPUs of a local Ray runtime; 1 "
                             "runs every point in this process (default: the CPU count)")
    parser.add_argument("--format", choices=["text", "json", "csv"], default="text",
                        help="output format (default: %(default)s)")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the metric: a heatmap for "
                        "two grid names, a line for one (default: no plot)")
    parser.add_argument("--cache-dir", metavar="DIR", help="where results are cached "
                        "(default: $XDG_CACHE_HOME/stratplan/sweep, else "
                        "~/.cache/stratplan/sweep)")
    parser.add_argument("--no-cache", action="store_true",
                        help="compute every point, read and write no cache (default: use it)")
    parser.set_defaults(func=cmd_sweep)


def _check_metric(metric: str, plan: Any, market: Any) -> None:
    from stratplan.interpreter.sweep.run import SweepError, metric_direction
    from stratplan.interpreter.time.backtest import PARTS
    try:
        metric_direction(metric)
    except SweepError as exc:
        raise UsageError(f"--metric: {exc}") from None
    head, _, rest = metric.partition(".")
    if head == "firings" and rest not in {t.name for t in plan.triggers}:
        raise UsageError(f"--metric {metric}: the plan has no trigger {rest!r}")
    if head == "pnl" and rest not in (*PARTS, "total"):
        raise UsageError(f"--metric {metric}: no PnL part {rest!r} (one of "
                         f"{', '.join((*PARTS, 'total'))})")
    if head == "min_health" and getattr(market.venues.get(rest), "kind", None) != "lending":
        raise UsageError(f"--metric {metric}: {rest!r} is not a lending venue of the market")


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run the sweep and print its table (or JSON, CSV), and draw it."""
    from stratplan.interpreter.sweep.params import ParamError, collect
    from stratplan.interpreter.sweep.run import (
        Cache,
        Context,
        SweepError,
        check_axes,
        default_cache_dir,
        run_sweep,
        to_json,
    )
    from stratplan.render.sweep import plot_png, render_csv, render_text

    axes: list[Axis] = args.grid
    if args.address is not None and args.engine != "ray":
        raise UsageError("--address is for --engine ray")
    if args.engine == "ray" and args.address is not None and args.workers is not None:
        raise UsageError("--workers sets the CPUs of a local Ray runtime; a cluster at "
                         "--address has its own")
    if args.no_cache and args.cache_dir is not None:
        raise UsageError("--cache-dir and --no-cache contradict each other")
    if args.plot is not None and len(axes) > 2:
        raise UsageError(f"--plot draws one or two grid names; this sweep has {len(axes)}")
    check_time_options(args)
    if args.plot is not None:  # before the sweep, not after it
        check_output("--plot", args.plot, [args.path, args.market, args.series, args.cache_dir])
        from stratplan.dsl.extras import require
        require("matplotlib", "plot", "--plot")
    if args.engine == "ray":
        from stratplan.interpreter.sweep.run import ray_module
        try:
            ray_module()
        except SweepError as exc:
            raise UsageError(str(exc)) from None
    try:
        base = collect(args.set or ())
    except ParamError as exc:
        raise UsageError(str(exc)) from None
    plan, market, _, checked = sound_plan(args.path, args.market, lets=args.set)
    try:
        check_axes(plan, axes, base)
    except SweepError as exc:
        raise UsageError(f"{args.path}: {exc}") from None
    _check_metric(args.metric, plan, market)
    inputs = plan_inputs(args.path, plan, args.market, args.series)
    if args.plot is not None:
        check_output("--plot", args.plot, inputs)
    series = series_for(args, plan, Path(args.path).parent, market)
    cache = None if args.no_cache else Cache(Path(args.cache_dir) if args.cache_dir
                                             else default_cache_dir())
    context = Context(checked.source, market, series, base)
    bar = _progress() if sys.stderr.isatty() else None
    try:
        sweep = run_sweep(context, axes, args.engine, args.workers, args.address, cache,
                          progress=bar[0] if bar else None)
    except SweepError as exc:
        raise UsageError(str(exc)) from None
    finally:
        if bar:
            bar[1]()
    if cache is not None and cache.problem:
        error(f"note: results not cached: {cache.problem}")
    data = to_json(sweep, plan.name, args.metric)
    if args.format == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif args.format == "csv":
        sys.stdout.write(render_csv(data))
    else:
        sys.stdout.write(render_text(data, args.path))
    if args.plot is not None:
        write_png(args.plot, plot_png(sweep, plan.name, args.metric), inputs)
    return 0 if all(row["status"] == "ok" for row in data["rows"]) else 1


def _progress() -> tuple[Callable[[int, int], None], Callable[[], None]]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("points"),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("sweep", total=None)
    bar.start()

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return advance, bar.stop
