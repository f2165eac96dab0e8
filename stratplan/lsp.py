"""`stratplan lsp`: a language server for plans, over stdio (pygls 2).

What it offers an editor:

- diagnostics (the whole `stratplan lint`: static rules, then the dry run) when a plan is
  opened or saved, and after a pause in typing (debounced) when it changes;
- hover on an instruction: the simulated state right after it in the dry run (the
  balances it touched, before and after, health of every lending venue in use, gas so
  far); hover on a diagnostic code (`# noqa: SP400`) or on a flagged span: the code's
  `stratplan explain` page;
- completion of keywords, venues, assets, markets (`BTC/USDT`), state functions, phases
  and `let` names, from the plan's own market;
- go to definition for phases, triggers, `let` constants and loop variables; document
  symbols (phases, triggers, atomic blocks, `let`s);
- whole-document formatting (`stratplan fmt`);
- quick fixes: wrap consecutive contract operations in an atomic block (SP400), add the
  missing `via` executor to a flash-loan block (SP207).

Positions: plan spans count lines by `\\n`, `\\r\\n` or a lone `\\r` and columns in code
points; LSP positions count in the negotiated encoding (UTF-16 unless the client offers
another), and this module converts between the two. The pure functions below (analysis,
outline, hover, completion, fixes) take text and return plain data; the server at the end
only wires them to the protocol.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.diagnostics import Diagnostic, Severity
from stratplan.dsl.formatter import format_expr, format_instruction, format_plan
from stratplan.dsl.models import (
    Assert,
    AtomicBlock,
    Plan,
    Repeat,
    SmartContractInstruction,
)
from stratplan.dsl.parser import KEYWORDS, ParseResult, parse
from stratplan.dsl.paths import inside_plan_folder
from stratplan.dsl.spans import Span
from stratplan.executors.accounts import health_factor
from stratplan.executors.errors import MarketError
from stratplan.executors.market import CexVenue, LendingVenue, Market, default_market, load_market
from stratplan.executors.registry import discover
from stratplan.interpreter.dag import DagError, dry_run_nodes, statement_venues
from stratplan.interpreter.engine import Engine, NodeFailed
from stratplan.interpreter.evaluate import FUNCTIONS
from stratplan.interpreter.lint.codes import CODES, explain
from stratplan.interpreter.lint.pipeline import LintResult, lint_parsed, resolve_market
from stratplan.interpreter.lint.rules import contract_runs
from stratplan.interpreter.monitor import BOOKS, PositionMonitor
from stratplan.interpreter.report import dec

VERSION = "0.1.0"
DEBOUNCE_SECONDS = 0.3
# The keywords LANGUAGE.md v2 adds; offered by completion before the grammar knows them.
V2_KEYWORDS = frozenset({"series", "trigger", "every", "when", "cooldown"})
_LINE_END = re.compile(r"\r\n|\r|\n")
_CODE = re.compile(r"\bSP\d{3}\b", re.IGNORECASE)
Units = Callable[[str], int]


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# --- positions -----------------------------------------------------------------------------


def split_lines(text: str) -> list[str]:
    """The text's lines as the language counts them (a final empty line included)."""
    return _LINE_END.split(text)


class Positions:
    """Converts between plan positions (1-based line, 1-based code-point column) and LSP
    positions (0-based line, 0-based character in the client's encoding)."""

    def __init__(self, text: str, units: Units = _utf16) -> None:
        self.lines = split_lines(text)
        self.units = units

    def to_lsp(self, line: int, column: int) -> types.Position:
        """An LSP position; past the end clamps to the end of the document."""
        if line < 1:
            return types.Position(line=0, character=0)
        if line > len(self.lines):
            last = len(self.lines) - 1
            return types.Position(line=last, character=self.units(self.lines[last]))
        text = self.lines[line - 1]
        return types.Position(line=line - 1, character=self.units(text[:max(column - 1, 0)]))

    def span_range(self, span: Span) -> types.Range:
        """The LSP range of a span (its end column is exclusive in both)."""
        start = self.to_lsp(span.line, span.column)
        end = self.to_lsp(span.end_line, span.end_column)
        if (end.line, end.character) < (start.line, start.character):
            end = start
        return types.Range(start=start, end=end)

    def from_lsp(self, position: types.Position) -> tuple[int, int]:
        """The plan position (line, column) of an LSP position."""
        if position.line >= len(self.lines):
            return len(self.lines), len(self.lines[-1]) + 1
        text = self.lines[position.line]
        count = 0
        for index, char in enumerate(text):
            if count >= position.character:
                return position.line + 1, index + 1
            count += self.units(char)
        return position.line + 1, len(text) + 1

    def end(self) -> types.Position:
        """The position after the last character."""
        last = len(self.lines) - 1
        return types.Position(line=last, character=self.units(self.lines[last]))


