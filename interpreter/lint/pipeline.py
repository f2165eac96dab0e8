"""The lint pipeline: parse, resolve the market, static rules, then the dry run; `# noqa`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stratplan.dsl.comments import NOQA
from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.diagnostics import Diagnostic
from stratplan.dsl.files import FileRefused, read_regular
from stratplan.dsl.models import Plan
from stratplan.dsl.parser import MAX_FILE_BYTES, ParseResult, parse
from stratplan.dsl.paths import OutsideFolder, inside_plan_folder
from stratplan.dsl.performance import paused_gc
from stratplan.dsl.spans import Span, split_lines
from stratplan.executors.errors import MarketError
from stratplan.executors.market import (
    MAX_MARKET_BYTES,
    Market,
    default_market,
    market_from_text,
)
from stratplan.executors.registry import discover
from stratplan.interpreter.dag import DagError, dry_run_nodes, iteration_of
from stratplan.interpreter.engine import Engine, run_sync
from stratplan.interpreter.lint.rules import RuleContext, diag, run_rules

if TYPE_CHECKING:
    from stratplan.interpreter.series.read import Series


@dataclass
class LintResult:
    """What linting one plan found."""

    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source: str = ""
    plan: Plan | None = None

    @property
    def errors(self) -> int:
        """How many errors."""
        return sum(1 for d in self.diagnostics if d.severity.value == "error")

    @property
    def warnings(self) -> int:
        """How many warnings."""
        return sum(1 for d in self.diagnostics if d.severity.value == "warning")


def load_market_file(path: str | Path) -> Market:
    """A market file read through the one file opener (dsl/files.py: a regular file of at
    most 1 MiB; a FIFO or device is refused before a byte is read) and validated;
    MarketError with one line saying why not."""
    try:
        data = read_regular(path, MAX_MARKET_BYTES, "market file")
    except FileRefused as exc:
        raise MarketError(str(exc)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MarketError(f"{path}: not UTF-8 text") from None
    return market_from_text(text, str(path))


def resolve_market(plan: Plan, plan_dir: Path | None,
                   override: Market | None) -> tuple[Market | None, Diagnostic | None]:
    """The market a plan runs against, or an SP111 saying why `use market` cannot be used."""
    if override is not None:
        return override, None
    if plan.market is None:
        return default_market(), None
    span = plan.market.span
    try:
        target = inside_plan_folder(plan_dir, plan.market.path)
    except OutsideFolder:
        return None, diag("SP111", f"market file {plan.market.path!r} is outside the plan's "
                          "folder", span, "keep the market file beside the plan, or pass "
                          "--market on the command line")
    except (OSError, RuntimeError, ValueError) as exc:
        return None, diag("SP111", f"market path {plan.market.path!r} cannot be used: {exc}", span)
    try:
        return load_market_file(target), None
    except MarketError as exc:
        return None, diag("SP111", f"market file cannot be used: {exc}", span)


def apply_noqa(found: list[Diagnostic], noqa: dict[int, frozenset[str] | None],
               source: str) -> list[Diagnostic]:
    """`# noqa` silences warnings and infos on its line; errors stay (a plan that lints clean
    must run), and a `# noqa` naming an error's code gets SP402 at the comment."""
    if not noqa:
        return found
    kept: list[Diagnostic] = []
    named: set[tuple[int, str]] = set()
    for diagnostic in found:
        line = diagnostic.span.line
        if line not in noqa:
            kept.append(diagnostic)
            continue
        codes = noqa[line]
        if diagnostic.is_error:
            kept.append(diagnostic)
            if codes is not None and diagnostic.code in codes:
                named.add((line, diagnostic.code))
        elif codes is not None and diagnostic.code not in codes:
            kept.append(diagnostic)
    if named:
        lines = split_lines(source)
        for line, code in sorted(named):
            text = lines[line - 1] if line <= len(lines) else ""
            match = NOQA.search(text)
            start, end = (match.start() + 1, match.end() + 1) if match else (1, len(text) + 1)
            warning = diag("SP402", f"`# noqa` cannot silence error {code}: errors always "
                           "count, so that a plan that lints clean runs",
                           Span(line=line, column=start, end_line=line, end_column=end),
                           f"fix the {code} error and remove {code} from the `# noqa`")
            if not (noqa[line] and "SP402" in (noqa[line] or ())):
                kept.append(warning)
    return kept


