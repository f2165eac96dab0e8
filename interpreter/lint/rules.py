"""The static rules (SP101-SP110, SP200-SP207, SP400, SP401), registered in one table.

Each rule is a small function of a RuleContext that yields diagnostics. The context walks
the plan once (`visits`) and every rule reads that walk, so adding a rule means adding one
function here, its tests, and its page in `explain/`.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stratplan.dsl.diagnostics import Diagnostic
from stratplan.dsl.formatter import format_expr
from stratplan.dsl.models import (
    INSTRUCTION_KINDS,
    AllAmount,
    AtomicBlock,
    CEXTradeInstruction,
    Let,
    MaxAmount,
    Phase,
    Plan,
    Repeat,
    Setting,
    SmartContractInstruction,
    WalletTransferInstruction,
)
from stratplan.dsl.spans import Span, split_lines
from stratplan.executors.market import (
    CexVenue,
    ExecutorVenue,
    FlashLenderVenue,
    LendingVenue,
    Market,
    StakingVenue,
    WalletVenue,
)
from stratplan.interpreter.dag import (
    MAX_NODES,
    MAX_REPEAT,
    phase_graph,
    phase_names_in_order,
    repeat_count,
    unrolled_size,
)
from stratplan.interpreter.evaluate import FUNCTIONS, EvalError, Scope, calls, constant, names_used
from stratplan.interpreter.lint.codes import CODES

OPTIONS = {"min_health", "max_slippage", "gas_price_gwei"}
ALL_ALLOWED = {"wallet_transfer", "spot_sell", "stake", "unstake", "supply", "withdraw",
               "repay", "swap", "wrap", "unwrap", "flash_repay"}
LENDING_OPS = {"supply", "withdraw", "borrow", "repay"}
MAX_CHECKED_ITERATIONS = 10_000


@dataclass(frozen=True, slots=True)
class Place:
    """Where statements stand: their phase (or trigger body, as a phase), the outermost
    atomic block around them, and the repeats around them, outermost first. One per body,
    shared by the statements written in it."""

    phase: Phase
    atomic: AtomicBlock | None
    repeats: tuple[Repeat, ...]


# The expressions of each kind of statement, in the order the rules read them.
_EXPRESSION_FIELDS: dict[str, tuple[str, ...]] = {
    "wallet_transfer": ("amount",), "cex_trade": ("amount", "limit"),
    "contract": ("amount", "slippage"), "atomic": (), "repeat": ("count",),
    "assert": ("condition",)}


class RuleContext:
    """What every rule reads: the plan, the market (None if it failed to load), the walk.

    The walk is kept as parallel lists: `statements`, every statement as written (a block
    before what it holds), `places`, where each stands, and a byte per statement saying
    whether it is an instruction. Parallel lists, not a record per statement, and venue
    references streamed rather than kept: a large plan pays for every byte per instruction
    (issue 17).
    """

    def __init__(self, plan: Plan, market: Market | None, source: str = "") -> None:
        self.plan = plan
        self.market = market
        self.source = source
        self.scope = Scope({let.name: let for let in plan.lets}, {}, market)
        self._lines: list[str] | None = None
        # Phases and trigger bodies (as phases named after their trigger): every rule that
        # walks statements covers both.
        self.blocks: list[Phase] = [*plan.phases, *(t.as_phase() for t in plan.triggers)]
        self.statements: list[Any] = []
        self.places: list[Place] = []
        self._is_instruction = bytearray()
        for phase in self.blocks:
            self._walk(phase.body, Place(phase, None, ()))
        self._expressions: tuple[list[Any], list[Place | None]] | None = None

    def _walk(self, body: tuple[Any, ...], place: Place) -> None:
        # Bounded depth: the parser refuses deeper nesting (SP110).
        statements, places, is_instruction = self.statements, self.places, self._is_instruction
        for stmt in body:
            statements.append(stmt)
            places.append(place)
            kind = stmt.kind
            is_instruction.append(kind in INSTRUCTION_KINDS)
            if kind == "atomic":
                atomic = stmt if place.atomic is None else place.atomic
                self._walk(stmt.body, Place(place.phase, atomic, place.repeats))
            elif kind == "repeat":
                self._walk(stmt.body, Place(place.phase, place.atomic, (*place.repeats, stmt)))

    @property
    def lines(self) -> list[str]:
        """The source's lines, split on first use: only a reported diagnostic needs them."""
        if self._lines is None:
            self._lines = split_lines(self.source)
        return self._lines

    def at(self, span: Span, word: str | None = None) -> Span:
        """Narrow a span to the first whole-word `word` inside it, when found on its lines."""
        if not word or not self.source:
            return span
        lines = self.lines
        pattern = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])")
        for number in range(span.line, min(span.end_line, len(lines)) + 1):
            text = lines[number - 1]
            start = span.column - 1 if number == span.line else 0
            end = span.end_column - 1 if number == span.end_line else len(text)
            match = pattern.search(text, start, end)
            if match:
                return Span(line=number, column=match.start() + 1, end_line=number,
                            end_column=match.end() + 1)
        return span

    def visits(self) -> Iterator[tuple[Any, Place]]:
        """(statement, place) for every statement, in the order written."""
        return zip(self.statements, self.places, strict=True)

    def instructions(self) -> Iterator[tuple[Any, Place]]:
        """The visits of instructions (not blocks or asserts)."""
        # `compress` picks them by the walk's bytes, without a test per statement here.
        return itertools.compress(self.visits(), self._is_instruction)

    def expressions(self) -> Iterator[tuple[Any, Place | None]]:
        """Every expression in the plan with the place of its statement (None: a `let` or
        `set`; a trigger's condition stands in the trigger's body)."""
        if self._expressions is None:
            # Found once, kept as two parallel lists: four rules read them.
            exprs: list[Any] = []
            places: list[Place | None] = []
            for expr, place in self._walk_expressions():
                exprs.append(expr)
                places.append(place)
            self._expressions = exprs, places
        return zip(*self._expressions, strict=True)

    def _walk_expressions(self) -> Iterator[tuple[Any, Place | None]]:
        for let in self.plan.lets:
            yield let.value, None
        for setting in self.plan.sets:
            yield setting.value, None
        for trigger, phase in zip(self.plan.triggers, self.blocks[len(self.plan.phases):],
                                  strict=True):
            if trigger.when is not None:
                yield trigger.when, Place(phase, None, ())
        fields = _EXPRESSION_FIELDS
        for stmt, place in self.visits():
            for name in fields[stmt.kind]:
                expr = getattr(stmt, name)
                if expr is not None and expr.kind != "all" and expr.kind != "max":
                    yield expr, place