def _contains(span: Span, line: int, column: int) -> bool:
    return (span.line, span.column) <= (line, column) < (span.end_line, span.end_column)


# --- a lexical outline: works while the text does not parse ----------------------------------


_TOKEN = re.compile(r"""
    (?P<comment>\#[^\r\n]*)
  | (?P<string>"(?:\\["\\]|[^"\\\r\n])*"?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<number>[0-9][0-9A-Za-z_.%]*)
  | (?P<arrow>->)
  | (?P<punct>[{}(),:=/<>!+\-*])
  | (?P<space>\s+)
  | (?P<other>.)
""", re.VERBOSE)
# After these words the next word is a name (or a venue), never a keyword.
_NAME_SLOTS = frozenset({"plan", "phase", "trigger", "atomic", "let", "set", "as", "after", "via",
                         "on", "from", "to"})


@dataclass(frozen=True)
class Token:
    """One token of the text: kind, text, 1-based line and code-point columns."""

    kind: str
    text: str
    line: int
    column: int

    @property
    def end_column(self) -> int:
        """The column after the token."""
        return self.column + len(self.text)

    @property
    def span(self) -> Span:
        """The token's span."""
        return Span(line=self.line, column=self.column, end_line=self.line,
                    end_column=self.end_column)


def tokens(text: str) -> list[Token]:
    """The text's tokens, comments and strings whole, whitespace left out."""
    found: list[Token] = []
    for number, line in enumerate(split_lines(text), start=1):
        for match in _TOKEN.finditer(line):
            kind = match.lastgroup or "other"
            if kind != "space":
                found.append(Token(kind, match.group(), number, match.start() + 1))
    return found


@dataclass
class Symbol:
    """A declaration: a phase, trigger, atomic block, repeat (loop variable) or `let`."""

    kind: str
    name: str
    name_token: Token | None
    start: tuple[int, int]
    end: tuple[int, int] | None = None
    children: list[Symbol] = field(default_factory=list)
    after: list[Token] = field(default_factory=list)

    @property
    def span(self) -> Span:
        """From the keyword to the closing brace (or the end of the line for a `let`)."""
        end = self.end or self.start
        return Span(line=self.start[0], column=self.start[1], end_line=end[0],
                    end_column=end[1])


@dataclass
class Outline:
    """The declarations of a plan, found lexically."""

    symbols: list[Symbol]

    def walk(self) -> Iterator[Symbol]:
        """Every symbol, depth first."""
        stack = list(reversed(self.symbols))
        while stack:
            symbol = stack.pop()
            yield symbol
            stack.extend(reversed(symbol.children))


def outline(text: str) -> Outline:
    """Phases, triggers, atomic blocks, repeats and `let`s with their ranges, by braces."""
    top: list[Symbol] = []
    stack: list[Symbol | None] = []  # open braces: the block each belongs to (None: other)
    pending: Symbol | None = None  # a block header waiting for its `{`
    named: Symbol | None = None  # the symbol the next name belongs to
    lines = split_lines(text)
    previous, in_after = "", False
    for token in tokens(text):
        kind, word = token.kind, token.text
        if kind in ("comment", "string"):
            continue
        if kind == "word" and (previous in _NAME_SLOTS or (previous == "," and in_after)):
            if named is not None and previous in ("phase", "trigger", "atomic", "let", "as"):
                named.name, named.name_token = word, token
            elif pending is not None and previous in ("after", ","):
                pending.after.append(token)
            named, previous = None, "<name>"
            continue
        if kind == "word" and word in ("phase", "trigger", "atomic", "repeat"):
            pending = named = Symbol(word, "", None, (token.line, token.column))
            in_after = False
        elif kind == "word" and word == "let":
            named = Symbol("let", "", None, (token.line, token.column),
                           (token.line, len(lines[token.line - 1]) + 1))
            _attach(top, stack, named)
        elif kind == "word" and word == "as" and pending is not None:
            named = pending
        elif kind == "word" and word == "after" and pending is not None:
            in_after = True
        elif word == "{":
            if pending is not None:
                _attach(top, stack, pending)
            stack.append(pending)
            pending, named, in_after = None, None, False
        elif word == "}":
            if stack:
                closed = stack.pop()
                if closed is not None:
                    closed.end = (token.line, token.end_column)
        previous = word
    return Outline(top)


