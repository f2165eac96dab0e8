"""`stratplan backtest`: run a plan over a series and report (LANGUAGE.md section 8).

    stratplan backtest FILE [--series S] [--market M] [--from T] [--to T]
                            [--days N --step D] [--format text|json|csv] [--steps]
                            [--plot FILE.png]

Exit codes: 0 when no firing failed, 1 when one did (or the phases failed), 2 on bad input.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from array import array
from collections.abc import Callable
from decimal import Decimal, localcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the series are loaded by the commands, not by `--help` (issue 17)
    from stratplan.interpreter.series.read import Series

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


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
    parser.set_defaults(func=cmd_backtest)


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


def _series_for(args: argparse.Namespace, plan: Any, plan_dir: Path) -> Series:
    from stratplan.cli import UsageError
    from stratplan.interpreter.lint.with_series import resolve_series
    from stratplan.interpreter.series.read import SeriesError, load_series, parse_time
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
    if start is not None or end is not None:
        series = series.slice(start, end)
    if not len(series):
        raise UsageError("no row of the series falls between --from and --to")
    return series


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run the backtest and print its report."""
    from stratplan.cli import UsageError, _sound_plan  # the CLI's own plan checks
    from stratplan.interpreter.dag import DagError
    from stratplan.interpreter.time.backtest import run_backtest
    from stratplan.interpreter.time.metrics import report, step_row

    if args.steps and args.format != "json":
        raise UsageError("--steps adds every step to the JSON report; the text report is a "
                         "summary, and --format csv always lists every step")
    plan, market, _, _ = _sound_plan(args.path, args.market, lets=getattr(args, "set", None))
    series = _series_for(args, plan, Path(args.path).parent)
    progress = _progress(len(series)) if args.format == "text" and sys.stderr.isatty() else None
    try:
        result = run_backtest(plan, market, series, progress=progress[0] if progress else None)
    except DagError as exc:
        raise UsageError(f"{args.path}: {exc}") from None
    finally:
        if progress:
            progress[1]()
    data = report(result, steps=args.steps)
    if args.format == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    elif args.format == "csv":
        rows = [step_row(snap) for snap in result.snapshots]
        columns: list[str] = []
        for row in rows:
            columns += [key for key in row if key not in columns]
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        sys.stdout.write(out.getvalue())
    else:
        sys.stdout.write(render_text(data, args.path))
    if args.plot:
        plot(result, args.plot)
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


def readable(value: str | None) -> str:
    """For reading: 8 significant digits at most, and no digit below 1e-12 (rounding dust
    such as 9.2E-35 reads `≈0`); never an exponent; `≈` when rounded."""
    if value is None:
        return "n/a"
    number = Decimal(value)
    if number == 0:
        return "0"
    with localcontext() as context:
        context.prec = max(60, number.adjusted() + 10)  # room for every digit quantize keeps
        shown = number.quantize(Decimal(1).scaleb(max(number.adjusted() - 7, -12)))
        text = "0" if shown == 0 else f"{shown.normalize():f}"
        return text if shown == number else f"≈{text}"


def _percent(value: str | None) -> str:
    return "n/a" if value is None else f"{readable(str(Decimal(value) * 100))}%"


def render_text(data: dict[str, Any], path: str) -> str:
    """The text report: summary, PnL attribution, events."""
    from stratplan.terminal import shown
    s = data["summary"]
    lines = [f"backtest {shown(data['plan'])} ({shown(path)}): {data['status']}",
             f"  {data['start']} to {data['end']}, {data['steps']} steps", "",
             "Summary",
             f"  value      {readable(s['value_start'])} -> {readable(s['value_end'])} USD",
             f"  return     {_percent(s['return'])}   APR {_percent(s['apr'])}",
             f"  drawdown   {_percent(s['max_drawdown'])}"
             + (f" ({s['max_drawdown_from']} to {s['max_drawdown_to']})"
                if s["max_drawdown_from"] else ""),
             f"  sharpe     {readable(s['sharpe'])}   sortino {readable(s['sortino'])}"]
    for venue, low in s["min_health"].items():
        lines.append(f"  min health {shown(venue)} {readable(low['value'])} at {low['time']}")
    lines.append(f"  liquidations {s['liquidations']}")
    for name, count in s["firings"].items():
        lines.append(f"  trigger {shown(name)}: {count} firing(s)")
    lines += ["", "PnL attribution (USD)"]
    for name, value in data["pnl"].items():
        lines.append(f"  {name:<16} {readable(value)}")
    # Successful firings collapse into one line a trigger; failures and liquidations are
    # listed one by one (the JSON report keeps every event).
    firings: dict[str, list[Any]] = {}
    others = []
    for event in data["events"]:
        if event["kind"] == "firing":
            seen = firings.setdefault(event["trigger"], [0, event["time"], event["time"],
                                                         event["line"]])
            seen[0] += 1
            seen[2] = event["time"]
        else:
            others.append(event)
    if firings:
        lines += ["", "Firings"]
        for name, (count, first, last, line) in firings.items():
            where = f" (line {line})" if line else ""
            when = f"at {first}" if count == 1 else f"first {first}, last {last}"
            lines.append(f"  {shown(name)}{where}: {count} firing(s), {when}")
    if others:
        lines += ["", "Events"]
        for event in others:
            who = event.get("trigger") or event.get("venue")
            code = f" {event['code']}" if event["code"] else ""
            where = f" line {event['line']}" if event["line"] else ""
            lines.append(f"  {event['time']} {event['kind']}{code} {shown(str(who))}{where}: "
                         f"{shown(event['message'])}")
    return "\n".join(lines) + "\n"


def plot(result: Any, target: str) -> None:
    """Value, health and exposure over time, as a PNG (matplotlib, Agg)."""
    from datetime import UTC, datetime

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snaps = result.snapshots
    times = [datetime.fromtimestamp(s.time / 1000, tz=UTC) for s in snaps]
    figure, (value_ax, health_ax, exposure_ax) = plt.subplots(3, 1, sharex=True,
                                                              figsize=(10, 8))
    value_ax.plot(times, [float(s.value) for s in snaps])
    value_ax.set_ylabel("value (USD)")
    value_ax.set_title(f"{result.plan.name}: backtest")
    venues = sorted({v for s in snaps for v in s.health})
    for venue in venues:
        health_ax.plot(times, [float(s.health[venue]) if s.health.get(venue) is not None
                               else float("nan") for s in snaps], label=venue)
    health_ax.axhline(1, color="red", linewidth=0.8, linestyle="--")
    health_ax.set_ylabel("health")
    if venues:
        health_ax.legend()
    assets = sorted({a for s in snaps for a in s.exposure})
    for asset in assets:
        exposure_ax.plot(times, [float(s.exposure.get(asset, 0)) for s in snaps], label=asset)
    exposure_ax.set_ylabel("exposure")
    if assets:
        exposure_ax.legend()
    figure.autofmt_xdate()
    figure.tight_layout()
    try:
        figure.savefig(target, format="png")
    except OSError as exc:
        from stratplan.cli import UsageError
        raise UsageError(f"--plot: cannot write {target}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)


__all__ = ["cmd_backtest", "constant_series", "duration_ms", "register", "render_text"]
