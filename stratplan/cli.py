"""The `stratplan` command: lint, fmt, graph, export, run, explain.

Exit codes: 0 success, 1 problems found (lint errors, a reformat needed, a stopped run),
2 usage, file or market errors, 3 internal error. Never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml
from rich.console import Console

from stratplan.dsl.formatter import format_plan
from stratplan.dsl.parser import parse
from stratplan.executors.errors import MarketError
from stratplan.executors.market import Market, load_market
from stratplan.executors.registry import RegistryError
from stratplan.interpreter.check import LintResult, lint_source, resolve_market
from stratplan.interpreter.codes import CODES, explain
from stratplan.interpreter.dag import Dag, DagError, build_dag
from stratplan.interpreter.evaluate import Scope
from stratplan.interpreter.export import export_entries, graph_dot, graph_json, graph_mermaid
from stratplan.interpreter.rules import RuleContext, run_rules
from stratplan.render import dumps, github, lint_json, render_text, sarif
from stratplan.runview import render_run


class UsageError(Exception):
    """A bad command line, file or market: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


class _Console(Console):
    """rich's console, except that a closed pipe ends output quietly with success."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _error(text: str) -> None:
    """One line on stderr; characters a terminal would act on or hide (a NUL, an escape
    sequence typed into a path) are written as escapes, the rest as they are."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                    for c in text)
    print(f"stratplan: {shown}", file=sys.stderr)


def _out() -> Console:
    return _Console(soft_wrap=True, highlight=False)