def _attach(top: list[Symbol], stack: list[Symbol | None], symbol: Symbol) -> None:
    parent = next((s for s in reversed(stack) if s is not None), None)
    (parent.children if parent is not None else top).append(symbol)


def word_at(text: str, line: int, column: int) -> Token | None:
    """The word (name, asset, keyword) at a plan position, if any."""
    lines = split_lines(text)
    if not 1 <= line <= len(lines):
        return None
    for match in re.finditer(r"[A-Za-z_][A-Za-z0-9_.]*", lines[line - 1]):
        if match.start() + 1 <= column <= match.end():
            return Token("word", match.group(), line, match.start() + 1)
    return None


def definition(text: str, line: int, column: int) -> Token | None:
    """Where the name at a position is declared: an enclosing loop variable, a `let`, a
    phase or a trigger (None when the word declares nothing)."""
    word = word_at(text, line, column)
    if word is None:
        return None
    found = outline(text)
    repeats = [s for s in found.walk() if s.kind == "repeat" and s.name == word.text
               and s.end is not None and _contains(s.span, line, column)]
    if repeats:
        return repeats[-1].name_token
    for kind in ("let", "phase", "trigger"):
        for symbol in found.walk():
            if symbol.kind == kind and symbol.name == word.text:
                return symbol.name_token
    return None


# --- analysis: parse, lint, dry-run replay ---------------------------------------------------


@dataclass
class StateAfter:
    """The simulated state right after a statement's (last) pass in the dry run."""

    node: str
    passes: int
    changes: list[tuple[str, str, str, Decimal, Decimal]]  # book, venue, asset, before, after
    health: dict[str, Decimal | None]
    gas_units: int
    gas_eth: Decimal
    gas_usd: Decimal
    failure: tuple[str, str] | None = None  # code, message


@dataclass
class Replay:
    """The dry run, statement by statement: what each left behind, and where it stopped."""

    states: dict[int, StateAfter] = field(default_factory=dict)
    stopped: tuple[str, str, int] | None = None  # code, message, line
    unavailable: str | None = None  # why there is no dry run


def _view(monitor: PositionMonitor, venues: frozenset[str]) -> dict[tuple[str, str, str], Decimal]:
    every = "*" in venues
    return {(book, venue, asset): value for book in BOOKS
            for (venue, asset), value in monitor.books[book].items() if every or venue in venues}


def _health(monitor: PositionMonitor, market: Market) -> dict[str, Decimal | None]:
    used = monitor.venues("collateral") | monitor.venues("debt")
    return {venue: health_factor(monitor, market, venue) for venue in sorted(used)
            if isinstance(market.venues.get(venue), LendingVenue)}


async def _replay_nodes(engine: Engine, plan: Plan, replay: Replay) -> None:
    monitor = engine.monitor
    for node in dry_run_nodes(plan, engine.scope):
        stmt = node.statement
        venues = statement_venues(stmt) if stmt.kind != "assert" else frozenset()
        before = _view(monitor, venues)
        failure: NodeFailed | None = None
        try:
            await engine.execute(node)
        except NodeFailed as failed:
            failure = failed
        after = _view(monitor, venues)
        changes = [(book, venue, asset, before.get(key, Decimal(0)), after.get(key, Decimal(0)))
                   for key in sorted(set(before) | set(after))
                   for book, venue, asset in [key] if before.get(key) != after.get(key)]
        previous = replay.states.get(id(stmt))
        replay.states[id(stmt)] = StateAfter(
            node.id, (previous.passes if previous else 0) + 1, changes,
            _health(monitor, engine.market), monitor.gas_units, monitor.gas_eth,
            monitor.gas_usd, (failure.code, failure.message) if failure else None)
        if failure is not None:
            replay.stopped = (failure.code, failure.message, failure.span.line)
            return


