"""`stratplan series import|synth`: series files for `backtest` (LANGUAGE.md section 8).

    stratplan series import FILE... [--venue V] [--asset A] [--step D] [-o OUT.csv]
    stratplan series synth --days N --step D --seed S [-o OUT.csv]

Without `-o` the series goes to standard output. Exit codes: 0 written, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stratplan.commands.common import UsageError, check_output, write_output
from stratplan.commands.time_options import days_option, step_option

DEFAULT_IMPORT_STEP = "1m"
_EPILOG = "exit codes: 0 series written, 2 usage or input error, 3 internal error"


def register(sub: Any) -> None:
    """Add the `series` subcommand (with `import` and `synth`) to the CLI's subparsers."""
    parser = sub.add_parser("series", help="make series files: import public dumps, or "
                            "generate a synthetic one",
                            description="Write a series CSV (LANGUAGE.md section 8) for "
                                        "`stratplan backtest`.", epilog=_EPILOG)
    inner = parser.add_subparsers(dest="series_command", metavar="ACTION",
                                  help="import or synth (stratplan series ACTION --help)")
    parser.set_defaults(func=lambda args: _usage(parser))

    imp = inner.add_parser("import", help="turn Binance or Tardis dumps into a series",
                           description="Read Binance fundingRate or kline dumps, or Tardis "
                                       "derivative_ticker CSV files, and merge them into one "
                                       "series (the format is detected from the columns).",
                           epilog=_EPILOG)
    imp.add_argument("files", nargs="+", metavar="FILE", help="the dumps (CSV)")
    imp.add_argument("--venue", help="venue of funding columns (default: binance, or the "
                     "Tardis file's exchange)")
    imp.add_argument("--asset", help="asset of every column (default: from the symbol in the "
                     "file name or the Tardis file)")
    imp.add_argument("--step", type=step_option, metavar="D",
                     help="Tardis: one price per step, the last of each, a duration "
                          f"(default: {DEFAULT_IMPORT_STEP})")
    imp.add_argument("-o", "--output", metavar="OUT.csv",
                     help="write here (default: standard output)")
    imp.set_defaults(func=cmd_import)

    syn = inner.add_parser("synth", help="generate a synthetic series (docs/backtest.md)",
                           description="Prices with volatility and jumps, mean-reverting "
                                       "funding, utilisation-driven Aave rates, weETH rate "
                                       "growth and an occasional depeg; the same seed gives "
                                       "the same file.", epilog=_EPILOG)
    syn.add_argument("--days", type=days_option, default="365", metavar="N",
                     help="length, a whole number of days (default: %(default)s)")
    syn.add_argument("--step", type=step_option, default="8h", metavar="D",
                     help="interval between rows, a duration (default: %(default)s)")
    syn.add_argument("--seed", type=_seed, default=1, help="random seed, a whole number "
                     "(default: %(default)s)")
    syn.add_argument("-o", "--output", metavar="OUT.csv",
                     help="write here (default: standard output)")
    syn.set_defaults(func=cmd_synth)


def _seed(text: str) -> int:
    """`--seed`: a whole number in ASCII digits (`int` also takes other scripts' digits)."""
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 100:
        raise argparse.ArgumentTypeError(f"expected a whole number (digits 0-9), got {text!r}")
    return int(text)


def _usage(parser: argparse.ArgumentParser) -> int:
    raise UsageError("series: say `import` or `synth` (stratplan series --help)")


def _write(text: str, output: str | None, inputs: list[str]) -> None:
    """The series to standard output, or to `-o FILE`: never over one of the inputs, never
    into a folder or device, through a temporary file (dsl/files.py)."""
    if output is None:
        sys.stdout.write(text)
        return
    write_output("-o", output, text.encode("utf-8"), inputs)


def cmd_import(args: argparse.Namespace) -> int:
    """Import dumps."""
    from stratplan.interpreter.series.importers import import_files
    from stratplan.interpreter.series.read import SeriesError
    if args.output is not None:
        check_output("-o", args.output, args.files)  # before reading a byte of the dumps
    step = args.step if args.step is not None else step_option(DEFAULT_IMPORT_STEP)
    try:
        text, said = import_files(args.files, args.venue, args.asset, step)
    except (SeriesError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    kinds = {line.rsplit(": ", 1)[-1] for line in said}
    # An option that did nothing is refused, never ignored in silence.
    if args.step is not None and "tardis" not in kinds:
        raise UsageError("--step buckets the prices of a Tardis file; these inputs are "
                         f"{', '.join(sorted(kinds))}: drop --step")
    if args.venue is not None and not kinds & {"funding", "tardis"}:
        raise UsageError("--venue names the venue of funding columns; these inputs have none "
                         f"({', '.join(sorted(kinds))}): drop --venue")
    _write(text, args.output, args.files)
    for line in said:
        print(line, file=sys.stderr)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """Generate a synthetic series."""
    from stratplan.interpreter.series.synth import synth
    days, rest = divmod(args.days, 86_400_000)
    if rest:  # pragma: no cover - days_option gives whole days
        raise UsageError("--days: a whole number of days")
    if args.output is not None:
        check_output("-o", args.output)
    try:
        text = synth(days, args.step, args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _write(text, args.output, [])
    return 0

