"""What the server knows about one version of a document: parse, lint, market, dry run.

`analyse` does what `stratplan lint` does, on the editor's unsaved text; the dry-run
replay behind hovers is computed on first use. The lint's diagnostics become LSP
diagnostics here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types

from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.diagnostics import Diagnostic, Severity
from stratplan.dsl.models import Plan
from stratplan.dsl.parser import ParseResult, parse
from stratplan.dsl.paths import inside_plan_folder
from stratplan.executors.errors import MarketError
from stratplan.executors.market import Market, default_market
from stratplan.interpreter.lint.pipeline import (
    LintResult,
    lint_parsed,
    load_market_file,
    resolve_market,
)
from stratplan.lsp.positions import Positions
from stratplan.lsp.replay import Replay, replay_plan
from stratplan.lsp.tokens import tokens


@dataclass
class Analysis:
    """Everything the server knows about one version of a document."""

    text: str
    path: str
    plan_dir: Path | None
    parsed: ParseResult
    lint: LintResult
    market: Market | None
    _replay: Replay | None = None
    replay_market: Market | None = None  # v2: the market at a series' first time

    @property
    def plan(self) -> Plan | None:
        """The parsed plan, or None when the text does not parse."""
        return self.parsed.plan

    def replay(self) -> Replay:
        """The statement-by-statement dry run (computed once)."""
        if self._replay is None:
            if self.plan is None:
                self._replay = Replay(unavailable="the plan does not parse")
            elif self.market is None:
                self._replay = Replay(unavailable="the market cannot be loaded")
            elif any(d.is_error and not d.code.startswith("SP3") for d in self.lint.diagnostics):
                self._replay = Replay(unavailable="the plan has errors; the dry run runs "
                                      "once they are fixed")
            else:
                self._replay = replay_plan(self.plan, self.replay_market or self.market)
        return self._replay


def analyse(text: str, path: str = "<plan>", plan_dir: Path | None = None) -> Analysis:
    """Parse and lint a document's text (what `stratplan lint` does, on unsaved text)."""
    with arithmetic():
        parsed = parse(text, path)
        lint = lint_parsed(parsed, path, plan_dir)
        market: Market | None = None
        if parsed.plan is not None:
            market, _ = resolve_market(parsed.plan, plan_dir, None)
        else:
            market = market_of_text(text, plan_dir)
        start = _series_start(parsed.plan, market, plan_dir)
    return Analysis(text, path, plan_dir, parsed, lint, market, replay_market=start)


def _series_start(plan: Plan | None, market: Market | None,
                  plan_dir: Path | None) -> Market | None:
    """With `use series` (v2), the phases run at the series' first time, as `stratplan run`
    runs them: that market, or None without a usable series."""
    if plan is None or market is None or getattr(plan, "series", None) is None:
        return None
    try:
        from stratplan.interpreter.lint.with_series import resolve_series
        from stratplan.interpreter.time.backtest import start_market
        series, problem = resolve_series(plan, plan_dir)
        if series is None or problem is not None:
            return None
        started: Market = start_market(plan, market, series)
        return started
    except Exception:  # the lint reports a bad series; the hover falls back to the market
        return None


def market_of_text(text: str, plan_dir: Path | None) -> Market:
    """The market a plan names in `use market "..."` (first on its line), read from text
    that may not parse (a plan being typed); the built-in market when there is none or it
    cannot be used."""
    found = tokens(text)
    for index, token in enumerate(found[:-2]):
        if token.kind != "USE" or (index > 0 and found[index - 1].line == token.line):
            continue
        market, name = found[index + 1], found[index + 2]
        if market.kind == "MARKET" and name.kind == "STRING":
            try:
                return load_market_file(inside_plan_folder(plan_dir,
                                                      name.text[1:-1].replace('\\"', '"')))
            except (OSError, RuntimeError, ValueError, MarketError):  # OutsideFolder: ValueError
                pass
            break
    return default_market()


_SEVERITY = {Severity.ERROR: types.DiagnosticSeverity.Error,
             Severity.WARNING: types.DiagnosticSeverity.Warning,
             Severity.INFO: types.DiagnosticSeverity.Information}


def lsp_diagnostic(d: Diagnostic, positions: Positions) -> types.Diagnostic:
    """One lint diagnostic as an LSP diagnostic."""
    message = d.message + (f"\nhelp: {d.help}" if d.help else "")
    return types.Diagnostic(
        range=positions.span_range(d.span), severity=_SEVERITY[d.severity], code=d.code,
        source="stratplan", message=message)


def lsp_diagnostics(analysis: Analysis, positions: Positions) -> list[types.Diagnostic]:
    """The lint's diagnostics as LSP diagnostics."""
    return [lsp_diagnostic(d, positions) for d in analysis.lint.diagnostics]