def replay_plan(plan: Plan, market: Market) -> Replay:
    """Run the plan's dry run node by node, keeping the state after each statement."""
    replay = Replay()
    with arithmetic():
        engine = Engine(plan, market, discover())
        try:
            asyncio.run(_replay_nodes(engine, plan, replay))
        except DagError as exc:
            replay.unavailable = f"the plan cannot be unrolled: {exc}"
        except Exception as exc:  # a hover must never take the server down
            replay.unavailable = f"the dry run failed: {type(exc).__name__}: {exc}"
    return replay


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
    """The market a plan names in `use market "..."`, read from text that may not parse
    (a plan being typed); the built-in market when there is none or it cannot be used."""
    match = re.search(r'^\s*use\s+market\s+"((?:\\["\\]|[^"\\\r\n])*)"', text, re.MULTILINE)
    if match is None:
        return default_market()
    try:
        return load_market(inside_plan_folder(plan_dir, match.group(1).replace('\\"', '"')))
    except (OSError, RuntimeError, ValueError, MarketError):  # OutsideFolder is a ValueError
        pass
    return default_market()


# --- features ------------------------------------------------------------------------------


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


def _number(value: Decimal) -> str:
    """A decimal for reading: every digit up to 12 significant ones, else ≈ 10 of them."""
    digits = len(value.normalize().as_tuple().digits)
    if digits <= 12:
        return dec(value)
    rounded = Decimal(format(value, ".10g"))
    return "≈ " + dec(rounded)


def _blocks(plan: Plan) -> list[Any]:
    """The phases, then the triggers (v2): everything with a body of statements."""
    return [*plan.phases, *getattr(plan, "triggers", ())]


def _statement_at(plan: Plan, line: int, column: int) -> tuple[Any, AtomicBlock | None] | None:
    """The innermost statement at a position (or, failing that, starting on its line),
    with the atomic block holding it."""
    best: tuple[Any, AtomicBlock | None] | None = None
    on_line: tuple[Any, AtomicBlock | None] | None = None

    def visit(body: Sequence[Any], block: AtomicBlock | None) -> None:
        nonlocal best, on_line
        for stmt in body:
            if _contains(stmt.span, line, column):
                best = (stmt, block)
            elif stmt.span.line == line and on_line is None:
                on_line = (stmt, block)
            if isinstance(stmt, AtomicBlock):
                visit(stmt.body, block or stmt)
            elif isinstance(stmt, Repeat):
                visit(stmt.body, block)

    for block in _blocks(plan):
        visit(block.body, None)
    return best or on_line


def _last_statement(stmt: Any) -> Any:
    while isinstance(stmt, Repeat) and stmt.body:
        stmt = stmt.body[-1]
    return stmt


_BOOK_WORDS = {"balance": "", "collateral": "collateral ", "debt": "debt ",
               "position": "position ", "entry": "entry price ", "margin": "margin ",
               "flash": "flash debt "}


def state_markdown(state: StateAfter) -> list[str]:
    """The state after a statement, as markdown lines."""
    lines = []
    if state.passes > 1:
        lines.append(f"after its last pass ({state.passes} passes), node `{state.node}`")
    else:
        lines.append(f"node `{state.node}`")
    lines.append("")
    for book, venue, asset, before, after in state.changes:
        lines.append(f"- {venue} {_BOOK_WORDS.get(book, book + ' ')}{asset}: "
                     f"{_number(before)} → {_number(after)}")
    if not state.changes:
        lines.append("- no balance changed")
    lines.append("")
    for venue, health in state.health.items():
        shown = "∞ (no debt)" if health is None else _number(health)
        lines.append(f"health({venue}) = {shown}  ")
    lines.append(f"gas so far: {state.gas_units:,} units = {_number(state.gas_eth)} ETH "
                 f"(${_number(state.gas_usd)})")
    return lines


def _explain_markdown(code: str) -> str | None:
    page = explain(code)
    return page.strip() if page else None


def hover(analysis: Analysis, line: int, column: int) -> str | None:
    """Markdown for a hover at a plan position, or None."""
    lines = split_lines(analysis.text)
    if 1 <= line <= len(lines):
        for match in _CODE.finditer(lines[line - 1]):
            if match.start() + 1 <= column <= match.end():
                return _explain_markdown(match.group().upper())
    parts: list[str] = []
    plan = analysis.plan
    found = _statement_at(plan, line, column) if plan is not None else None
    if found is not None:
        stmt, block = found
        parts.append(_state_section(analysis, stmt, block))
    for d in analysis.lint.diagnostics:
        if _contains(d.span, line, column) or (d.span.line == line and found is None):
            title = CODES.get(d.code, (None, d.code))[1]
            page = _explain_markdown(d.code) or ""
            parts.append(f"**{d.code}** ({d.severity.value}): {d.message}\n\n"
                         f"<details><summary>{title}</summary>\n\n{page}\n\n</details>"
                         if page else f"**{d.code}**: {d.message}")
    return "\n\n---\n\n".join(parts) if parts else None


