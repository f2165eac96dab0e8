"""What a backtest produces: its events, snapshots and result, and the attribution parts.

Kept apart from the loop (time/backtest.py) so that triggers, metrics and reports read
these types without importing the loop that makes them.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import repeat
from typing import Any, overload

from stratplan.dsl.decimals import EXACT
from stratplan.dsl.models import Plan
from stratplan.dsl.spans import Span
from stratplan.executors.market import Market
from stratplan.interpreter.dag import Dag
from stratplan.interpreter.engine import Engine, Outcome
from stratplan.interpreter.fills import Fill
from stratplan.interpreter.series.read import Series

ZERO = Decimal(0)
PARTS = ("price", "funding", "supply_interest", "borrow_interest", "staking", "fees", "gas",
         "slippage", "liquidations")


@dataclass
class Event:
    """A firing, a failed firing, a liquidation call or a bad-debt write-off, at a time.

    A lending liquidation names the `collateral` seized and the `debt` repaid, with the
    amounts `repaid` and `seized` (units of each); a perp's names the pair as `debt` and
    the size closed as `repaid`; a `bad_debt` write-off says `written_off_usd`."""

    time: int
    kind: str                       # firing, failure, liquidation, bad_debt
    name: str                       # the trigger, or the venue
    node: str | None = None
    line: int | None = None
    code: str | None = None
    message: str = ""
    loss_usd: Decimal | None = None
    span: Span | None = None
    collateral: str | None = None
    debt: str | None = None
    repaid: Decimal | None = None
    seized: Decimal | None = None
    written_off_usd: Decimal | None = None


@dataclass(slots=True)
class Snapshot:
    """Step 5: the state after a step; `health_before` is each lending venue's health
    before the step's liquidations (step 3), for `min_health` (LANGUAGE.md section 9)."""

    time: int
    value: Decimal
    health: dict[str, Decimal | None]
    exposure: dict[str, Decimal]
    parts: dict[str, Decimal]
    health_before: dict[str, Decimal | None] | None = None


class Snapshots(Sequence[Snapshot]):
    """Every step's snapshot, kept as columns (a year of minutes is 525,600 of them): times
    in an array, values in a list, health and exposure tables shared with the previous step
    when equal, and the PnL parts only where one but `price` is not zero. A step's `price`
    part is not kept: it is what the step's value change leaves of the other parts (exactly
    how the loop worked it out, `attribution.close_parts`), so it is recomputed, equal to the digit.
    Reading an item builds its `Snapshot`; the columns serve the metrics directly."""

    def __init__(self) -> None:
        self.times = array("q")
        self.values: list[Decimal] = []
        self._health: list[dict[str, Decimal | None]] = []
        self._before: list[dict[str, Decimal | None] | None] = []
        self._exposure: list[dict[str, Decimal]] = []
        self._parts: dict[int, dict[str, Decimal]] = {}   # rows with a part but price
        self._first: dict[str, Decimal] | None = None     # row 0's parts, price included

    def append(self, snap: Snapshot) -> None:
        """Keep one step (its parts' `price` is the remainder of the others, as `close_parts`
        and the first step of the loop make it)."""
        row = len(self.values)
        self.times.append(snap.time)
        self.values.append(snap.value)
        health, exposure = snap.health, snap.exposure
        if row:
            last = self._health[-1]
            if health is not last and _same_digits(health, last):
                health = last
            last_exposure = self._exposure[-1]
            if exposure is not last_exposure and _same_digits(exposure, last_exposure):
                exposure = last_exposure
        before = snap.health_before
        if before is not None and before is not health and _same_digits(before, health):
            before = health
        self._health.append(health)
        self._before.append(before)
        self._exposure.append(exposure)
        if not row:
            self._first = dict(snap.parts)
            return
        # A part the step never touched is the ZERO it was made with; any other is kept,
        # a zero with digits of its own (0.00, -0) too, so every step reads back as it was.
        others = {name: value for name, value in snap.parts.items()
                  if value is not ZERO and name != "price"}
        if others:
            self._parts[row] = others

    def repeat_last(self, times: Sequence[int], values: Iterable[Decimal]) -> None:
        """Keep steps where only prices moved (time/quiet.py): the last step's health
        and exposure tables (health before liquidations too: there were none), no part
        but `price`, and the given values."""
        count = len(times)
        self.times.extend(times)
        before = len(self.values)
        self.values.extend(values)
        if len(self.values) - before != count:
            raise ValueError("one value a step")
        health, exposure = self._health[-1], self._exposure[-1]
        self._health.extend(repeat(health, count))
        self._before.extend(repeat(health, count))
        self._exposure.extend(repeat(exposure, count))

    def parts(self, row: int) -> dict[str, Decimal]:
        """The step's PnL parts, every name of PARTS."""
        if row == 0 and self._first is not None:
            return dict(self._first)
        parts = dict.fromkeys(PARTS, ZERO)
        others = self._parts.get(row)
        rest = ZERO
        if others:
            for name, value in others.items():
                parts[name] = value
                if value:  # as `close_parts` sums them: zeros skipped
                    rest = EXACT.add(rest, value)
        change = EXACT.subtract(self.values[row], self.values[row - 1])
        parts["price"] = EXACT.subtract(change, rest)
        return parts

    def health_tables(self) -> Iterator[tuple[int, dict[str, Decimal | None] | None,
                                              dict[str, Decimal | None]]]:
        """(time, health before the step's liquidations, health after) of every step."""
        return zip(self.times, self._before, self._health, strict=True)

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> Snapshot: ...

    @overload
    def __getitem__(self, index: slice) -> list[Snapshot]: ...

    def __getitem__(self, index: int | slice) -> Snapshot | list[Snapshot]:
        if isinstance(index, slice):
            return [self[row] for row in range(*index.indices(len(self)))]
        row = range(len(self))[index]
        return Snapshot(self.times[row], self.values[row], self._health[row],
                        self._exposure[row], self.parts(row), self._before[row])

    def __iter__(self) -> Iterator[Snapshot]:
        return (self[row] for row in range(len(self)))


