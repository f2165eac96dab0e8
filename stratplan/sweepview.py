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
import csv
import io
import json
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratplan.interpreter.time.metric_names import HIGHER_BETTER, LOWER_BETTER

if TYPE_CHECKING:  # the sweep itself is imported by the command, not by `--help` (issue 17)
    from stratplan.interpreter.sweep.run import Axis, Sweep

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
    from stratplan.backtestview import add_time_options
    from stratplan.cli import _set_option
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
    _set_option(parser)
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
    from stratplan.cli import UsageError
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
    from stratplan.backtestview import _series_for
    from stratplan.cli import UsageError, _sound_plan
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
    plan, market, _, checked = _sound_plan(args.path, args.market, lets=args.set)
    try:
        check_axes(plan, axes, base)
    except SweepError as exc:
        raise UsageError(f"{args.path}: {exc}") from None
    _check_metric(args.metric, plan, market)
    series = _series_for(args, plan, Path(args.path).parent)
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
        from stratplan.cli import _error
        _error(f"note: results not cached: {cache.problem}")
    data = to_json(sweep, plan.name, args.metric)
    if args.format == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif args.format == "csv":
        sys.stdout.write(render_csv(data))
    else:
        sys.stdout.write(render_text(data, args.path))
    if args.plot:
        plot(sweep, plan.name, args.metric, args.plot)
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


# --- output -----------------------------------------------------------------------------


_SCALARS = ("value_start", "value_end", "return", "apr", "max_drawdown", "max_drawdown_from",
            "max_drawdown_to", "sharpe", "sortino", "liquidations")
_PERCENT = frozenset({"return", "apr", "max_drawdown"})
_SHOWN = ("return", "apr", "max_drawdown", "sharpe", "liquidations")
_HEADERS = {"max_drawdown": "drawdown", "liquidations": "liq"}
_TIMES = "\N{MULTIPLICATION SIGN}"


def _cell(metric: str, value: Decimal | None) -> str:
    if value is None:
        return "-"
    if metric in _PERCENT:
        return f"{value * 100:,.2f}%"
    if metric == "liquidations" or metric.startswith("firings."):
        return f"{value:,.0f}"
    if metric.startswith(("pnl.", "value_")):
        return f"{value:,.2f}"
    return f"{value:,.4f}"


def render_text(data: dict[str, Any], path: str) -> str:
    """The table, best first: the grid values, the metric and the main summary metrics."""
    from stratplan.interpreter.sweep.run import metric_value
    from stratplan.terminal import shown
    metric = data["metric"]
    names = list(data["grid"])
    shown_metrics = [metric, *(m for m in _SHOWN if m != metric)]
    head = ["rank", *names, *(_HEADERS.get(m, m) for m in shown_metrics), "status"]
    body = []
    for row in data["rows"]:
        status = row["status"]
        if row["error"]:
            status = f"{status}: {row['error']}"
        body.append([str(row["rank"]), *(row["values"][n] for n in names),
                     *(_cell(m, metric_value(row, m)) for m in shown_metrics), shown(status)])
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head) - 1)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=False)) \
            + "  " + cells[-1]

    better = "higher" if data["better"] == "higher" else "lower"
    if metric.startswith("firings."):
        better = "most first; not a measure of better"
    else:
        better += " is better"
    points = f"{data['points']} point{'s' if data['points'] != 1 else ''}"
    out = [f"sweep {shown(data['plan'])} ({shown(path)}): {points}, "
           f"{data['computed']} computed, {data['cached']} from the cache",
           f"ranked by {shown(metric)} ({better})", "", line(head)]
    out += [line(cells).rstrip() for cells in body]
    if data["errors"]:
        out += ["", f"{data['errors']} point(s) could not run: see their status"]
    return "\n".join(out) + "\n"