def _state_section(analysis: Analysis, stmt: Any, block: AtomicBlock | None) -> str:
    target = block or stmt
    if isinstance(target, AtomicBlock):
        via = f" via {target.via}" if target.via else ""
        label = f"atomic {target.name}{via}"
    elif isinstance(target, Assert):
        label = f"assert {format_expr(target.condition)}"
    elif isinstance(target, Repeat):
        label = f"repeat {format_expr(target.count)}"
    else:
        label = format_instruction(target)
    head = f"**Dry run, right after** `{label}` (line {target.span.line})"
    if block is not None and stmt is not block:
        head += f" — `{format_instruction(stmt)}` runs inside this one transaction"
    if analysis.plan is not None and any(
            _holds(trigger.body, target) for trigger in getattr(analysis.plan, "triggers", ())):
        return (f"{head}\n\nA trigger's body runs when the trigger fires, in "
                "`stratplan backtest`; the dry run covers the phases only.")
    replay = analysis.replay()
    if replay.unavailable:
        return f"{head}\n\nNo dry run: {replay.unavailable}."
    state = replay.states.get(id(_last_statement(target)))
    if state is None:
        if replay.stopped:
            code, message, at = replay.stopped
            return f"{head}\n\nNot reached: the dry run stopped at line {at} ({code}: {message})."
        return f"{head}\n\nNot run by the dry run."
    body = state_markdown(state)
    if state.failure is not None:
        code, message = state.failure
        body.insert(0, f"**fails: {code}** {message} (state restored; gas paid)  ")
    elif isinstance(target, Assert):
        body.insert(0, "the assertion holds  ")
    return head + "\n\n" + "\n".join(body)


# Completion contexts: the word before the cursor says what comes next.
_VENUE_AFTER = {"on", "from", "to", "via"}
_STATEMENT_KEYWORDS = ("transfer", "spot", "perp", "stake", "unstake", "supply", "withdraw",
                       "borrow", "repay", "swap", "wrap", "unwrap", "flash", "atomic", "repeat",
                       "assert")


def completions(text: str, line: int, column: int,
                market: Market | None) -> list[types.CompletionItem]:
    """What may be typed at a position: venues after `on`/`from`/`to`/`via`, phases after
    `after`, otherwise keywords, venues, assets, markets, functions and names."""
    market = market or default_market()
    lines = split_lines(text)
    before = lines[line - 1][:column - 1] if 1 <= line <= len(lines) else ""
    before = before.split("#", 1)[0]
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*|[^\sA-Za-z0-9_.]", before)
    typing = bool(before) and (before[-1].isalnum() or before[-1] in "_.")
    previous = words[-2] if typing and len(words) >= 2 else (words[-1] if words and not typing
                                                             else "")
    found = outline(text)
    venues = [types.CompletionItem(label=name, kind=types.CompletionItemKind.Module,
                                   detail=f"venue ({terms.kind})")
              for name, terms in sorted(market.venues.items())]
    if previous in _VENUE_AFTER:
        return venues
    phases = [types.CompletionItem(label=s.name, kind=types.CompletionItemKind.Class,
                                   detail=s.kind) for s in found.walk()
              if s.kind == "phase" and s.name]
    if previous == "after" or (previous == "," and "after" in words):
        return phases
    items = list(venues)
    items += [types.CompletionItem(label=word, kind=types.CompletionItemKind.Keyword,
                                   detail="keyword")
              for word in sorted(KEYWORDS | V2_KEYWORDS)]
    items += [types.CompletionItem(label=asset, kind=types.CompletionItemKind.Constant,
                                   detail=f"asset, ${dec(price)}")
              for asset, price in sorted(market.prices.items())]
    pairs: dict[str, list[str]] = {}
    for name, terms in sorted(market.venues.items()):
        if isinstance(terms, CexVenue):
            for kind, listed in (("spot", terms.markets.spot), ("perp", terms.markets.perp)):
                for pair in listed:
                    pairs.setdefault(pair, []).append(f"{kind} on {name}")
    items += [types.CompletionItem(label=pair, kind=types.CompletionItemKind.Value,
                                   detail="market: " + ", ".join(where))
              for pair, where in sorted(pairs.items())]
    items += [types.CompletionItem(label=name, kind=types.CompletionItemKind.Function,
                                   detail=f"{name}({', '.join(args)})",
                                   insert_text=f"{name}(")
              for name, args in sorted(FUNCTIONS.items())]
    items += [types.CompletionItem(label=s.name, kind=types.CompletionItemKind.Constant,
                                   detail="let") for s in found.walk()
              if s.kind == "let" and s.name]
    return items + phases