Check = Callable[[RuleContext], Iterable[Diagnostic]]


@dataclass(frozen=True)
class Rule:
    """A registered static rule."""

    code: str
    check: Check
    needs_market: bool


RULES: list[Rule] = []


def rule(code: str, *, needs_market: bool = False) -> Callable[[Check], Check]:
    """Register a static rule under its code."""
    def register(check: Check) -> Check:
        RULES.append(Rule(code, check, needs_market))
        return check
    return register


def diag(code: str, message: str, span: Span, help: str | None = None) -> Diagnostic:
    """A diagnostic with the catalogue's severity for `code`."""
    severity = CODES[code][0]
    return Diagnostic(code=code, severity=severity, message=message, span=span, help=help)


def _suggest(word: str, options: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, sorted(options), n=1)
    return f"did you mean `{close[0]}`?" if close else None


# --- venue references ---------------------------------------------------------------------


def venue_refs(ctx: RuleContext) -> Iterator[tuple[str, Span, str]]:
    """(venue, span, role) for every venue the plan names; role says what it is used for.

    The span is the statement's; `ctx.at` narrows it to the name only when reporting.
    Streamed, not kept: two rules read them, and a second walk costs less than a record
    per reference (issue 17)."""
    if ctx.plan.holdings:
        for entry in ctx.plan.holdings.entries:
            yield entry.venue, entry.span, "holdings"
    for stmt in ctx.statements:
        # `kind`, not isinstance: one string test per statement.
        kind = stmt.kind
        if kind == "wallet_transfer":
            yield stmt.source_venue, stmt.span, "transfer"
            yield stmt.target_venue, stmt.span, "transfer"
        elif kind == "cex_trade":
            yield stmt.venue, stmt.span, "cex"
        elif kind == "contract":
            if stmt.venue:
                yield stmt.venue, stmt.span, stmt.operation
        elif kind == "atomic" and stmt.via:
            yield stmt.via, stmt.span, "via"
    for expr, _ in ctx.expressions():
        for call in calls(expr):
            signature = FUNCTIONS.get(call.func, ())
            for arg, kind in zip(call.args, signature, strict=False):
                if kind == "venue" and arg.kind == "name":
                    yield arg.name, arg.span, f"fn:{call.func}"


