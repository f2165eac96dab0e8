"""What several commands share: the usage error and its one-line printer, reading plan files
and folders, the plan checks that `graph`, `export`, `run`, `backtest` and `sweep` need
first, and the options that several commands take (`--set`, `--market`, `--series`, the run
report's `--format` and `--steps`), with their help texts.

Nothing heavy is imported at the top (issue 17: startup): each helper imports what it uses
when it runs.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratplan.terminal import shown

if TYPE_CHECKING:
    from rich.console import Console

    from stratplan.dsl.diagnostics import Diagnostic
    from stratplan.dsl.parser import ParseResult
    from stratplan.executors.market import Market
    from stratplan.interpreter.dag import Dag
    from stratplan.interpreter.lint.pipeline import LintResult


class UsageError(Exception):
    """A bad command line, file or market: one line on stderr, exit 2."""


class UnsoundPlan(Exception):
    """A plan with errors where a command needs a sound one: its diagnostics are printed as
    `lint` prints them, exit 1."""

    def __init__(self, result: LintResult) -> None:
        super().__init__("plan has errors")
        self.result = result


# --- output ------------------------------------------------------------------------------


def console(**options: Any) -> Console:
    """rich's console (imported only by the commands that print through it), except that
    a closed pipe ends output quietly with success."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())

    return _Console(**options)


def out() -> Console:
    """The console for a command's report on stdout."""
    return console(soft_wrap=True, highlight=False)


def error(text: str) -> None:
    """One line on stderr; characters a terminal would act on or hide (a NUL, an escape
    sequence typed into a path) are written as escapes, the rest as they are."""
    print(f"stratplan: {shown(text)}", file=sys.stderr)


def write_png(target: str, png: bytes, inputs: Sequence[str | Path | None] = ()) -> None:
    """`--plot FILE.png` (backtest, sweep): the image written, or exit 2 saying why not."""
    write_output("--plot", target, png, inputs)


def check_output(option: str, target: str, inputs: Sequence[str | Path | None] = ()) -> None:
    """An output option's file, checked before the command's work: not empty, not a folder
    or device, not one of the command's `inputs`; exit 2 saying why (dsl/files.py)."""
    from stratplan.dsl.files import FileRefused, check_target
    try:
        check_target(option, target, inputs)
    except FileRefused as exc:
        raise UsageError(str(exc)) from None


def write_output(option: str, target: str, data: bytes,
                 inputs: Sequence[str | Path | None] = ()) -> None:
    """A file an option names (`--plot`, `--html`, `-o`): written through a temporary file
    in its folder, never over one of the command's `inputs`, never into a folder or a
    device; or exit 2 saying why not (dsl/files.py)."""
    from stratplan.dsl.files import FileRefused
    from stratplan.dsl.files import write_output as write_file
    try:
        write_file(option, target, data, inputs)
    except FileRefused as exc:
        raise UsageError(str(exc)) from None


def plan_inputs(path: str, plan: Any, *files: str | None) -> list[str | Path | None]:
    """The files a command over `plan` reads: the plan, the files its options name, and its
    own `use market` and `use series` (an output option must not overwrite any of them)."""
    from stratplan.dsl.paths import inside_plan_folder
    found: list[str | Path | None] = [path, *files]
    for ref in (getattr(plan, "market", None), getattr(plan, "series", None)):
        if ref is not None:
            try:
                found.append(inside_plan_folder(Path(path).parent, ref.path))
            except (OSError, RuntimeError, ValueError):
                continue
    return found


# --- plan files --------------------------------------------------------------------------


