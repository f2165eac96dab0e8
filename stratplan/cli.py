"""The `stratplan` command: lint, fmt, graph, export, run, explain.

Exit codes: 0 success, 1 problems found (lint errors, a reformat needed, a stopped run),
2 usage, file or market errors, 3 internal error. Never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import os
import re
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from stratplan.launch import version_line
from stratplan.terminal import shown

if TYPE_CHECKING:  # the commands import what they use when they run (issue 17: startup)
    from rich.console import Console

    from stratplan.dsl.diagnostics import Diagnostic
    from stratplan.dsl.parser import ParseResult
    from stratplan.executors.market import Market
    from stratplan.interpreter.dag import Dag
    from stratplan.interpreter.lint.pipeline import LintResult

class UsageError(Exception):
    """A bad command line, file or market: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _console(**options: Any) -> Console:
    """rich's console (imported only by the commands that print through it), except that
    a closed pipe ends output quietly with success."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())

    return _Console(**options)


def _error(text: str) -> None:
    """One line on stderr; characters a terminal would act on or hide (a NUL, an escape
    sequence typed into a path) are written as escapes, the rest as they are."""
    print(f"stratplan: {shown(text)}", file=sys.stderr)


def _out() -> Console:
    return _console(soft_wrap=True, highlight=False)


def _is_folder(raw: str) -> bool:
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


def _plan_files(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        if _is_folder(raw):
            found = _folder_plans(Path(raw))
            if not found:
                raise UsageError(f"no *.plan files in {raw}")
            files += found
        else:
            files.append(Path(raw))
    return files


def _read(path: Path) -> bytes | Diagnostic:
    """A plan file's bytes, or SP110 when it is larger than the limit: the size is checked
    before reading and at most limit + 1 bytes are ever read (a file that grows, a special
    file). An unreadable file is a usage error (exit 2)."""
    from stratplan.dsl.parser import MAX_FILE_BYTES, file_too_large
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size <= MAX_FILE_BYTES:
                data = handle.read(MAX_FILE_BYTES + 1)
                if len(data) <= MAX_FILE_BYTES:
                    return data
                size = max(os.fstat(handle.fileno()).st_size, len(data))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return file_too_large(size, MAX_FILE_BYTES).with_path(str(path))


def _lint(path: Path, market: Market | None, series: Any = None,
          lets: Any = None) -> LintResult:
    from stratplan.interpreter.lint.pipeline import LintResult, lint_parsed, lint_source
    data = _read(path)
    if not isinstance(data, bytes):
        return LintResult(str(path), [data])
    if lets:  # `--set NAME=VALUE`: the plan's lets are replaced before the rules run
        from stratplan.dsl.parser import parse
        parsed = parse(data, str(path))
        if parsed.plan is not None:
            parsed.plan = _with_set(parsed.plan, lets, str(path))
        return lint_parsed(parsed, str(path), path.parent, market, series)
    return lint_source(data, str(path), path.parent, market, series)


def _with_set(plan: Any, lets: Any, path: str) -> Any:
    """The plan with `--set` values for its lets; a name it has no `let` for is a usage
    error (interpreter/params.py)."""
    from stratplan.interpreter.sweep.params import ParamError, collect, with_lets
    try:
        return with_lets(plan, collect(lets))
    except ParamError as exc:
        raise UsageError(f"{path}: {exc}") from None


def _series_option(value: str | None) -> Any:
    """`--series CSV` (v2): the series, or exit 2 saying why it cannot be used."""
    if value is None:
        return None
    from stratplan.interpreter.series.read import SeriesError, load_series
    try:
        return load_series(value)
    except SeriesError as exc:
        raise UsageError(f"--series: {exc}") from None


def _parse(path: Path) -> ParseResult:
    from stratplan.dsl.parser import ParseResult, parse
    data = _read(path)
    if not isinstance(data, bytes):
        return ParseResult(None, [data])
    return parse(data, str(path))


def _market_option(value: str | None) -> Market | None:
    if value is None:
        return None
    from stratplan.executors.errors import MarketError
    from stratplan.executors.market import load_market
    try:
        return load_market(value)
    except MarketError as exc:
        raise UsageError(f"--market: {exc}") from None


# --- lint ------------------------------------------------------------------------------


def cmd_lint(args: argparse.Namespace) -> int:
    """Check plans: static rules, then the dry run."""
    try:
        return _lint_files(args)
    except UsageError as exc:
        if args.format == "sarif":  # a SARIF reader gets a log saying why, never nothing
            from stratplan.render import dumps
            from stratplan.sarif import sarif_failed
            sys.stdout.write(dumps(sarif_failed(str(exc))))
        raise


def _lint_files(args: argparse.Namespace) -> int:
    market = _market_option(args.market)
    series = _series_option(args.series)
    files = _plan_files(args.paths)
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
    from stratplan.render import dumps, github, lint_json, plain_stream, plain_text, render_text
    from stratplan.sarif import sarif
    if args.format == "json":
        sys.stdout.write(dumps(lint_json(results)))
    elif args.format == "sarif":
        sys.stdout.write(dumps(sarif(results)))
    elif args.format == "github":
        sys.stdout.write(github(results))
    elif plain_stream(sys.stdout):  # a pipe or a file: the same text, without loading rich
        sys.stdout.write(plain_text(results))
    else:
        render_text(results, _out())
    if args.exit_zero:
        return 0
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    return 1 if errors or (args.strict and warnings) else 0


# --- fmt -------------------------------------------------------------------------------


def _line_end(source: str) -> str:
    """The file's line end: the one it uses most (`\n` on a tie or with none)."""
    crlf = source.count("\r\n")
    cr = source.count("\r") - crlf
    lf = source.count("\n") - crlf
    if crlf > lf and crlf >= cr:
        return "\r\n"
    if cr > lf and cr > crlf:
        return "\r"
    return "\n"