def _plan_files(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.plan") if p.is_file())
            if not found:
                raise UsageError(f"no *.plan files in {raw}")
            files += found
        elif path.is_file():
            files.append(path)
        elif path.exists():
            raise UsageError(f"{raw} is not a file or folder")
        else:
            raise UsageError(f"no such file or folder: {raw}")
    return files


def _read(path: Path) -> bytes:
    """A plan file's bytes; an unreadable file is a usage error (exit 2)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _market_option(value: str | None) -> Market | None:
    if value is None:
        return None
    try:
        return load_market(value)
    except MarketError as exc:
        raise UsageError(f"--market: {exc}") from None


# --- lint ------------------------------------------------------------------------------


def cmd_lint(args: argparse.Namespace) -> int:
    """Check plans: static rules, then the dry run."""
    market = _market_option(args.market)
    files = _plan_files(args.paths)
    results: list[LintResult] = []
    console_err = Console(stderr=True)
    show_progress = console_err.is_terminal and len(files) > 20 and args.format == "text"
    if show_progress:
        from rich.progress import track
        for path in track(files, description="linting", console=console_err, transient=True):
            results.append(lint_source(_read(path), str(path), path.parent, market))
    else:
        results = [lint_source(_read(path), str(path), path.parent, market) for path in files]
    if args.format == "json":
        sys.stdout.write(dumps(lint_json(results)))
    elif args.format == "sarif":
        sys.stdout.write(dumps(sarif(results)))
    elif args.format == "github":
        sys.stdout.write(github(results))
    else:
        render_text(results, _out())
    if args.exit_zero:
        return 0
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    return 1 if errors or (args.strict and warnings) else 0


# --- fmt -------------------------------------------------------------------------------


def cmd_fmt(args: argparse.Namespace) -> int:
    """Rewrite plans in the canonical layout (or check / show the difference)."""
    files = _plan_files(args.paths)
    changed = broken = 0
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    for path in files:
        parsed = parse(_read(path), str(path))
        if parsed.plan is None:
            broken += 1
            render_text([LintResult(str(path), parsed.diagnostics, parsed.source)], err)
            continue
        formatted = format_plan(parsed.plan)
        if formatted == parsed.source:
            continue
        changed += 1
        if args.diff:
            sys.stdout.writelines(difflib.unified_diff(
                parsed.source.splitlines(keepends=True), formatted.splitlines(keepends=True),
                f"{path} (original)", f"{path} (formatted)"))
        if args.check or args.diff:
            if not args.diff:
                print(f"would reformat {path}")
        else:
            path.write_text(formatted, encoding="utf-8")
            print(f"reformatted {path}")
    if broken:
        return 2
    if args.check or args.diff:
        if not changed:
            print(f"{len(files)} file{'s' if len(files) != 1 else ''} already formatted")
        return 1 if changed else 0
    return 0


# --- plans that must be sound before graph, export and run --------------------------------


def _sound_plan(path_text: str, market_opt: str | None) -> tuple[Any, Market, Dag, LintResult]:
    """Parse and statically check one plan; UsageError-free failures return via SystemExit."""
    path = Path(path_text)
    if path.is_dir():
        raise UsageError(f"{path_text} is a folder; this command takes one plan file")
    (path,) = _plan_files([path_text])
    override = _market_option(market_opt)
    parsed = parse(_read(path), str(path))
    result = LintResult(str(path), [d.with_path(str(path)) for d in parsed.diagnostics],
                        parsed.source, parsed.plan)
    if parsed.plan is None:
        raise _Unsound(result)
    market, problem = resolve_market(parsed.plan, path.parent, override)
    found = ([problem] if problem else []) + run_rules(RuleContext(parsed.plan, market,
                                                                   parsed.source))
    errors = [d.with_path(str(path)) for d in found if d.is_error]
    if errors or market is None:
        result.diagnostics = errors
        raise _Unsound(result)
    scope = Scope({let.name: let for let in parsed.plan.lets}, {}, market)
    try:
        dag = build_dag(parsed.plan, scope)
    except DagError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return parsed.plan, market, dag, result


class _Unsound(Exception):
    def __init__(self, result: LintResult) -> None:
        super().__init__("plan has errors")
        self.result = result


def cmd_graph(args: argparse.Namespace) -> int:
    """Draw the instruction DAG."""
    plan, _, dag, _ = _sound_plan(args.path, args.market)
    if args.format == "dot":
        sys.stdout.write(graph_dot(dag, plan.name))
    elif args.format == "mermaid":
        sys.stdout.write(graph_mermaid(dag))
    else:
        sys.stdout.write(dumps(graph_json(dag)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Print the unrolled instruction list."""
    plan, market, dag, _ = _sound_plan(args.path, args.market)
    scope = Scope({let.name: let for let in plan.lets}, {}, market)
    data = {"plan": plan.name, "instructions": list(export_entries(dag, scope))}
    if args.format == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Execute a plan against simulated venues and report."""
    from stratplan.interpreter.run import run_plan
    plan, market, dag, _ = _sound_plan(args.path, args.market)
    try:
        result = run_plan(plan, market, dag=dag)
    except DagError as exc:
        raise UsageError(f"{args.path}: {exc}") from None
    if args.format == "json":
        sys.stdout.write(dumps(result.report))
    else:
        render_run(result.report, _out(), args.path, args.steps)
    return 0 if result.report["status"] == "ok" else 1


def cmd_explain(args: argparse.Namespace) -> int:
    """Print a rule's page, or the list of codes."""
    if not args.code:
        for code, (severity, title) in CODES.items():
            print(f"{code}  {severity.value:<7}  {title}")
        return 0
    page = explain(args.code)
    if page is None:
        raise UsageError(f"unknown code {args.code!r}; `stratplan explain` lists them")
    sys.stdout.write(page)
    return 0


def _step_limit(text: str) -> int | None:
    """`--steps`: a whole number of rows, or `all` (None)."""
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of rows or `all`, not {text!r}") \
            from None
    if value < 0:
        raise argparse.ArgumentTypeError("the number of rows cannot be negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="stratplan", description="Check, draw, export and run strategy plans.")
    parser.add_argument("--version", action="version", version="stratplan 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    lint = sub.add_parser("lint", help="check plans (static rules and dry run)")
    lint.add_argument("paths", nargs="+", metavar="FILE|DIR")
    lint.add_argument("--format", choices=["text", "json", "sarif", "github"], default="text")
    lint.add_argument("--market", metavar="FILE", help="market YAML (replaces `use market`)")
    lint.add_argument("--strict", action="store_true", help="warnings fail too")
    lint.add_argument("--exit-zero", action="store_true", help="exit 0 even with errors")
    lint.set_defaults(func=cmd_lint)

    fmt = sub.add_parser("fmt", help="format plans in the canonical layout")
    fmt.add_argument("paths", nargs="+", metavar="FILE|DIR")
    fmt.add_argument("--check", action="store_true", help="only report files that would change")
    fmt.add_argument("--diff", action="store_true", help="print the changes, write nothing")
    fmt.set_defaults(func=cmd_fmt)

    graph = sub.add_parser("graph", help="draw the instruction DAG")
    graph.add_argument("path", metavar="FILE")
    graph.add_argument("--format", choices=["dot", "mermaid", "json"], default="dot")
    graph.add_argument("--market", metavar="FILE")
    graph.set_defaults(func=cmd_graph)

    export = sub.add_parser("export", help="print the unrolled instruction list")
    export.add_argument("path", metavar="FILE")
    export.add_argument("--format", choices=["yaml", "json"], default="yaml")
    export.add_argument("--market", metavar="FILE")
    export.set_defaults(func=cmd_export)

    run = sub.add_parser("run", help="run a plan against simulated venues")
    run.add_argument("path", metavar="FILE")
    run.add_argument("--format", choices=["text", "json"], default="text")
    run.add_argument("--steps", type=_step_limit, default=40, metavar="N|all",
                     help="rows of the text step table, half from each end (default 40)")
    run.add_argument("--market", metavar="FILE")
    run.set_defaults(func=cmd_run)
    from stratplan.backtestview import register as register_backtest
    register_backtest(sub)

    explain_cmd = sub.add_parser("explain", help="explain a diagnostic code")
    explain_cmd.add_argument("code", nargs="?", metavar="CODE")
    explain_cmd.set_defaults(func=cmd_explain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        code: int = args.func(args)
        return code
    except UsageError as exc:
        _error(f"error: {exc}")
        return 2
    except _Unsound as unsound:
        render_text([unsound.result], Console(stderr=True, soft_wrap=True, highlight=False))
        return 1
    except RegistryError as exc:
        _error(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        print("stratplan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # the last line of defence: one line, exit 3, no traceback
        _error(f"internal error: {type(exc).__name__}: {exc}")
        return 3


def run() -> NoReturn:
    """Console-script wrapper; a closed pipe (`stratplan ... | head`) is not an error."""
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's documented recipe: point stdout at devnull so the exit flush is silent.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0 if code == 0 else code
    sys.exit(code)

