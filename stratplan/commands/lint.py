"""`stratplan lint FILE|DIR...`: the static rules, then the dry run against the market."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratplan.commands.common import (
    FORMAT_HELP,
    MARKET_HELP,
    PATHS_HELP,
    UsageError,
    add_command,
    market_option,
    out,
    plan_files,
    read_plan,
    series_option,
    set_option,
    with_set,
)

if TYPE_CHECKING:
    from stratplan.executors.market import Market
    from stratplan.interpreter.lint.pipeline import LintResult


def register(sub: Any) -> None:
    """Add the `lint` subcommand to the CLI's subparsers."""
    lint = add_command(sub, "lint", "check plans (static rules and dry run)",
                       "Check plans: the static rules, then the dry run against the market.")
    lint.add_argument("paths", nargs="+", metavar="FILE|DIR", help=PATHS_HELP)
    lint.add_argument("--format", choices=["text", "json", "sarif", "github"], default="text",
                      help=FORMAT_HELP)
    lint.add_argument("--market", metavar="FILE", help=MARKET_HELP)
    lint.add_argument("--series", metavar="CSV", help="series that replaces the plans' `use "
                      "series`, making the dry run the backtest (default: each plan's own)")
    lint.add_argument("--strict", action="store_true",
                      help="warnings fail too, exit 1 (default: only errors fail)")
    lint.add_argument("--exit-zero", action="store_true",
                      help="exit 0 even with errors (default: exit 1 on errors)")
    set_option(lint)
    lint.set_defaults(func=cmd_lint)


def cmd_lint(args: argparse.Namespace) -> int:
    """Check plans: static rules, then the dry run."""
    try:
        return _lint_files(args)
    except UsageError as exc:
        if args.format == "sarif":  # a SARIF reader gets a log saying why, never nothing
            from stratplan.render.sarif import sarif_failed
            from stratplan.render.text import dumps
            sys.stdout.write(dumps(sarif_failed(str(exc))))
        raise


def _lint_files(args: argparse.Namespace) -> int:
    if args.strict and args.exit_zero:  # one of them would do nothing
        raise UsageError("--strict (warnings fail) and --exit-zero (nothing fails) contradict "
                         "each other: give one")
    market = market_option(args.market)
    series = series_option(args.series)
    files = plan_files(args.paths)
    results: list[LintResult] = []
    console_err = None
    if len(files) > 20 and args.format == "text":  # text output prints through rich anyway
        from rich.console import Console
        console_err = Console(stderr=True)
    if console_err is not None and console_err.is_terminal:
        from rich.progress import track
        for path in track(files, description="linting", console=console_err, transient=True):
            results.append(_lint(path, market, series, args.set))
    else:
        results = [_lint(path, market, series, args.set) for path in files]
    from stratplan.render.text import dumps, lint_json, plain_stream, plain_text, render_text
    if args.format == "json":
        sys.stdout.write(dumps(lint_json(results)))
    elif args.format == "sarif":
        from stratplan.render.sarif import sarif
        sys.stdout.write(dumps(sarif(results)))
    elif args.format == "github":
        from stratplan.render.github import github
        sys.stdout.write(github(results))
    elif plain_stream(sys.stdout):  # a pipe or a file: the same text, without loading rich
        sys.stdout.write(plain_text(results))
    else:
        render_text(results, out())
    if args.exit_zero:
        return 0
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    return 1 if errors or (args.strict and warnings) else 0


def _lint(path: Path, market: Market | None, series: Any = None,
          lets: Any = None) -> LintResult:
    """One plan file linted, with `--set` values for its lets when there are any."""
    from stratplan.interpreter.lint.pipeline import LintResult, lint_parsed, lint_source
    data = read_plan(path)
    if not isinstance(data, bytes):
        return LintResult(str(path), [data])
    if lets:  # `--set NAME=VALUE`: the plan's lets are replaced before the rules run
        from stratplan.dsl.parser import parse
        parsed = parse(data, str(path))
        if parsed.plan is not None:
            parsed.plan = with_set(parsed.plan, lets, str(path))
        return lint_parsed(parsed, str(path), path.parent, market, series)
    return lint_source(data, str(path), path.parent, market, series)