def dry_run(plan: Plan, market: Market) -> list[Diagnostic]:
    """SP3xx diagnostics from running the plan against the market from its holdings."""
    engine = Engine(plan, market, discover())
    try:
        nodes = dry_run_nodes(plan, engine.scope)
    except DagError:
        return []
    outcome = run_sync(engine.run_sequential(nodes, steps=False))
    found: list[Diagnostic] = []
    seen: set[tuple[str, int]] = set()
    for code, message, span, node_id in outcome.warnings:
        if (code, span.line) in seen:
            continue
        seen.add((code, span.line))
        found.append(diag(code, _in_iteration(message, iteration_of(node_id)), span))
    failure = outcome.failure
    if failure is not None:
        code = failure.code if failure.code.startswith("SP") else "SP300"
        found.append(diag(code, _in_iteration(failure.message, iteration_of(failure.node)),
                          failure.span))
    return found


def _in_iteration(message: str, iteration: str | None) -> str:
    return f"{message} (first in iteration {iteration})" if iteration else message


def lint_parsed(parsed: ParseResult, path: str, plan_dir: Path | None = None,
                market: Market | None = None, series: Series | None = None) -> LintResult:
    """Lint an already parsed plan; `series` (the command line's `--series`) replaces the
    plan's `use series`."""
    result = LintResult(path=path, source=parsed.source, plan=parsed.plan)
    if parsed.plan is None:
        result.diagnostics = [d.with_path(path) for d in parsed.diagnostics]
        return result
    plan = parsed.plan
    with arithmetic():
        resolved, problem = resolve_market(plan, plan_dir, market)
        found = [problem] if problem else []
        series_problem = None
        if series is None and plan.series is not None:
            # v2 (imported only for a plan that uses a series: a plain lint loads no backtest)
            from stratplan.interpreter.lint.with_series import resolve_series
            series, series_problem = resolve_series(plan, plan_dir)
        if series_problem is None and series is not None and resolved is not None:
            series_problem = _series_in_market(plan, series, resolved)
        if series_problem is not None:
            found.append(series_problem)
        found += run_rules(RuleContext(plan, resolved, parsed.source))
        if resolved is not None and not any(d.is_error for d in found):
            # v2: with a series the dry run is the whole backtest (LANGUAGE.md section 8).
            if series is not None:
                from stratplan.interpreter.lint.with_series import backtest_diagnostics
                found += backtest_diagnostics(plan, resolved, series)
            else:
                found += dry_run(plan, resolved)
    found = apply_noqa(found, parsed.noqa, parsed.source)
    found.sort(key=lambda d: (d.span.line, d.span.column, d.code))
    result.diagnostics = [d.with_path(path) for d in found]
    return result


def _series_in_market(plan: Plan, series: Series, market: Market) -> Diagnostic | None:
    """SP500 at `use series` (or the plan's first line, for `--series`) when a column names
    an asset or venue the market does not know."""
    from stratplan.interpreter.series.read import unknown_in_market

    problem = unknown_in_market(series, market)
    if problem is None:
        return None
    span = plan.series.span if plan.series is not None else plan.span
    return diag("SP500", f"series cannot be used: {problem}", span,
                "fix the column's name, or add the asset or venue to the market")


def lint_source(data: str | bytes, path: str, plan_dir: Path | None = None,
                market: Market | None = None, series: Series | None = None,
                max_bytes: int | None = MAX_FILE_BYTES) -> LintResult:
    """Lint plan text; never raises on bad input. `max_bytes`: see `parser.decode` (only a
    program embedding the linter lifts LANGUAGE.md's file limit)."""
    with paused_gc():
        return lint_parsed(parse(data, path, max_bytes), path, plan_dir, market, series)