_SYMBOL_KIND = {"phase": types.SymbolKind.Namespace, "trigger": types.SymbolKind.Event,
                "atomic": types.SymbolKind.Struct, "let": types.SymbolKind.Constant}


def document_symbols(text: str, positions: Positions) -> list[types.DocumentSymbol]:
    """Phases and triggers with their atomic blocks, and `let` constants."""

    def convert(symbol: Symbol) -> types.DocumentSymbol | None:
        if symbol.kind not in _SYMBOL_KIND or not symbol.name or symbol.name_token is None:
            return None
        children = [c for c in (convert(child) for child in _flatten(symbol.children)) if c]
        span = symbol.span
        selection = positions.span_range(symbol.name_token.span)
        whole = positions.span_range(span)
        if (whole.end.line, whole.end.character) < (selection.end.line, selection.end.character):
            whole = types.Range(start=whole.start, end=selection.end)
        return types.DocumentSymbol(
            name=symbol.name, kind=_SYMBOL_KIND[symbol.kind], range=whole,
            selection_range=selection, detail=symbol.kind, children=children or None)

    return [s for s in (convert(symbol) for symbol in outline(text).symbols) if s]


def _flatten(symbols: list[Symbol]) -> Iterator[Symbol]:
    """Children shown in the outline: repeats are see-through."""
    for symbol in symbols:
        if symbol.kind == "repeat":
            yield from _flatten(symbol.children)
        else:
            yield symbol


def formatting(analysis: Analysis, positions: Positions) -> list[types.TextEdit] | None:
    """One edit replacing the document with its canonical layout ([] when already
    formatted, None when it does not parse)."""
    if analysis.plan is None:
        return None
    formatted = format_plan(analysis.plan)
    if formatted == analysis.text:
        return []
    return [types.TextEdit(range=types.Range(start=types.Position(line=0, character=0),
                                             end=positions.end()), new_text=formatted)]


# --- quick fixes ---------------------------------------------------------------------------


def _holds(body: Sequence[Any], target: Any) -> bool:
    """True when the statement is in the body, at any depth."""
    return any(stmt is target for stmt in _walk(body))


def _contract_runs(plan: Plan) -> Iterator[tuple[list[SmartContractInstruction], Any]]:
    """Runs of 2+ consecutive contract operations outside atomic blocks, with the phase
    (or trigger) holding them."""
    for phase in _blocks(plan):
        bodies = [phase.body]
        while bodies:
            body = bodies.pop()
            for run in contract_runs(body):
                yield run, phase
            bodies.extend(stmt.body for stmt in body if isinstance(stmt, Repeat))


def _block_names(body: Sequence[Any]) -> set[str]:
    names: set[str] = set()
    for stmt in body:
        if isinstance(stmt, AtomicBlock):
            names.add(stmt.name)
        if isinstance(stmt, (AtomicBlock, Repeat)):
            names |= _block_names(stmt.body)
    return names


def wrap_in_atomic(analysis: Analysis, diagnostic: Diagnostic,
                   positions: Positions) -> tuple[str, list[types.TextEdit]] | None:
    """SP400's fix: the run of contract operations the diagnostic starts, in one atomic
    block (not offered when an `unstake` would then need a queue, SP206)."""
    if analysis.plan is None:
        return None
    for run, phase in _contract_runs(analysis.plan):
        first, last = run[0], run[-1]
        if (first.span.line, first.span.column) != (diagnostic.span.line,
                                                     diagnostic.span.column):
            continue
        if any(op.operation == "unstake" for op in run):
            return None
        taken = _block_names(phase.body)
        name = next(n for n in (f"batch_{i}" if i > 1 else "batch" for i in range(1, 10_000))
                    if n not in taken)
        lines = positions.lines
        eol = "\r\n" if "\r\n" in analysis.text else "\n"
        head = lines[first.span.line - 1][:first.span.column - 1]
        tail = lines[last.span.end_line - 1][last.span.end_column - 1:]
        own_lines = not head.strip() and (not tail.strip() or tail.strip().startswith("#"))
        if not own_lines:
            return name, [
                types.TextEdit(range=_empty(positions, first.span.line, first.span.column),
                               new_text=f"atomic {name} {{ "),
                types.TextEdit(range=_empty(positions, last.span.end_line,
                                            last.span.end_column), new_text=" }")]
        edits = [types.TextEdit(range=_empty(positions, first.span.line, 1),
                                new_text=f"{head}atomic {name} {{{eol}  ")]
        for number in range(first.span.line + 1, last.span.end_line + 1):
            if lines[number - 1].strip():
                edits.append(types.TextEdit(range=_empty(positions, number, 1), new_text="  "))
        if last.span.end_line < len(lines):
            edits.append(types.TextEdit(range=_empty(positions, last.span.end_line + 1, 1),
                                        new_text=f"{head}}}{eol}"))
        else:
            end = len(lines[last.span.end_line - 1]) + 1
            edits.append(types.TextEdit(range=_empty(positions, last.span.end_line, end),
                                        new_text=f"{eol}{head}}}"))
        return name, edits
    return None