def render_csv(data: dict[str, Any]) -> str:
    """One row a point, best first: its values, status, metric, summary and PnL parts."""
    names = list(data["grid"])
    venues = sorted({v for row in data["rows"] if row["summary"]
                     for v in row["summary"]["min_health"]})
    triggers = sorted({t for row in data["rows"] if row["summary"]
                       for t in row["summary"]["firings"]})
    parts = next((list(row["pnl"]) for row in data["rows"] if row["pnl"]), [])
    columns = ["rank", *names, "status", "metric", *_SCALARS,
               *(f"min_health.{v}" for v in venues), *(f"firings.{t}" for t in triggers),
               *(f"pnl.{p}" for p in parts), "cached", "error"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in data["rows"]:
        s, pnl = row["summary"] or {}, row["pnl"] or {}
        writer.writerow([row["rank"], *(row["values"][n] for n in names), row["status"],
                         row["metric"], *(s.get(k) for k in _SCALARS),
                         *((s.get("min_health", {}).get(v) or {}).get("value") for v in venues),
                         *(s.get("firings", {}).get(t) for t in triggers),
                         *(pnl.get(p) for p in parts), row["cached"], row["error"]])
    return out.getvalue()


def plot(sweep: Sweep, plan_name: str, metric: str, target: str) -> None:
    """The metric over the grid as a PNG (matplotlib, Agg): a heatmap for two names (first
    across, second up; points that could not run crossed out, the best one framed), a line
    for one."""
    import math

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from stratplan.interpreter.sweep.params import plain
    from stratplan.interpreter.sweep.run import metric_direction, metric_value, ranked

    higher = metric_direction(metric)
    values = [metric_value(row, metric) for row in sweep.rows]
    numbers = [math.nan if v is None else float(v) for v in values]
    order = ranked(sweep, metric)
    best = order[0] if order and values[order[0]] is not None else None
    label = f"{metric} ({'higher' if higher else 'lower'} is better)"
    axes = sweep.axes
    if len(axes) == 1:
        figure, ax = plt.subplots(figsize=(8, 5))
        xs = [float(v) for v in axes[0].values]
        ax.plot(xs, numbers, marker="o")
        if best is not None:
            ax.plot([xs[best]], [numbers[best]], marker="*", markersize=16, color="crimson",
                    linestyle="none", label="best")
            ax.legend()
        for i, row in enumerate(sweep.rows):
            if row["status"] == "error":
                ax.axvline(xs[i], color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel(axes[0].name)
        ax.set_ylabel(label)
    else:
        across, up = axes
        cols, rows_n = len(across.values), len(up.values)
        # Colour shows the points that ran clean; a failed one is hatched grey (its plan
        # did not do what it says), one that could not run is crossed out.
        clean = [n if sweep.rows[i]["status"] == "ok" else math.nan
                 for i, n in enumerate(numbers)]
        grid = [[clean[i * rows_n + j] for i in range(cols)] for j in range(rows_n)]
        figure, ax = plt.subplots(figsize=(max(6.5, 2.0 + 0.9 * cols),
                                           max(4.5, 1.5 + 0.55 * rows_n)))
        cmap = matplotlib.colormaps["viridis" if higher else "viridis_r"].with_extremes(
            bad="#eeeeee")
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap=cmap)
        bar = figure.colorbar(image, ax=ax, label=label)
        if metric in _PERCENT:
            from matplotlib.ticker import PercentFormatter
            bar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
        ax.set_xticks(range(cols), [plain(v) for v in across.values])
        ax.set_yticks(range(rows_n), [plain(v) for v in up.values])
        ax.set_xlabel(across.name)
        ax.set_ylabel(up.name)
        finite = [n for n in clean if not math.isnan(n)]
        middle = (min(finite) + max(finite)) / 2 if finite else 0.0
        small = cols * rows_n <= 400
        for index, row in enumerate(sweep.rows):
            x, y = index // rows_n, index % rows_n
            if row["status"] == "error":
                ax.text(x, y, _TIMES, ha="center", va="center", color="#777777", fontsize=12)
                continue
            if row["status"] != "ok":
                ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, hatch="///",
                                       edgecolor="#bbbbbb", linewidth=0))
            if small:
                text = _cell(metric, values[index])
                if row["status"] != "ok":
                    text = f"failed\n{text}"
                    color = "#555555"
                else:
                    color = "white" if (numbers[index] < middle) == higher else "black"
                ax.text(x, y, text, ha="center", va="center", fontsize=7, color=color)
        if best is not None and sweep.rows[best]["status"] == "ok":
            ax.add_patch(Rectangle((best // rows_n - 0.5, best % rows_n - 0.5), 1, 1,
                                   fill=False, edgecolor="crimson", linewidth=2.5))
        ax.text(0, -0.13, "framed: best; hatched: a phase or trigger failed; "
                f"{_TIMES}: could not run", transform=ax.transAxes, fontsize=8, color="#555555")
    ax.set_title(f"{plan_name}: {metric} over {f' {_TIMES} '.join(a.name for a in axes)}"
                 f" ({len(sweep.rows)} points)")
    figure.tight_layout()
    try:
        figure.savefig(target, format="png", dpi=110)
    except OSError as exc:
        from stratplan.cli import UsageError
        raise UsageError(f"--plot: cannot write {target}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)


__all__ = ["cmd_sweep", "plot", "register", "render_csv", "render_text"]
