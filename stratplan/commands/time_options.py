"""What a backtest runs over: the options `backtest` and `sweep` share (`--series`,
`--market`, `--from`, `--to`, `--days`, `--step`), the series they name, and the readers of
`--days` and `--step` (`series synth` and `series import` take them too).

Durations go through the one duration parser (`dsl/durations.py`, the grammar's DURATION).
Every option takes effect or is refused (exit 2, one line): an empty `--from=`, `--step`
without `--days`, `--days` together with `--series`."""

from __future__ import annotations

import argparse
from array import array
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratplan.commands.common import UsageError

if TYPE_CHECKING:  # the series are loaded by the commands, not by `--help` (issue 17)
    from stratplan.executors.market import Market
    from stratplan.interpreter.series.read import Series

def days_option(text: str) -> int:
    """`--days N`: a whole number of days in ASCII digits, at least 1 (the duration `Nd`,
    read by the one duration parser); its length in milliseconds."""
    from stratplan.dsl.durations import DurationError, days_ms
    try:
        return days_ms(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def step_option(text: str) -> int:
    """`--step D`: a duration as plans write one (`8h`), in milliseconds."""
    from stratplan.dsl.durations import DurationError, duration_ms
    try:
        return duration_ms(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


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
    parser.add_argument("--days", type=days_option, metavar="N", help="instead of a series: "
                        "N days over the market's constant prices and rates (default: none; "
                        "a plan without a series needs it)")
    parser.add_argument("--step", type=step_option, metavar="D",
                        help=f"with --days: the step, a duration (default: {DEFAULT_STEP})")


DEFAULT_STEP = "1d"
START = "2024-01-01T00:00:00Z"


def constant_series(days_ms: int, step_ms: int) -> Series:
    """A series of times only, `days_ms` long from 2024-01-01: the market's constant prices
    and rates; ValueError when it would pass the year 9999 or hold too many rows."""
    from stratplan.interpreter.series.read import MAX_MS, Series, parse_time
    start = parse_time(START)
    count = days_ms // step_ms
    if count > 10_000_000:
        raise ValueError("--days / --step give more than 10,000,000 steps")
    if start + count * step_ms > MAX_MS:
        raise ValueError(f"--days: {days_ms // 86_400_000:,} days from {START} go past the "
                         "end of 9999, the last time a report can show")
    return Series("(constant market)", array("q", (start + i * step_ms
                                                   for i in range(count + 1))))


def _time_option(option: str, text: str | None) -> int | None:
    from stratplan.interpreter.series.read import parse_time
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def check_time_options(args: argparse.Namespace) -> None:
    """Options that would do nothing are refused, never ignored: `--step` without `--days`,
    `--days` with `--series` (which one would the backtest run over?)."""
    if args.step is not None and args.days is None:
        raise UsageError("--step sets the step of --days (the constant market); over a "
                         "series the steps are its rows: drop --step, or add --days N")
    if args.days is not None and args.series is not None:
        raise UsageError("--days and --series both say what to run over: give one")
    _time_option("--from", args.start)
    _time_option("--to", args.end)


def series_for(args: argparse.Namespace, plan: Any, plan_dir: Path, market: Market) -> Series:
    """The series the time options name (else the plan's `use series`), cut to `--from` and
    `--to`; a usage error when there is none, it cannot be read, or a column names an asset
    or venue the market does not know."""
    from stratplan.interpreter.lint.with_series import resolve_series
    from stratplan.interpreter.series.read import SeriesError, load_series, unknown_in_market
    check_time_options(args)
    try:
        if args.series is not None:
            series = load_series(args.series)
        elif args.days is not None:
            step = args.step if args.step is not None else step_option(DEFAULT_STEP)
            series = constant_series(args.days, step)
        else:
            found, problem = resolve_series(plan, plan_dir)
            if problem is not None:
                raise UsageError(f"{args.path}:{problem.span.line}: {problem.message}")
            if found is None:
                raise UsageError(f"{args.path}: no series: add `use series`, or pass "
                                 "--series CSV or --days N")
            series = found
    except (SeriesError, ValueError) as exc:
        raise UsageError(f"{exc}") from None
    problem_column = unknown_in_market(series, market)
    if problem_column is not None:
        raise UsageError(f"{series.source}: {problem_column}")
    start, end = _time_option("--from", args.start), _time_option("--to", args.end)
    if start is not None and end is not None and end < start:
        raise UsageError(f"--to {args.end} is before --from {args.start}")
    if start is not None or end is not None:
        series = series.slice(start, end)
    if not len(series):
        raise UsageError("no row of the series falls between --from and --to")
    return series