def add_via(analysis: Analysis, diagnostic: Diagnostic,
            positions: Positions) -> list[tuple[str, types.TextEdit]]:
    """SP207's fix: `via EXECUTOR` after the block's name, one choice per executor venue."""
    if analysis.plan is None or analysis.market is None:
        return []
    executors = [name for name, terms in sorted(analysis.market.venues.items())
                 if terms.kind == "executor"]
    lines = positions.lines
    for block in _blocks(analysis.plan):
        for stmt in _walk(block.body):
            if not isinstance(stmt, AtomicBlock) or stmt.via is not None or \
                    stmt.span.line != diagnostic.span.line:
                continue
            text = lines[stmt.span.line - 1]
            match = re.compile(rf"\batomic\s+{re.escape(stmt.name)}\b").search(
                text, stmt.span.column - 1)
            if match is None:
                return []
            at = _empty(positions, stmt.span.line, match.end() + 1)
            return [(name, types.TextEdit(range=at, new_text=f" via {name}"))
                    for name in executors]
    return []


def _walk(body: Sequence[Any]) -> Iterator[Any]:
    for stmt in body:
        yield stmt
        if isinstance(stmt, (AtomicBlock, Repeat)):
            yield from _walk(stmt.body)


def _empty(positions: Positions, line: int, column: int) -> types.Range:
    at = positions.to_lsp(line, column)
    return types.Range(start=at, end=at)


def code_actions(analysis: Analysis, uri: str, positions: Positions,
                 wanted: types.Range) -> list[types.CodeAction]:
    """Quick fixes for the diagnostics overlapping a range."""
    actions: list[types.CodeAction] = []
    for d in analysis.lint.diagnostics:
        found = positions.span_range(d.span)
        if (found.end.line, found.end.character) < (wanted.start.line, wanted.start.character) \
                or (found.start.line, found.start.character) > (wanted.end.line,
                                                                  wanted.end.character):
            continue
        found_diagnostic = lsp_diagnostic(d, positions)
        if d.code == "SP400":
            fix = wrap_in_atomic(analysis, d, positions)
            if fix is not None:
                name, edits = fix
                actions.append(types.CodeAction(
                    title=f"Wrap in `atomic {name} {{ ... }}` (one transaction)",
                    kind=types.CodeActionKind.QuickFix, diagnostics=[found_diagnostic],
                    is_preferred=True, edit=types.WorkspaceEdit(changes={uri: edits})))
        elif d.code == "SP207":
            for index, (name, edit) in enumerate(add_via(analysis, d, positions)):
                actions.append(types.CodeAction(
                    title=f"Add `via {name}` (run the block through the executor contract)",
                    kind=types.CodeActionKind.QuickFix, diagnostics=[found_diagnostic],
                    is_preferred=index == 0, edit=types.WorkspaceEdit(changes={uri: [edit]})))
    return actions


# --- the server ----------------------------------------------------------------------------