@rule("SP101", needs_market=True)
def unknown_venue(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Every venue named must exist in the market."""
    assert ctx.market is not None
    known = ctx.market.venues
    for venue, span, _ in venue_refs(ctx):
        if venue not in known:
            yield diag("SP101", f"unknown venue `{venue}`", ctx.at(span, venue),
                       _suggest(venue, known) or f"the market's venues: {', '.join(sorted(known))}")


_KINDS_FOR = {
    "holdings": ((WalletVenue, CexVenue), "hold starting balances"),
    "transfer": ((WalletVenue, CexVenue), "send or receive transfers (wallet or CEX only)"),
    "cex": ((CexVenue,), "trade spot or perps (not a CEX)"),
    "stake": ((StakingVenue,), "stake"), "unstake": ((StakingVenue,), "unstake"),
    "supply": ((LendingVenue,), "take collateral"), "withdraw": ((LendingVenue,), "hold collateral"),
    "borrow": ((LendingVenue,), "lend"), "repay": ((LendingVenue,), "take repayments"),
    "via": ((ExecutorVenue, WalletVenue), "execute atomic blocks (needs kind executor)"),
    "fn:collateral": ((LendingVenue,), "hold collateral"), "fn:debt": ((LendingVenue,), "lend"),
    "fn:health": ((LendingVenue,), "have a health factor"),
    "fn:funding": ((CexVenue,), "have perps with funding (not a CEX)"),
    "fn:entry_price": ((CexVenue,), "hold perps (not a CEX)"),
    "fn:supply_rate": ((LendingVenue,), "pay supply interest (not a lending venue)"),
    "fn:borrow_rate": ((LendingVenue,), "charge borrow interest (not a lending venue)"),
    "fn:liquidation_price": ((CexVenue, LendingVenue), "have a liquidation price (neither a "
                                                       "CEX nor a lending venue)"),
}


@rule("SP102", needs_market=True)
def venue_cannot(ctx: RuleContext) -> Iterator[Diagnostic]:
    """The venue's kind must support the operation."""
    assert ctx.market is not None
    for venue, span, role in venue_refs(ctx):
        terms = ctx.market.venues.get(venue)
        if terms is None:
            continue
        if role == "swap":
            ok, what = terms.kind == "dex", "swap (not a DEX)"
        elif role in ("flash_borrow", "flash_repay"):
            ok = isinstance(terms, FlashLenderVenue) or (
                isinstance(terms, LendingVenue) and terms.flash_fee is not None)
            what = "flash-lend"
        elif role in _KINDS_FOR:
            kinds, what = _KINDS_FOR[role]
            ok = isinstance(terms, kinds)
        else:
            continue
        if not ok:
            yield diag("SP102", f"{venue} ({terms.kind}) cannot {what}", ctx.at(span, venue))


def _asset_refs(ctx: RuleContext) -> Iterator[tuple[str, Span]]:
    if ctx.plan.holdings:
        for entry in ctx.plan.holdings.entries:
            for amount in entry.amounts:
                yield amount.asset, amount.span
    for stmt, _ in ctx.instructions():
        kind = stmt.kind
        if kind == "wallet_transfer":
            yield stmt.token, stmt.span
        elif kind == "cex_trade":
            yield stmt.base, stmt.span
            yield stmt.quote, stmt.span
        else:
            yield stmt.token_in, stmt.span
            if stmt.token_out:
                yield stmt.token_out, stmt.span
    for expr, _ in ctx.expressions():
        for call in calls(expr):
            for arg in call.args:
                if arg.kind == "asset":
                    yield arg.symbol, arg.span


def _listing_problem(market: Market, stmt: Any) -> str | None:
    """Why the venue does not list the asset or market of an instruction, or None."""
    if isinstance(stmt, WalletTransferInstruction):
        for venue in (stmt.source_venue, stmt.target_venue):
            terms = market.venues.get(venue)
            if isinstance(terms, CexVenue) and stmt.token not in terms.assets:
                return f"{venue} does not list {stmt.token}"
        return None
    if isinstance(stmt, CEXTradeInstruction):
        terms = market.venues.get(stmt.venue)
        if isinstance(terms, CexVenue):
            listed = terms.markets.spot if stmt.market == "spot" else terms.markets.perp
            if stmt.pair not in listed:
                return f"{stmt.venue} has no {stmt.market} market {stmt.pair}"
        return None
    op, token, venue = stmt.operation, stmt.token_in, stmt.venue or ""
    terms = market.venues.get(venue)
    if op in ("stake", "unstake") and isinstance(terms, StakingVenue):
        pairs = terms.stake if op == "stake" else {v: k for k, v in terms.stake.items()}
        if pairs.get(token) != stmt.token_out:
            return f"{venue} does not {op} {token} into {stmt.token_out}"
    elif op in LENDING_OPS and isinstance(terms, LendingVenue):
        asset = terms.assets.get(token)
        if asset is None:
            return f"{venue} does not list {token}"
        if op in ("borrow", "repay") and not asset.borrowable:
            return f"{venue} does not lend {token}"
    elif op in ("flash_borrow", "flash_repay") and terms is not None:
        if market.flash_fee(venue, token) is None and (
                isinstance(terms, FlashLenderVenue) or
                (isinstance(terms, LendingVenue) and terms.flash_fee is not None)):
            return f"{venue} does not flash-lend {token}"
    elif op == "wrap" and token != "ETH":
        return f"wrap takes ETH, not {token}"
    elif op == "unwrap" and token != "WETH":
        return f"unwrap takes WETH, not {token}"
    elif op == "swap" and token == stmt.token_out:
        return f"swap from {token} to itself"
    return None


@rule("SP103", needs_market=True)
def unknown_asset(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Assets must be priced, and venues must list the assets and markets used there."""
    market = ctx.market
    assert market is not None
    flagged: set[int] = set()
    for asset, span in _asset_refs(ctx):
        if not market.knows(asset):
            flagged.add(span.line)
            yield diag("SP103", f"unknown asset {asset}", ctx.at(span, asset),
                       _suggest(asset, market.prices) or "the market has no price for it")
    if ctx.plan.holdings:
        for entry in ctx.plan.holdings.entries:
            terms = market.venues.get(entry.venue)
            for amount in entry.amounts:
                if isinstance(terms, CexVenue) and market.knows(amount.asset) and \
                        amount.asset not in terms.assets:
                    yield diag("SP103", f"{entry.venue} does not list {amount.asset}",
                               ctx.at(amount.span, amount.asset))
    for stmt, _ in ctx.instructions():
        if stmt.span.line in flagged:
            continue
        problem = _listing_problem(market, stmt)
        if problem:
            yield diag("SP103", problem, stmt.span)


def _iterations(repeats: tuple[Repeat, ...], scope: Scope) -> Iterator[dict[str, Decimal]] | None:
    """Every loop-variable binding of nested repeats, or None when too many or unknown."""
    ranges = []
    total = 1
    for repeat in repeats:
        count = repeat_count(repeat, scope)
        if count is None:
            return None
        total *= count
        ranges.append((repeat.var, range(count)))
    if total > MAX_CHECKED_ITERATIONS:
        return None
    names = [name for name, _ in ranges]
    return ({n: Decimal(v) for n, v in zip(names, values, strict=True) if n}
            for values in itertools.product(*(r for _, r in ranges)))


def _values(ctx: RuleContext, expr: Any, repeats: tuple[Repeat, ...]) -> Iterator[tuple[Decimal, str]]:
    """Constant values of an expression over its iterations, with an iteration label."""
    if expr.kind == "number":
        yield expr.value, ""
        return
    bindings = _iterations(repeats, ctx.scope)
    if bindings is None:
        return
    for loop in bindings:
        try:
            value = constant(expr, ctx.scope.with_loop(loop))
        except EvalError:
            return
        if value is None:
            return
        label = (" in iteration " + ", ".join(f"{k}={v}" for k, v in loop.items())) if loop else ""
        yield value, label


def _positive(value: Decimal) -> bool:
    return value > 0


def _fraction(value: Decimal) -> bool:
    return 0 <= value < 1


# The values SP104 checks in each kind of instruction: (field, what it is, valid).
_RANGES: dict[str, tuple[tuple[str, str, Callable[[Decimal], bool]], ...]] = {
    "wallet_transfer": (("amount", "amount", _positive),),
    "cex_trade": (("amount", "amount", _positive), ("limit", "limit price", _positive),
                  ("leverage", "leverage", _positive)),
    "contract": (("amount", "amount", _positive), ("slippage", "slippage", _fraction)),
}


@rule("SP104")
def non_positive(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Constant amounts, prices, leverage and options must be in range."""
    if ctx.plan.holdings:
        for entry in ctx.plan.holdings.entries:
            for amount in entry.amounts:
                if amount.amount.value <= 0:
                    yield diag("SP104", f"holding of {amount.asset} is not positive",
                               amount.amount.span)
    for stmt, place in ctx.instructions():
        for name, what, valid in _RANGES[stmt.kind]:
            expr = getattr(stmt, name)
            if expr is None or expr.kind == "all" or expr.kind == "max":
                continue
            for value, label in _values(ctx, expr, place.repeats):
                if not valid(value):
                    yield diag("SP104", f"the {what} is {value.normalize():f}{label}; "
                               f"it must be {'from 0 to below 1' if what == 'slippage' else 'positive'}",
                               expr.span)
                    break
    limits: dict[str, tuple[Callable[[Decimal], bool], str]] = {
        "min_health": (lambda v: v > 0, "positive"),
        "max_slippage": (lambda v: 0 <= v < 1, "from 0 to below 1"),
        "gas_price_gwei": (lambda v: v >= 0, "zero or more")}
    for trigger in ctx.plan.triggers:
        for duration in (trigger.every, trigger.cooldown):
            if duration is not None and duration.value <= 0:
                yield diag("SP104", f"the duration {duration.text} is not positive",
                           duration.span, "write a positive duration such as 1h or 1d")
    for setting in ctx.plan.sets:
        if setting.name not in limits:
            continue
        valid, wanted = limits[setting.name]
        try:
            option = constant(setting.value, ctx.scope)
        except EvalError:
            continue  # reported by the constants rule (SP110), at the expression
        if option is not None and not (option.is_finite() and valid(option)):
            yield diag("SP104", f"`{setting.name}` cannot be {option.normalize():f}: it must be "
                       f"{wanted}", setting.value.span)


@rule("SP110")
def constants(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Every `let` and `set` has a value that can be computed: no division by zero, nothing
    out of range; an option's value is a constant (no run-time state)."""
    lets = {let.name: let for let in ctx.plan.lets}
    reported: set[tuple[str, Span]] = set()
    items: list[tuple[Let | Setting, str]] = [
        *((let, "constant") for let in ctx.plan.lets),
        *((setting, "option") for setting in ctx.plan.sets if setting.name in OPTIONS)]
    for item, what in items:
        if names_used(item.value) - set(lets):
            continue  # undefined names: SP108
        try:
            value = constant(item.value, ctx.scope)
        except EvalError as exc:
            # Unknown functions are SP108's own; a let used by others is reported once.
            if exc.code != "SP108" and (exc.code, exc.span) not in reported:
                reported.add((exc.code, exc.span))
                yield diag(exc.code, f"{what} `{item.name}`: {exc.message}", exc.span)
            continue
        if value is None and what == "option":
            yield diag("SP108", f"option `{item.name}` must be a constant; "
                       f"`{format_expr(item.value)}` depends on the run's state",
                       item.value.span, "write a number, or an expression of `let` constants "
                       "and `price(...)`")


@rule("SP105")
def duplicate_names(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Phases, atomic blocks in a phase, lets, options and loop variables are unique."""
    def dupes(items: Iterable[tuple[str, Span]], what: str) -> Iterator[Diagnostic]:
        seen: dict[str, Span] = {}
        for name, span in items:
            if name in seen:
                yield diag("SP105", f"duplicate {what} `{name}` (first at line {seen[name].line})",
                           ctx.at(span, name))
            else:
                seen[name] = span
    # Phases and triggers share one namespace (node ids start with either name).
    named = sorted([*((p.name, p.span) for p in ctx.plan.phases),
                    *((t.name, t.span) for t in ctx.plan.triggers)],
                   key=lambda item: (item[1].line, item[1].column))
    yield from dupes(named, "phase or trigger")
    yield from dupes(((x.name, x.span) for x in ctx.plan.lets), "constant")
    yield from dupes(((x.name, x.span) for x in ctx.plan.sets), "option")
    # One pass over the visits, grouped by phase (a scan per phase would be quadratic).
    blocks: dict[int, list[tuple[str, Span]]] = {}
    for stmt, place in ctx.visits():
        if stmt.kind == "atomic":
            blocks.setdefault(id(place.phase), []).append((stmt.name, stmt.span))
    for phase in ctx.blocks:
        if id(phase) in blocks:
            yield from dupes(blocks[id(phase)], f"atomic block in {phase.name}")
    lets = {x.name for x in ctx.plan.lets}
    for stmt, place in ctx.visits():
        if stmt.kind == "repeat" and stmt.var:
            outer = {r.var for r in place.repeats if r.var}
            if stmt.var in lets or stmt.var in outer:
                yield diag("SP105", f"loop variable `{stmt.var}` hides another name",
                           ctx.at(stmt.span, stmt.var))


@rule("SP106")
def unknown_after(ctx: RuleContext) -> Iterator[Diagnostic]:
    """`after` must name phases of the plan."""
    names = {p.name for p in ctx.plan.phases}
    for phase in ctx.plan.phases:
        for name in phase.after:
            if name not in names:
                span = ctx.at(Span(line=phase.span.line, column=phase.span.column,
                                   end_line=phase.span.line, end_column=10_000), name)
                yield diag("SP106", f"phase {phase.name} waits for unknown phase `{name}`",
                           span, _suggest(name, names))


@rule("SP107")
def phase_cycle(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Phase dependencies must not loop; reported at the cycle's first phase in the file."""
    if phase_names_in_order(ctx.plan) is not None:
        return  # no loop: networkx (slow to import) is needed only to name one
    import networkx as nx
    graph = phase_graph(ctx.plan)
    index = {p.name: i for i, p in enumerate(ctx.plan.phases)}
    by_name = {p.name: p for p in ctx.plan.phases}
    for component in nx.strongly_connected_components(graph):
        if len(component) == 1:
            (only,) = component
            if not graph.has_edge(only, only):
                continue
        first = min(component, key=lambda n: index[n])
        members = sorted(component, key=lambda n: index[n])
        phase = by_name[first]
        header = Span(line=phase.span.line, column=phase.span.column, end_line=phase.span.line,
                      end_column=phase.span.column + len("phase"))
        yield diag("SP107", "phase dependencies form a cycle: " +
                   " -> ".join([*members, members[0]]), header,
                   "remove one `after` so the phases can run in some order")


@rule("SP108")
def undefined_names(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Names must be defined before use; functions and options must exist."""
    defined: set[str] = set()
    for let in ctx.plan.lets:
        yield from _check_expr(ctx, let.value, defined)
        defined.add(let.name)
    lets = {let.name for let in ctx.plan.lets}
    for setting in ctx.plan.sets:
        if setting.name not in OPTIONS:
            yield diag("SP108", f"unknown option `{setting.name}`", ctx.at(setting.span, setting.name),
                       _suggest(setting.name, OPTIONS) or f"options: {', '.join(sorted(OPTIONS))}")
        yield from _check_expr(ctx, setting.value, lets)
    for expr, place in ctx.expressions():
        if place is None:
            continue
        loop_vars = {r.var for r in place.repeats if r.var}
        yield from _check_expr(ctx, expr, lets | loop_vars)


def _check_expr(ctx: RuleContext, expr: Any, defined: set[str]) -> Iterator[Diagnostic]:
    for name in sorted(names_used(expr) - defined):
        yield diag("SP108", f"undefined name `{name}`", ctx.at(expr.span, name),
                   _suggest(name, defined))
    for call in calls(expr):
        signature = FUNCTIONS.get(call.func)
        if signature is None:
            yield diag("SP108", f"unknown function `{call.func}`", call.span,
                       _suggest(call.func, FUNCTIONS) or f"functions: {', '.join(FUNCTIONS)}")
        elif len(call.args) != len(signature):
            yield diag("SP108", f"`{call.func}` takes {len(signature)} argument(s): "
                       f"{call.func}({', '.join(s.upper() for s in signature)})", call.span)
        else:
            for arg, kind in zip(call.args, signature, strict=True):
                if kind == "asset" and arg.kind != "asset":
                    yield diag("SP108", f"`{call.func}` expects an asset symbol here", arg.span)
                elif kind == "venue" and arg.kind != "name":
                    yield diag("SP108", f"`{call.func}` expects a venue name here", arg.span)


def _instruction_key(stmt: Any) -> str:
    if isinstance(stmt, WalletTransferInstruction):
        return "wallet_transfer"
    if isinstance(stmt, CEXTradeInstruction):
        return f"{stmt.market}_{stmt.side}"
    return str(stmt.operation)


@rule("SP109")
def all_or_max(ctx: RuleContext) -> Iterator[Diagnostic]:
    """`all` only where the instruction draws from a balance; `max` only for borrow."""
    for stmt, _ in ctx.instructions():
        key = _instruction_key(stmt)
        if isinstance(stmt.amount, AllAmount) and key not in ALL_ALLOWED:
            yield diag("SP109", f"`all` is not allowed for {key.replace('_', ' ')}",
                       stmt.amount.span, "write the amount")
        if isinstance(stmt.amount, MaxAmount) and key != "borrow":
            yield diag("SP109", f"`max` is only allowed for borrow, not {key.replace('_', ' ')}",
                       stmt.amount.span, "write the amount")


@rule("SP110")
def limits(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Repeat counts are whole constants from 1 to 10,000; a plan unrolls to at most 1M nodes."""
    bad = False
    for stmt in ctx.statements:
        if stmt.kind == "repeat" and repeat_count(stmt, ctx.scope) is None:
            bad = True
            yield diag("SP110", f"repeat count must be a whole constant from 1 to {MAX_REPEAT:,}",
                       stmt.count.span)
    if not bad:
        # Reported at the top-level statement where the running total crosses the limit.
        total = 0
        for phase in ctx.blocks:
            for stmt in phase.body:
                total += unrolled_size((stmt,), ctx.scope) or 0
                if total > MAX_NODES:
                    yield diag("SP110", f"the plan unrolls to more than {MAX_NODES:,} "
                               "instructions", stmt.span, "split the plan, or lower the counts")
                    return


@rule("SP200")
def transfer_in_atomic(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Wallet transfers cannot be bundled into a contract transaction."""
    for stmt, place in ctx.instructions():
        if place.atomic and stmt.kind == "wallet_transfer":
            yield diag("SP200", f"wallet transfer inside atomic block `{place.atomic.name}`",
                       stmt.span, "move the transfer before or after the block")


@rule("SP201")
def trade_in_atomic(ctx: RuleContext) -> Iterator[Diagnostic]:
    """CEX trades are off-chain and cannot be part of a transaction."""
    for stmt, place in ctx.instructions():
        if place.atomic and stmt.kind == "cex_trade":
            yield diag("SP201", f"CEX trade inside atomic block `{place.atomic.name}`",
                       stmt.span, "move the trade before or after the block")


def _is_flash(stmt: Any) -> bool:
    return isinstance(stmt, SmartContractInstruction) and stmt.operation.startswith("flash_")


@rule("SP202")
def flash_outside(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Flash loans only exist inside one transaction."""
    for stmt, place in ctx.instructions():
        if _is_flash(stmt) and place.atomic is None:
            word = stmt.operation.replace("_", " ")
            yield diag("SP202", f"{word} outside an atomic block", stmt.span,
                       "put the flash borrow, its use and its repay in one atomic block")


@rule("SP203")
def flash_unpaid(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Each flash borrow needs repays to the same lender, in full with fee, in its block."""
    for block in ctx.statements:
        if block.kind != "atomic":
            continue
        ops = [s for s in block.body if isinstance(s, SmartContractInstruction)]
        borrowed: dict[tuple[str, str], list[Any]] = {}
        for op in ops:
            if op.operation == "flash_borrow":
                borrowed.setdefault((op.token_in, op.venue or ""), []).append(op)
        for (token, venue), borrows in borrowed.items():
            first = borrows[0]
            after = ops[ops.index(first) + 1:]
            repays = [op for op in after if op.operation == "flash_repay"
                      and op.token_in == token and op.venue == venue]
            if not repays:
                yield diag("SP203", f"flash loan of {token} from {venue} is never repaid in "
                           f"block `{block.name}`", first.span,
                           f"add `flash repay all {token} to {venue}` at the end of the block")
                continue
            if any(isinstance(r.amount, AllAmount) for r in repays):
                continue
            owed = _constant_total(ctx, borrows)
            paid = _constant_total(ctx, repays)
            if owed is None or paid is None:
                continue
            fee = (ctx.market.flash_fee(venue, token) if ctx.market else None) or Decimal(0)
            if paid < owed * (1 + fee):
                yield diag("SP203", f"flash loan of {owed.normalize():f} {token} from {venue} "
                           f"needs {(owed * (1 + fee)).normalize():f} {token} back (with fee); "
                           f"the block repays {paid.normalize():f}", first.span,
                           f"repay with `flash repay all {token} to {venue}`")


def _constant_total(ctx: RuleContext, ops: list[Any]) -> Decimal | None:
    total = Decimal(0)
    for op in ops:
        if isinstance(op.amount, (AllAmount, MaxAmount)):
            return None
        try:
            value = constant(op.amount, ctx.scope)
        except EvalError:
            return None
        if value is None:
            return None
        total += value
    return total


@rule("SP204")
def empty_atomic(ctx: RuleContext) -> Iterator[Diagnostic]:
    """An atomic block with nothing in it still costs a transaction."""
    for stmt in ctx.statements:
        if stmt.kind == "atomic" and not stmt.body:
            yield diag("SP204", f"atomic block `{stmt.name}` is empty", stmt.span,
                       "remove it")


@rule("SP205")
def nested_in_atomic(ctx: RuleContext) -> Iterator[Diagnostic]:
    """An atomic block holds instructions only."""
    for stmt, place in ctx.visits():
        if place.atomic is None:
            continue
        if stmt.kind in ("atomic", "repeat", "assert"):
            what = {"atomic": "atomic block", "repeat": "repeat", "assert": "assert"}[stmt.kind]
            yield diag("SP205", f"{what} inside atomic block `{place.atomic.name}`", stmt.span,
                       "atomic blocks hold instructions only; write the operations out")


@rule("SP206", needs_market=True)
def not_one_transaction(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Operations that wait (an unstake queue) cannot complete in one transaction."""
    assert ctx.market is not None
    for stmt, place in ctx.instructions():
        if place.atomic and stmt.kind == "contract" and \
                stmt.operation == "unstake":
            terms = ctx.market.venues.get(stmt.venue or "")
            if isinstance(terms, StakingVenue) and not terms.unstake_atomic:
                yield diag("SP206", f"unstaking at {stmt.venue} waits in a withdrawal queue and "
                           "cannot complete inside one transaction", stmt.span,
                           "unstake outside the atomic block, or swap instead")


@rule("SP207")
def flash_without_executor(ctx: RuleContext) -> Iterator[Diagnostic]:
    """A flash loan calls back into contract code: the block needs a `via` executor."""
    for block, place in ctx.visits():
        # The outermost blocks only: a nested one is SP205's.
        if block.kind != "atomic" or place.atomic is not None:
            continue
        if not any(isinstance(op, SmartContractInstruction) and op.operation == "flash_borrow"
                   for op in block.body):
            continue
        terms = ctx.market.venues.get(block.via) if ctx.market and block.via else None
        if block.via is None or isinstance(terms, WalletVenue):
            where = Span(line=block.span.line, column=block.span.column,
                         end_line=block.span.line, end_column=block.span.column + len("atomic"))
            yield diag("SP207", f"atomic block `{block.name}` takes a flash loan without a `via` "
                       "executor contract: the lender calls back into contract code, which a "
                       "plain wallet does not have", where,
                       f"name the executor: `atomic {block.name} via instadapp {{`")


@rule("SP400")
def could_be_atomic(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Runs of contract operations outside atomic blocks pay one base fee each."""
    bodies: list[tuple[tuple[Any, ...], int]] = [(p.body, 1) for p in ctx.blocks]
    for stmt, place in ctx.visits():
        if stmt.kind == "repeat" and place.atomic is None:
            passes = 1
            for repeat in (*place.repeats, stmt):
                passes *= repeat_count(repeat, ctx.scope) or 1
            bodies.append((stmt.body, passes))
    base = ctx.market.gas.base_tx if ctx.market else 21_000
    gwei = ctx.market.gas.price_gwei if ctx.market else Decimal(20)
    for setting in ctx.plan.sets:
        if setting.name == "gas_price_gwei":
            try:
                gwei = constant(setting.value, ctx.scope) or gwei
            except EvalError:
                pass
    for body, passes in bodies:
        for run in contract_runs(body):
            units = (len(run) - 1) * base * passes
            eth = Decimal(units) * gwei / Decimal(1_000_000_000)
            yield diag("SP400", f"{len(run)} consecutive contract operations could be one "
                       f"atomic block, saving {units:,} gas ({eth.normalize():f} ETH)",
                       run[0].span, "wrap them in `atomic NAME { ... }`")


def contract_runs(body: Sequence[Any]) -> Iterator[list[SmartContractInstruction]]:
    """The runs of two or more consecutive contract operations directly in a body (SP400;
    the language server's fix wraps the same runs)."""
    run: list[SmartContractInstruction] = []
    for stmt in (*body, None):
        if isinstance(stmt, SmartContractInstruction):
            run.append(stmt)
            continue
        if len(run) >= 2:
            yield run
        run = []


@rule("SP401")
def unused_let(ctx: RuleContext) -> Iterator[Diagnostic]:
    """A constant nobody reads is probably a mistake."""
    used: set[str] = set()
    for expr, _ in ctx.expressions():
        used |= names_used(expr)
    for let in ctx.plan.lets:
        if let.name not in used:
            yield diag("SP401", f"constant `{let.name}` is never used", ctx.at(let.span, let.name),
                       "remove it, or use it")


def run_rules(ctx: RuleContext) -> list[Diagnostic]:
    """Every registered rule's diagnostics, sorted by position then code."""
    found: list[Diagnostic] = []
    for registered in RULES:
        if registered.needs_market and ctx.market is None:
            continue
        found.extend(registered.check(ctx))
    found.sort(key=lambda d: (d.span.line, d.span.column, d.code))
    return found
