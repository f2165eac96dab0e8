"""What a backtest runs over: the options `backtest` and `sweep` share (`--series`,
`--market`, `--from`, `--to`, `--days`, `--step`), the series they name, and durations
(`8h`), which `series` takes too."""

from __future__ import annotations

import argparse
from array import array
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratplan.commands.common import UsageError

if TYPE_CHECKING:  # the series are loaded by the commands, not by `--help` (issue 17)
    from stratplan.executors.market import Market
    from stratplan.interpreter.series.read import Series

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def _days(text: str) -> int:
    """`--days`: a whole number of days, in ASCII digits (`int` also takes other scripts')."""
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {text!r}")
    return int(text)


def add_time_options(parser: argparse.ArgumentParser) -> None:
    """The options that say what a backtest runs over (`backtest` and `sweep` share them)."""
    parser.add_argument("--series", metavar="CSV", help="series that replaces the plan's "
                        "`use series` (default: the plan's)")
    parser.add_argument("--market", metavar="FILE", help="market YAML file (default: the "
                        "plan's `use market`, else the built-in market)")
    parser.add_argument("--from", dest="start", metavar="T", help="first time, ISO or "
                        "milliseconds (default: the series' first)")
    parser.add_argument("--to", dest="end", metavar="T", help="last time, ISO or "
                        "milliseconds (default: the series' last)")
    parser.add_argument("--days", type=_days, metavar="N", help="with no series: N days over "
                        "the market's constant prices and rates (default: none; a plan "
                        "without a series needs it)")
    parser.add_argument("--step", default="1d", metavar="D",
                        help="with --days: the step, a duration (default: %(default)s)")


def duration_ms(text: str) -> int:
    """`8h` -> milliseconds; ValueError for anything else or a non-positive duration."""
    text = text.strip()
    if len(text) < 2 or text[-1] not in _UNITS:
        raise ValueError(f"{text!r} is not a duration (30s, 15m, 8h, 1d, 2w)")
    value = Decimal(text[:-1].replace("_", ""))
    if not value.is_finite() or value <= 0:
        raise ValueError(f"the duration {text} must be positive")
    return int(value * _UNITS[text[-1]] * 1000)


def constant_series(days: int, step: str) -> Series:
    """A series of times only: the market's constant prices and rates, `days` long."""
    from stratplan.interpreter.series.read import Series, parse_time
    step_ms = duration_ms(step)
    if days <= 0:
        raise ValueError("--days must be positive")
    start = parse_time("2024-01-01T00:00:00Z")
    count = days * 86_400_000 // step_ms
    if count > 10_000_000:
        raise ValueError("--days / --step give more than 10,000,000 steps")
    return Series("(constant market)", array("q", (start + i * step_ms
                                                   for i in range(count + 1))))


def series_for(args: argparse.Namespace, plan: Any, plan_dir: Path, market: Market) -> Series:
    """The series the time options name (else the plan's `use series`), cut to `--from` and
    `--to`; a usage error when there is none, it cannot be read, or a column names an asset
    or venue the market does not know."""
    from stratplan.interpreter.lint.with_series import resolve_series
    from stratplan.interpreter.series.read import (
        SeriesError,
        load_series,
        parse_time,
        unknown_in_market,
    )
    try:
        if args.series is not None:
            series = load_series(args.series)
        elif args.days is not None:
            series = constant_series(args.days, args.step)
        else:
            found, problem = resolve_series(plan, plan_dir)
            if problem is not None:
                raise UsageError(f"{args.path}:{problem.span.line}: {problem.message}")
            if found is None:
                raise UsageError(f"{args.path}: no series: add `use series`, or pass "
                                 "--series CSV or --days N")
            series = found
        start = parse_time(args.start) if args.start else None
        end = parse_time(args.end) if args.end else None
    except (SeriesError, ValueError) as exc:
        raise UsageError(f"{exc}") from None
    problem_column = unknown_in_market(series, market)
    if problem_column is not None:
        raise UsageError(f"{series.source}: {problem_column}")
    if start is not None or end is not None:
        series = series.slice(start, end)
    if not len(series):
        raise UsageError("no row of the series falls between --from and --to")
    return series
