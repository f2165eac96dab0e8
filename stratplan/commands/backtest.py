"""`stratplan backtest`: run a plan over a series and report (LANGUAGE.md section 8).

    stratplan backtest FILE [--series S] [--market M] [--from T] [--to T]
                            [--days N --step D] [--format text|json|csv] [--steps]
                            [--plot FILE.png] [--set NAME=VALUE]

Exit codes: 0 when no firing failed, 1 when one did (or the phases failed), 2 on bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from stratplan.commands.common import (
    UsageError,
    check_output,
    plan_inputs,
    set_option,
    sound_plan,
    write_output,
    write_png,
)
from stratplan.commands.time_options import add_time_options, check_time_options, series_for


def register(sub: Any) -> None:
    """Add the `backtest` subcommand to the CLI's subparsers."""
    parser = sub.add_parser(
        "backtest", help="run a plan over a series of prices, funding and rates",
        description="Run the phases at the series' first time, then accrual, funding, "
                    "liquidations and triggers at every later time, and report.",
        epilog="exit codes: 0 no firing failed, 1 the phases or a firing failed, 2 usage, "
               "file, market or series error, 3 internal error")
    parser.add_argument("path", metavar="FILE", help="the plan file")
    add_time_options(parser)
    parser.add_argument("--format", choices=["text", "json", "csv"], default="text",
                        help="output format (default: %(default)s)")
    parser.add_argument("--steps", action="store_true", help="JSON: include every step "
                        "(default: the summary, PnL and events only)")
    parser.add_argument("--plot", metavar="FILE.png", help="draw value, health and exposure "
                        "over time into this PNG (default: no plot)")
    parser.add_argument("--base", metavar="ASSET", help="the text report also counts the "
                        "value and return in this asset (default: the one asset the "
                        "holdings are in, if they are in one)")
    parser.add_argument("--html", metavar="FILE.html", help="write an interactive report: "
                        "summary, charts, PnL, fills, events and the plan, in one file that "
                        "needs no network to open (default: none)")
    set_option(parser)
    from stratplan.commands.evm import add_executor_options
    add_executor_options(parser)
    parser.set_defaults(func=cmd_backtest)


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run the backtest and print its report."""
    from stratplan.dsl.extras import require
    from stratplan.interpreter.dag import DagError
    from stratplan.interpreter.time.backtest import run_backtest
    from stratplan.interpreter.time.metrics import report
    from stratplan.render.backtest import (
        base_returns,
        held_asset,
        plot_png,
        render_text,
        write_csv,
        write_json,
    )

    if args.steps and args.format != "json":
        raise UsageError("--steps adds every step to the JSON report; the text report is a "
                         "summary, and --format csv always lists every step")
    check_time_options(args)
    if args.plot is not None:  # before the backtest, not after it
        check_output("--plot", args.plot, [args.path, args.market, args.series])
        require("matplotlib", "plot", "--plot")
    if args.html is not None:
        check_output("--html", args.html, [args.path, args.market, args.series, args.plot])
        if args.plot is not None and os.path.realpath(args.plot) == os.path.realpath(args.html):
            raise UsageError("--plot and --html name the same file")
        require("plotly", "plot", "--html")
    plan, market, _, checked = sound_plan(args.path, args.market, lets=getattr(args, "set", None))
    inputs = plan_inputs(args.path, plan, args.market, args.series)
    for option, target in (("--plot", args.plot), ("--html", args.html)):
        if target is not None:
            check_output(option, target, inputs)
    series = series_for(args, plan, Path(args.path).parent, market)
    if args.executor == "evm":  # on-chain nodes on a local chain, row by row (docs/evm.md)
        from stratplan.commands.evm import backtest_evm
        return backtest_evm(args, plan, market, series)
    progress = _progress(len(series)) if args.format == "text" and sys.stderr.isatty() else None
    try:
        # Every step is kept only for a report that shows them (issue 27: a year of minutes
        # of a lending loop is ~0.7 KB a step); the summary needs none of them.
        keep = args.steps or args.format == "csv" or args.plot is not None \
            or args.html is not None
        result = run_backtest(plan, market, series, progress=progress[0] if progress else None,
                              keep_steps=keep)
    except DagError as exc:
        raise UsageError(f"{args.path}: {exc}") from None
    finally:
        if progress:
            progress[1]()
    data = report(result)
    if args.format == "json":
        write_json(data, result, sys.stdout, steps=args.steps)
    elif args.format == "csv":
        write_csv(result, sys.stdout)
    else:
        asset = args.base or held_asset(result)
        base = base_returns(result, asset) if asset else None
        if base is not None and not args.base and Decimal(base["value_start"]) == \
                result.value_start and Decimal(base["value_end"]) == result.snapshots[-1].value:
            base = None  # a stablecoin at 1 USD throughout: the same figures again
        if args.base and base is None:
            raise UsageError(f"--base {args.base}: the market and the series have no price "
                             f"for {args.base}")
        sys.stdout.write(render_text(data, args.path, base))
    if args.plot is not None:
        write_png(args.plot, plot_png(result), inputs)
    if args.html is not None:
        from stratplan.render.html import render_html
        write_output("--html", args.html,
                     render_html(result, data, args.path, checked.source).encode(),
                     [*inputs, args.plot])
    return 1 if data["status"] == "failed" else 0


def _progress(total: int) -> tuple[Callable[[int, int], None], Callable[[], None]] | None:
    try:
        from rich.progress import Progress
    except ImportError:  # pragma: no cover - rich is a dependency
        return None
    bar = Progress(transient=True)
    task = bar.add_task("backtest", total=total)
    bar.start()

    def advance(row: int, _total: int) -> None:
        if row % 1000 == 0 or row == _total - 1:
            bar.update(task, completed=row + 1)

    return advance, bar.stop