def is_folder(raw: str) -> bool:
    """True for a folder, False for a regular file; anything else is a usage error."""
    if not raw:
        raise UsageError("an empty path names no file or folder")
    try:
        mode = os.stat(raw).st_mode
    except (FileNotFoundError, ValueError):  # ValueError: a NUL byte in the path
        raise UsageError(f"no such file or folder: {raw}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {raw}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        return True
    if stat.S_ISREG(mode):
        return False
    raise UsageError(f"{raw} is not a file or folder")


def _folder_plans(top: Path) -> list[Path]:
    """Every *.plan file under a folder. Links to folders are not followed; a folder that
    cannot be listed, or a *.plan entry that is no regular file (a dangling link, a pipe),
    is a usage error, never skipped in silence."""
    found: list[Path] = []
    pending = [top]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as exc:
            raise UsageError(f"cannot read folder {folder}: {exc.strerror or exc}") from None
        for entry in entries:
            path = folder / entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                elif entry.name.endswith(".plan") and not entry.is_dir():
                    if not entry.is_file():
                        os.stat(path)  # a dangling link says why here
                        raise UsageError(f"{path} is not a file or folder")
                    found.append(path)
            except OSError as exc:
                raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return sorted(found)


def plan_files(paths: Sequence[str]) -> list[Path]:
    """The plan files that command-line paths name: files as given, folders searched."""
    files: list[Path] = []
    for raw in paths:
        if is_folder(raw):
            found = _folder_plans(Path(raw))
            if not found:
                raise UsageError(f"no *.plan files in {raw}")
            files += found
        else:
            files.append(Path(raw))
    return files


def read_plan(path: Path) -> bytes | Diagnostic:
    """A plan file's bytes, or SP110 when it is larger than the limit: the size is checked
    before reading and at most limit + 1 bytes are ever read (a file that grows). Only a
    regular file is read (dsl/files.py): anything else, or an unreadable file, is a usage
    error (exit 2)."""
    from stratplan.dsl.files import FileRefused, TooLarge, read_regular
    from stratplan.dsl.parser import MAX_FILE_BYTES, file_too_large
    try:
        return read_regular(path, MAX_FILE_BYTES, "plan file")
    except TooLarge as exc:
        return file_too_large(exc.size, MAX_FILE_BYTES).with_path(str(path))
    except FileRefused as exc:
        raise UsageError(f"cannot read {exc}") from None


def parse_plan(path: Path) -> ParseResult:
    """A plan file parsed (a file over the size limit: no plan, SP110)."""
    from stratplan.dsl.parser import ParseResult, parse
    data = read_plan(path)
    if not isinstance(data, bytes):
        return ParseResult(None, [data])
    return parse(data, str(path))


def with_set(plan: Any, lets: Any, path: str) -> Any:
    """The plan with `--set` values for its lets; a name it has no `let` for is a usage
    error (interpreter/params.py)."""
    from stratplan.interpreter.sweep.params import ParamError, collect, with_lets
    try:
        return with_lets(plan, collect(lets))
    except ParamError as exc:
        raise UsageError(f"{path}: {exc}") from None


def sound_plan(path_text: str, market_opt: str | None, triggers: bool = False,
               lets: Any = None) -> tuple[Any, Market, Dag, LintResult]:
    """Parse and statically check one plan: (plan, market, DAG, lint result). A plan with
    errors raises UnsoundPlan; a folder, an unreadable file or market, UsageError. With
    `triggers`, the DAG holds the trigger bodies too (graph, export; never a run)."""
    from stratplan.interpreter.dag import DagError, build_dag
    from stratplan.interpreter.evaluate import Scope
    from stratplan.interpreter.lint.pipeline import LintResult, resolve_market
    from stratplan.interpreter.lint.rules import RuleContext, run_rules
    if is_folder(path_text):
        raise UsageError(f"{path_text} is a folder; this command takes one plan file")
    path = Path(path_text)
    override = market_option(market_opt)
    parsed = parse_plan(path)
    result = LintResult(str(path), [d.with_path(str(path)) for d in parsed.diagnostics],
                        parsed.source, parsed.plan)
    if parsed.plan is None:
        raise UnsoundPlan(result)
    if lets:  # `--set NAME=VALUE`
        parsed.plan = result.plan = with_set(parsed.plan, lets, path_text)
    market, problem = resolve_market(parsed.plan, path.parent, override)
    found = ([problem] if problem else []) + run_rules(RuleContext(parsed.plan, market,
                                                                   parsed.source))
    errors = [d.with_path(str(path)) for d in found if d.is_error]
    if errors or market is None:
        result.diagnostics = errors
        raise UnsoundPlan(result)
    scope = Scope({let.name: let for let in parsed.plan.lets}, {}, market)
    try:
        dag = build_dag(parsed.plan, scope, triggers=triggers)
    except DagError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return parsed.plan, market, dag, result


# --- option values -----------------------------------------------------------------------


def market_option(value: str | None) -> Market | None:
    """`--market FILE`: the market, or exit 2 saying why it cannot be used."""
    if value is None:
        return None
    from stratplan.executors.errors import MarketError
    from stratplan.interpreter.lint.pipeline import load_market_file
    try:
        return load_market_file(value)
    except MarketError as exc:
        raise UsageError(f"--market: {exc}") from None


def series_option(value: str | None) -> Any:
    """`--series CSV` (v2): the series, or exit 2 saying why it cannot be used."""
    if value is None:
        return None
    from stratplan.interpreter.series.read import SeriesError, load_series
    try:
        return load_series(value)
    except SeriesError as exc:
        raise UsageError(f"--series: {exc}") from None


# --- registering a command ---------------------------------------------------------------


EXIT_CODES = ("exit codes: 0 success, 1 problems found, 2 usage, file or market error, "
              "3 internal error")
PATHS_HELP = ("plan files, or folders searched for *.plan files in every subfolder "
              "(links to folders are not followed)")
PATH_HELP = "the plan file"
MARKET_HELP = ("market YAML file that replaces the plan's `use market` (default: the "
               "plan's `use market`, else the built-in market)")
FORMAT_HELP = "output format (default: %(default)s)"


def add_command(sub: Any, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    """A subcommand's parser, with the exit codes as its epilog."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=summary, description=description,
                                                     epilog=EXIT_CODES)
    return parser


def _assignment(text: str) -> tuple[str, Any]:
    """`--set NAME=VALUE`: VALUE a number as a plan writes one (`50bps`, `1_000`)."""
    from stratplan.interpreter.sweep.params import ParamError, parse_assignment
    try:
        return parse_assignment(text)
    except ParamError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def set_option(parser: argparse.ArgumentParser) -> None:
    """Add `--set NAME=VALUE` (repeatable) to a subcommand."""
    parser.add_argument("--set", action="append", type=_assignment, metavar="NAME=VALUE",
                        help="replace the plan's `let NAME` by the number VALUE (`50bps`, "
                             "`1_000`); repeatable (default: the plan's own values)")


class _Given(argparse.Action):
    """Store the value and note, in `given`, that the option was on the command line: an
    option that only one format uses is refused with another, never ignored in silence."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.given = {*getattr(namespace, "given", ()), self.dest}


def _step_limit(text: str) -> int | None:
    """`--steps`: a whole number of rows in ASCII digits, or `all` (None)."""
    if text == "all":
        return None
    if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
        raise argparse.ArgumentTypeError("the number of rows cannot be negative")
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(
            f"expected a number of rows (digits 0-9) or `all`, not {text!r}")
    try:
        return int(text)
    except ValueError:  # more digits than Python converts
        raise argparse.ArgumentTypeError(f"{len(text):,} digits is not a number of rows") \
            from None


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """`--format` and `--steps` of the commands that print a run report (run, resume)."""
    parser.add_argument("--format", choices=["text", "json"], default="text", help=FORMAT_HELP)
    parser.add_argument("--steps", type=_step_limit, default=40, metavar="N|all", action=_Given,
                        help="rows of the text step table, half from each end, or `all`; "
                             "text format only (default: %(default)s)")


def refuse_steps_with_json(args: argparse.Namespace) -> None:
    """`--steps` sets the rows of the text report: with `--format json`, a usage error."""
    if args.format == "json" and "steps" in getattr(args, "given", ()):
        raise UsageError("--steps sets the rows of the text report; --format json lists "
                         "every step")