def _same_digits(one: Mapping[str, Decimal | None], two: Mapping[str, Decimal | None]) -> bool:
    """Equal tables whose values are written alike too (1.0 and 1.00 are equal, not alike:
    `compare_total` tells them apart)."""
    if len(one) != len(two):
        return False
    for key, value in one.items():
        other = two.get(key, _MISSING)
        if value is other:
            continue
        if value is None or other is None or other is _MISSING \
                or value.compare_total(other):  # type: ignore[arg-type]
            return False
    return True


_MISSING = object()


@dataclass
class Notice:
    """A diagnostic the backtest found for lint: code, message, where."""

    code: str
    message: str
    span: Span


@dataclass
class BacktestResult:
    """Everything a backtest report needs."""

    plan: Plan
    series: Series
    market: Market
    engine: Engine
    phases: Outcome
    dag: Dag
    snapshots: Snapshots = field(default_factory=Snapshots)
    events: list[Event] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    firings: dict[str, int] = field(default_factory=dict)
    pnl: dict[str, Decimal] = field(default_factory=dict)
    value_start: Decimal = ZERO
    value_end: Decimal = ZERO
    fills: list[Fill] = field(default_factory=list)
    # The plan's starting holdings valued at the last step's prices (buy and hold).
    benchmark_end: Decimal = ZERO

    @property
    def failed(self) -> bool:
        """True when the phases or a firing failed."""
        return self.phases.failure is not None or any(e.kind == "failure" for e in self.events)


def firing_event(trigger: Any, now: int, outcome: Outcome, stamp: str) -> Event:
    """A firing's event: `firing` when its DAG ran, else `failure` at the node that failed
    (node ids carry `@` and the step time, as the firing's fills do)."""
    failure = outcome.failure
    if failure is None:
        return Event(now, "firing", trigger.name, f"{trigger.name}@{stamp}", trigger.span.line,
                     None, f"{len(outcome.steps)} node(s) ran")
    return Event(now, "failure", trigger.name, f"{failure.node}@{stamp}", failure.span.line,
                 failure.code, failure.message, None, failure.span)