class StratplanServer(LanguageServer):
    """Keeps one analysis per open document; lints after a pause in typing."""

    def __init__(self) -> None:
        super().__init__("stratplan", VERSION,
                         text_document_sync_kind=types.TextDocumentSyncKind.Full)
        self.debounce = DEBOUNCE_SECONDS
        self.analyses: dict[str, tuple[int | None, Analysis]] = {}
        self.pending: dict[str, asyncio.Task[None]] = {}

    def positions(self, text: str) -> Positions:
        """Position conversion in the encoding negotiated with the client."""
        codec = self.workspace.position_codec
        return Positions(text, codec.client_num_units)

    async def analysis(self, uri: str) -> Analysis:
        """The analysis of the document's current text (computed off the event loop)."""
        document = self.workspace.get_text_document(uri)
        text, version = document.source, document.version
        cached = self.analyses.get(uri)
        if cached is not None and cached[0] == version and cached[1].text == text:
            return cached[1]
        path = to_fs_path(uri) if uri.startswith("file:") else None
        plan_dir = Path(path).parent if path else None
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, analyse, text, path or uri, plan_dir)
        self.analyses[uri] = (version, result)
        return result

    async def replay(self, analysis: Analysis) -> Replay:
        """The dry-run replay, off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, analysis.replay)

    async def publish(self, uri: str) -> None:
        """Lint the document and publish its diagnostics (skipped when it changed since)."""
        document = self.workspace.get_text_document(uri)
        version = document.version
        analysis = await self.analysis(uri)
        if self.workspace.get_text_document(uri).version != version:
            return
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, version=version,
            diagnostics=lsp_diagnostics(analysis, self.positions(analysis.text))))

    def schedule(self, uri: str) -> None:
        """Lint after `debounce` seconds without another change."""
        task = self.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        self.pending[uri] = asyncio.ensure_future(self._later(uri))

    async def _later(self, uri: str) -> None:
        await asyncio.sleep(self.debounce)
        self.pending.pop(uri, None)
        await self.publish(uri)


def build_server() -> StratplanServer:
    """The language server with every feature registered."""
    server = StratplanServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: StratplanServer, params: types.InitializeParams) -> None:
        options = params.initialization_options
        if isinstance(options, dict) and isinstance(options.get("debounceMs"), (int, float)):
            ls.debounce = max(float(options["debounceMs"]), 0.0) / 1000

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: StratplanServer, params: types.DidOpenTextDocumentParams) -> None:
        await ls.publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: StratplanServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: StratplanServer, params: types.DidSaveTextDocumentParams) -> None:
        await ls.publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: StratplanServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        task = ls.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        ls.analyses.pop(uri, None)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri,
                                                                            diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def on_hover(ls: StratplanServer, params: types.HoverParams) -> types.Hover | None:
        analysis = await ls.analysis(params.text_document.uri)
        positions = ls.positions(analysis.text)
        line, column = positions.from_lsp(params.position)
        await ls.replay(analysis)
        text = hover(analysis, line, column)
        if text is None:
            return None
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown,
                                                        value=text))

    @server.feature(types.TEXT_DOCUMENT_COMPLETION,
                    types.CompletionOptions(trigger_characters=[" ", "(", ","]))
    async def on_completion(ls: StratplanServer,
                            params: types.CompletionParams) -> types.CompletionList:
        document = ls.workspace.get_text_document(params.text_document.uri)
        positions = ls.positions(document.source)
        line, column = positions.from_lsp(params.position)
        cached = ls.analyses.get(params.text_document.uri)
        market = cached[1].market if cached is not None else None
        if market is None:
            path = to_fs_path(document.uri) if document.uri.startswith("file:") else None
            market = market_of_text(document.source, Path(path).parent if path else None)
        return types.CompletionList(is_incomplete=False,
                                    items=completions(document.source, line, column, market))

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls: StratplanServer,
                      params: types.DefinitionParams) -> types.Location | None:
        document = ls.workspace.get_text_document(params.text_document.uri)
        positions = ls.positions(document.source)
        line, column = positions.from_lsp(params.position)
        target = definition(document.source, line, column)
        if target is None:
            return None
        return types.Location(uri=document.uri, range=positions.span_range(target.span))

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def on_symbols(ls: StratplanServer,
                   params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
        document = ls.workspace.get_text_document(params.text_document.uri)
        return document_symbols(document.source, ls.positions(document.source))

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    async def on_formatting(ls: StratplanServer, params: types.DocumentFormattingParams
                            ) -> list[types.TextEdit] | None:
        analysis = await ls.analysis(params.text_document.uri)
        return formatting(analysis, ls.positions(analysis.text))

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
    async def on_code_action(ls: StratplanServer,
                             params: types.CodeActionParams) -> list[types.CodeAction]:
        analysis = await ls.analysis(params.text_document.uri)
        return code_actions(analysis, params.text_document.uri,
                            ls.positions(analysis.text), params.range)

    return server


def serve() -> int:
    """Serve LSP over stdin/stdout until the client says `exit`."""
    build_server().start_io()
    if sys.stdout.closed:  # the transport closed it: the caller's final flush must not fail
        sys.stdout = open(os.devnull, "w", encoding="utf-8")
    return 0