_KEEP_END = re.compile(r"(?<=\n)|(?<=\r)(?!\n)")


def _diff(original: str, formatted: str, path: Path) -> list[str]:
    """A unified diff for a person: control characters escaped, a lone `\r` line end shown
    as `\r` before a real line break, a last line without line end marked as diff does."""
    lines = difflib.unified_diff(
        [line for line in _KEEP_END.split(original) if line],
        [line for line in _KEEP_END.split(formatted) if line],
        f"{path} (original)", f"{path} (formatted)")
    out = []
    for line in lines:
        body = line.rstrip("\r\n")
        end = line[len(body):]
        if end == "\r":
            end = "\\r\n"
        elif not end:
            end = "\n\\ No newline at end of file\n"
        out.append(shown(body, keep="\t") + end)
    return out


def cmd_fmt(args: argparse.Namespace) -> int:
    """Rewrite plans in the canonical layout (or check / show the difference). The layout
    keeps the file's line end (`\n`, `\r\n` or `\r`; a mixed file gets the most used)."""
    from stratplan.dsl.formatter import format_plan
    from stratplan.interpreter.lint.pipeline import LintResult
    from stratplan.render import render_text
    files = _plan_files(args.paths)
    changed = broken = 0
    err = _console(stderr=True, soft_wrap=True, highlight=False)
    for path in files:
        parsed = _parse(path)
        if parsed.plan is None:
            broken += 1
            render_text([LintResult(str(path), parsed.diagnostics, parsed.source)], err)
            continue
        formatted = format_plan(parsed.plan)
        end = _line_end(parsed.source)
        if end != "\n":
            formatted = formatted.replace("\n", end)
        if formatted == parsed.source:
            continue
        changed += 1
        if args.diff:
            sys.stdout.writelines(_diff(parsed.source, formatted, path))
        if args.check or args.diff:
            if not args.diff:
                print(f"would reformat {shown(str(path))}")
        else:
            try:
                _replace(path, formatted.encode("utf-8"))
            except OSError as exc:
                raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
            print(f"reformatted {shown(str(path))}")
    if broken:
        return 2
    if args.check or args.diff:
        if not changed:
            print(f"{len(files)} file{'s' if len(files) != 1 else ''} already formatted")
        return 1 if changed else 0
    return 0


