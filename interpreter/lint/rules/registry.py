"""The one table of static rules, and what every rule reads and returns.

`rule` registers a check under its code, in the order the rule modules are imported
(`rules/__init__.py`); `run_rules` runs the table. `RuleContext` walks the plan once and
every rule reads that walk; `diag` makes a diagnostic with the catalogue's severity.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from stratplan.dsl.diagnostics import Diagnostic
from stratplan.dsl.models import INSTRUCTION_KINDS, AtomicBlock, Phase, Plan, Repeat
from stratplan.dsl.spans import Span, split_lines
from stratplan.executors.market import Market
from stratplan.interpreter.evaluate import Scope
from stratplan.interpreter.lint.codes import CODES

# The options `set` may name.
OPTIONS = {"min_health", "max_slippage", "gas_price_gwei"}


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


def suggest(word: str, options: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, sorted(options), n=1)
    return f"did you mean `{close[0]}`?" if close else None


def run_rules(ctx: RuleContext) -> list[Diagnostic]:
    """Every registered rule's diagnostics, sorted by position then code."""
    found: list[Diagnostic] = []
    for registered in RULES:
        if registered.needs_market and ctx.market is None:
            continue
        found.extend(registered.check(ctx))
    found.sort(key=lambda d: (d.span.line, d.span.column, d.code))
    return found