def _replace(path: Path, data: bytes) -> None:
    """Write a file whole or not at all: a crash or a full disk mid-write never leaves half a
    plan (a temporary file beside it, flushed, then renamed over it; its mode is kept)."""
    temporary = path.with_name(f".{path.name}.stratplan-fmt-{os.getpid()}")
    try:
        with open(temporary, "xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# --- plans that must be sound before graph, export and run --------------------------------


def _sound_plan(path_text: str, market_opt: str | None, triggers: bool = False,
                lets: Any = None) -> tuple[Any, Market, Dag, LintResult]:
    """Parse and statically check one plan; UsageError-free failures return via SystemExit.
    With `triggers`, the DAG holds the trigger bodies too (graph, export; never a run)."""
    from stratplan.interpreter.dag import DagError, build_dag
    from stratplan.interpreter.evaluate import Scope
    from stratplan.interpreter.lint.pipeline import LintResult, resolve_market
    from stratplan.interpreter.lint.rules import RuleContext, run_rules
    if _is_folder(path_text):
        raise UsageError(f"{path_text} is a folder; this command takes one plan file")
    path = Path(path_text)
    override = _market_option(market_opt)
    parsed = _parse(path)
    result = LintResult(str(path), [d.with_path(str(path)) for d in parsed.diagnostics],
                        parsed.source, parsed.plan)
    if parsed.plan is None:
        raise _Unsound(result)
    if lets:  # `--set NAME=VALUE`
        parsed.plan = result.plan = _with_set(parsed.plan, lets, path_text)
    market, problem = resolve_market(parsed.plan, path.parent, override)
    found = ([problem] if problem else []) + run_rules(RuleContext(parsed.plan, market,
                                                                   parsed.source))
    errors = [d.with_path(str(path)) for d in found if d.is_error]
    if errors or market is None:
        result.diagnostics = errors
        raise _Unsound(result)
    scope = Scope({let.name: let for let in parsed.plan.lets}, {}, market)
    try:
        dag = build_dag(parsed.plan, scope, triggers=triggers)
    except DagError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return parsed.plan, market, dag, result


class _Unsound(Exception):
    def __init__(self, result: LintResult) -> None:
        super().__init__("plan has errors")
        self.result = result


def cmd_graph(args: argparse.Namespace) -> int:
    """Draw the instruction DAG."""
    from stratplan.interpreter.evaluate import Scope
    from stratplan.interpreter.export import graph_dot, graph_json, graph_mermaid
    from stratplan.render import dumps
    plan, market, dag, _ = _sound_plan(args.path, args.market, triggers=True)
    scope = Scope({let.name: let for let in plan.lets}, {}, market)  # labels show values
    if args.format == "dot":
        sys.stdout.write(graph_dot(dag, plan.name, scope))
    elif args.format == "mermaid":
        sys.stdout.write(graph_mermaid(dag, scope))
    else:
        sys.stdout.write(dumps(graph_json(dag, scope)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Print the unrolled instruction list."""
    import yaml

    from stratplan.interpreter.evaluate import Scope
    from stratplan.interpreter.export import export_entries
    plan, market, dag, _ = _sound_plan(args.path, args.market, triggers=True)
    scope = Scope({let.name: let for let in plan.lets}, {}, market)
    data = {"plan": plan.name, "instructions": list(export_entries(dag, scope))}
    if args.format == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        # Non-ASCII text (descriptions, assert messages) is written as YAML escapes: PyYAML
        # writes bidi controls such as U+202E raw otherwise, and they would reach a terminal.
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=False))
    return 0


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
    from stratplan.render import dumps
    from stratplan.runview import render_run
    _refuse_steps_with_json(args)
    plan, market, dag, checked = _sound_plan(args.path, args.market, lets=args.set)
    if args.series is not None and args.journal is not None:
        raise UsageError("--series cannot be journaled; run without --journal")
    market, dag = _series_start(args, plan, market, dag)  # journaled too: the same prices
    if args.journal is not None:
        from stratplan.interpreter.journal import run_journaled
        return _journaled(args, args.path, lambda: run_journaled(
            plan, market, args.journal, source=checked.source, plan_path=args.path,
            market_path=args.market, dag=dag))
    try:
        result = run_plan(plan, market, dag=dag)
    except DagError as exc:
        raise UsageError(f"{args.path}: {exc}") from None
    if args.format == "json":
        sys.stdout.write(dumps(result.report))
    else:
        render_run(result.report, _out(), args.path, args.steps)
    if plan.triggers:  # v2: `run` is one instant; the triggers live over time
        count = len(plan.triggers)
        note = (f"{count} trigger{'s' if count > 1 else ''} not run: `stratplan backtest` "
                "runs the phases and then the triggers over a series")
        if args.format == "json":
            _error(note)
        else:
            _out().print(note, markup=False, highlight=False)
    return 0 if result.report["status"] == "ok" else 1


def _series_start(args: argparse.Namespace, plan: Any, market: Market,
                  dag: Dag) -> tuple[Market, Dag]:
    """With `--series` or the plan's `use series` (v2), the phases run at the series'
    first time: its prices and rates; otherwise the market as it is."""
    series = _series_option(args.series)
    if series is None and plan.series is not None:
        from stratplan.interpreter.lint.with_series import resolve_series
        series, problem = resolve_series(plan, Path(args.path).parent)
        if problem is not None:
            raise UsageError(f"{args.path}:{problem.span.line}: {problem.message}")
    if series is None:
        return market, dag
    from stratplan.interpreter.dag import DagError, build_dag
    from stratplan.interpreter.evaluate import Scope
    from stratplan.interpreter.time.backtest import start_market
    market = start_market(plan, market, series)
    try:
        return market, build_dag(plan, Scope({let.name: let for let in plan.lets}, {}, market))
    except DagError as exc:
        raise UsageError(f"{args.path}: {exc}") from None


def _journaled(args: argparse.Namespace, path: str, start: Any) -> int:
    """A journaled run or resume (docs/journal.md), reported as `run` reports."""
    from stratplan.interpreter.dag import DagError
    from stratplan.interpreter.journal import JournalError
    from stratplan.render import dumps
    from stratplan.runview import render_run
    try:
        result = start()
    except (JournalError, DagError) as exc:
        raise UsageError(str(exc)) from None
    for notice in result.notices:
        _error(notice)
    if args.format == "json":
        sys.stdout.write(dumps(result.report))
    else:
        render_run(result.report, _out(), result.plan_path or path, args.steps)
    return 0 if result.report["status"] == "ok" else 1


def cmd_resume(args: argparse.Namespace) -> int:
    """Finish a journaled run after a crash (or replay one that ended) and report."""
    from stratplan.interpreter.journal import resume
    _refuse_steps_with_json(args)
    return _journaled(args, args.journal, lambda: resume(args.journal))


def cmd_explain(args: argparse.Namespace) -> int:
    """Print a rule's page, or the list of codes."""
    from stratplan.interpreter.lint.codes import CODES, explain
    if args.code is None:
        for code, (severity, title) in CODES.items():
            print(f"{code}  {severity.value:<7}  {title}")
        return 0
    page = explain(args.code)
    if page is None:
        raise UsageError(f"unknown code {args.code!r}; `stratplan explain` lists them")
    sys.stdout.write(page)
    return 0


def cmd_lsp(args: argparse.Namespace) -> int:
    """Serve the language server over stdio until the client exits."""
    from stratplan.lsp import serve
    return serve()


class _Given(argparse.Action):
    """Store the value and note, in `given`, that the option was on the command line: an
    option that only one format uses is refused with another, never ignored in silence."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.given = {*getattr(namespace, "given", ()), self.dest}


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    """`--format` and `--steps` of the commands that print a run report (run, resume)."""
    parser.add_argument("--format", choices=["text", "json"], default="text", help=_FORMAT_HELP)
    parser.add_argument("--steps", type=_step_limit, default=40, metavar="N|all", action=_Given,
                        help="rows of the text step table, half from each end, or `all`; "
                             "text format only (default: %(default)s)")


def _refuse_steps_with_json(args: argparse.Namespace) -> None:
    if args.format == "json" and "steps" in getattr(args, "given", ()):
        raise UsageError("--steps sets the rows of the text report; --format json lists "
                         "every step")


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


def _assignment(text: str) -> tuple[str, Any]:
    """`--set NAME=VALUE`: VALUE a number as a plan writes one (`50bps`, `1_000`)."""
    from stratplan.interpreter.sweep.params import ParamError, parse_assignment
    try:
        return parse_assignment(text)
    except ParamError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _set_option(parser: argparse.ArgumentParser) -> None:
    """Add `--set NAME=VALUE` (repeatable) to a subcommand."""
    parser.add_argument("--set", action="append", type=_assignment, metavar="NAME=VALUE",
                        help="replace the plan's `let NAME` by the number VALUE (`50bps`, "
                             "`1_000`); repeatable (default: the plan's own values)")


_EXIT_CODES = ("exit codes: 0 success, 1 problems found, 2 usage, file or market error, "
               "3 internal error")
_PATHS_HELP = ("plan files, or folders searched for *.plan files in every subfolder "
               "(links to folders are not followed)")
_PATH_HELP = "the plan file"
_MARKET_HELP = ("market YAML file that replaces the plan's `use market` (default: the "
                "plan's `use market`, else the built-in market)")
_FORMAT_HELP = "output format (default: %(default)s)"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; every option's help says its default.

    With `command` (a command line's first word, when it names a command), only that
    subcommand is added: each subparser costs argparse several gettext lookups (file
    checks for translations) and the whole set ~10 ms, a twentieth of a small lint
    (issue 17). A command's parser is the same either way (tested)."""
    parser = _Parser(prog="stratplan", description="Check, draw, export and run strategy plans.",
                     epilog=_EXIT_CODES)
    parser.add_argument("--version", action="version", version=version_line(),
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, add in _COMMANDS.items():
        if command is None or name == command:
            add(sub)
    return parser


def _command(sub: Any, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=summary, description=description,
                                                     epilog=_EXIT_CODES)
    return parser


def _add_lint(sub: Any) -> None:
    lint = _command(sub, "lint", "check plans (static rules and dry run)",
                    "Check plans: the static rules, then the dry run against the market.")
    lint.add_argument("paths", nargs="+", metavar="FILE|DIR", help=_PATHS_HELP)
    lint.add_argument("--format", choices=["text", "json", "sarif", "github"], default="text",
                      help=_FORMAT_HELP)
    lint.add_argument("--market", metavar="FILE", help=_MARKET_HELP)
    lint.add_argument("--series", metavar="CSV", help="series that replaces the plans' `use "
                      "series`, making the dry run the backtest (default: each plan's own)")
    lint.add_argument("--strict", action="store_true",
                      help="warnings fail too, exit 1 (default: only errors fail)")
    lint.add_argument("--exit-zero", action="store_true",
                      help="exit 0 even with errors (default: exit 1 on errors)")
    _set_option(lint)
    lint.set_defaults(func=cmd_lint)


def _add_fmt(sub: Any) -> None:
    fmt = _command(sub, "fmt", "format plans in the canonical layout (rewrites files in place)",
                   "Format plans in the canonical layout. Without --check or --diff, every file "
                   "that is not in that layout is rewritten in place; each file keeps its line "
                   "ends (\\n, \\r\\n or \\r).")
    fmt.add_argument("paths", nargs="+", metavar="FILE|DIR", help=_PATHS_HELP)
    fmt.add_argument("--check", action="store_true",
                     help="write nothing, list the files that would change, exit 1 if any "
                          "(default: rewrite them in place)")
    fmt.add_argument("--diff", action="store_true",
                     help="write nothing, print the changes as a unified diff, exit 1 if any "
                          "(default: rewrite the files in place)")
    fmt.set_defaults(func=cmd_fmt)


def _add_graph(sub: Any) -> None:
    graph = _command(sub, "graph", "draw the instruction DAG",
                     "Draw a sound plan's instruction DAG.")
    graph.add_argument("path", metavar="FILE", help=_PATH_HELP)
    graph.add_argument("--format", choices=["dot", "mermaid", "json"], default="dot",
                       help=_FORMAT_HELP)
    graph.add_argument("--market", metavar="FILE", help=_MARKET_HELP)
    graph.set_defaults(func=cmd_graph)


def _add_export(sub: Any) -> None:
    export = _command(sub, "export", "print the unrolled instruction list",
                      "Print a sound plan's unrolled instruction list.")
    export.add_argument("path", metavar="FILE", help=_PATH_HELP)
    export.add_argument("--format", choices=["yaml", "json"], default="yaml", help=_FORMAT_HELP)
    export.add_argument("--market", metavar="FILE", help=_MARKET_HELP)
    export.set_defaults(func=cmd_export)


def _add_run(sub: Any) -> None:
    run = _command(sub, "run", "run a plan against simulated venues",
                   "Run a sound plan against the simulated venues and print the report.")
    run.add_argument("path", metavar="FILE", help=_PATH_HELP)
    _add_report_options(run)
    run.add_argument("--market", metavar="FILE", help=_MARKET_HELP)
    run.add_argument("--series", metavar="CSV", help="run the phases at the first time of "
                     "this series (default: the plan's `use series`, else the market)")
    run.add_argument("--journal", metavar="FILE",
                     help="write an append-only journal (SQLite) so that `stratplan resume "
                          "FILE` can finish the run after a crash (default: no journal)")
    _set_option(run)
    run.set_defaults(func=cmd_run)


def _add_backtest(sub: Any) -> None:
    from stratplan.backtestview import register
    register(sub)
    _set_option(sub.choices["backtest"])


def _add_sweep(sub: Any) -> None:
    from stratplan.sweepview import register
    register(sub)


def _add_series(sub: Any) -> None:
    from stratplan.seriesview import register
    register(sub)


def _add_resume(sub: Any) -> None:
    resume_cmd = _command(
        sub, "resume", "finish a journaled run after a crash",
        "Resume a run started with `run --journal FILE`: replay what the journal holds, ask "
        "the venues about orders sent but not recorded, run the rest, and print the report "
        "`run` prints. A journal whose run ended is only replayed (docs/journal.md).")
    resume_cmd.add_argument("journal", metavar="FILE", help="the journal file")
    _add_report_options(resume_cmd)
    resume_cmd.set_defaults(func=cmd_resume)


def _add_explain(sub: Any) -> None:
    explain_cmd = _command(sub, "explain", "explain a diagnostic code",
                           "Print a diagnostic code's page, or the list of codes.")
    explain_cmd.add_argument("code", nargs="?", metavar="CODE",
                             help="a code such as SP100, any case (default: list every code)")
    explain_cmd.set_defaults(func=cmd_explain)


def _add_lsp(sub: Any) -> None:
    lsp = sub.add_parser("lsp", help="run the language server (LSP over stdio)",
                         description="Serve the Language Server Protocol over stdin and "
                                     "stdout, for editors.")
    lsp.add_argument("--stdio", action="store_true",
                     help="talk over stdin and stdout (the default and only transport)")
    lsp.set_defaults(func=cmd_lsp)


# Every command, in the order `stratplan --help` lists them.
_COMMANDS = {"lint": _add_lint, "fmt": _add_fmt, "graph": _add_graph, "export": _add_export,
             "run": _add_run, "backtest": _add_backtest, "sweep": _add_sweep,
             "series": _add_series, "resume": _add_resume, "explain": _add_explain,
             "lsp": _add_lsp}


def _command_word(argv: Sequence[str]) -> str | None:
    """The command a command line names in its first word, if it names one (before a
    command only `-h` and `--version` are options, and they take no value)."""
    return argv[0] if argv and argv[0] in _COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(_command_word(argv))
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        from stratplan.dsl.decimals import arithmetic
        with arithmetic():  # every command computes with stratplan's 40-digit context
            code: int = args.func(args)
        return code
    except UsageError as exc:
        _error(f"error: {exc}")
        return 2
    except _Unsound as unsound:
        from stratplan.render import render_text
        render_text([unsound.result], _console(stderr=True, soft_wrap=True, highlight=False))
        return 1
    except KeyboardInterrupt:
        print("stratplan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # the last line of defence: one line, exit 3, no traceback
        if _is_registry_error(exc):
            _error(f"error: {exc}")
            return 2
        _error(f"internal error: {type(exc).__name__}: {exc}")
        return 3


def _is_registry_error(exc: Exception) -> bool:
    """A broken executor plugin (exit 2). The registry is imported only by the commands
    that run plans; when it is not loaded, nothing can have raised its error."""
    registry = sys.modules.get("stratplan.executors.registry")
    return registry is not None and isinstance(exc, registry.RegistryError)


def _tolerant_streams() -> None:
    """A character the terminal's encoding cannot hold (a plan's `ü` under LANG=C) is
    written as an escape, as stderr already does, instead of failing the command."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="backslashreplace")


def run() -> NoReturn:
    """Console-script wrapper; a closed pipe (`stratplan ... | head`) is not an error."""
    _tolerant_streams()
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's documented recipe: point stdout at devnull so the exit flush is silent.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0 if code == 0 else code
    sys.exit(code)

