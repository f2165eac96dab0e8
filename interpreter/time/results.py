"""What a backtest produces: its events, snapshots and result, and the attribution parts.

Kept apart from the loop (time/backtest.py) so that triggers, metrics and reports read
these types without importing the loop that makes them.
"""

from __future__ import annotations

import operator
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain, repeat
from typing import Any, overload

from stratplan.dsl.decimals import EXACT
from stratplan.dsl.models import Plan
from stratplan.dsl.spans import Span
from stratplan.executors.market import Market
from stratplan.interpreter.dag import Dag
from stratplan.interpreter.engine import Engine, Outcome
from stratplan.interpreter.fills import Fill
from stratplan.interpreter.series.read import Series
from stratplan.interpreter.time.attribution import sum_parts
from stratplan.interpreter.time.running_metrics import RunningMetrics

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


_Entry = tuple[Any, ...] | None


class _Tables:
    """One kind of table every step keeps (health, health before liquidations, exposure),
    as one entry a step: a tuple of the keys (a tuple shared by every table with the same
    keys) and then the values, the entry itself shared with the step before when its values
    are written alike (None: no table). A dict a step costs ~230 bytes; a lending book's
    step keeps new tables (~60 bytes each now), a quiet row (time/quiet.py) one reference a
    table."""

    __slots__ = ("_known", "entries")

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self._known: dict[tuple[str, ...], tuple[str, ...]] = {}

    def append(self, table: Mapping[str, Any] | None, like: _Entry = None) -> None:
        """Keep a step's table, as the entry `like` (default: the step before's) when it
        has the same keys and values written alike (`compare_total`: 1.0 and 1.00 are
        equal but not alike)."""
        if table is None:
            self.entries.append(None)
            return
        keys, values = tuple(table), tuple(table.values())
        if like is None and self.entries:
            like = self.entries[-1]
        if like is not None and like[0] == keys and _alike(values, like[1:]):
            self.entries.append(like)
            return
        self.entries.append((self._known.setdefault(keys, keys), *values))

    def extend(self, keys: tuple[str, ...], columns: Sequence[Sequence[Any]],
               count: int) -> None:
        """`append` each of `count` rows of the columns as a table with these keys (one
        column a key, in their order): the same entries, shared as `append` shares them."""
        keys = self._known.setdefault(keys, keys)
        rows = list(zip(repeat(keys, count), *columns, strict=True))
        entries = self.entries
        equal = list(map(operator.eq, rows, chain(entries[-1:] or [None], rows)))
        if not any(equal):  # a moving table: each row a new entry
            entries.extend(rows)
            return
        for row, same in zip(rows, equal, strict=True):
            last = entries[-1] if entries else None
            entries.append(last if same and last is not None and _alike(row[1:], last[1:])
                           else row)

    def table(self, row: int) -> dict[str, Any] | None:
        entry = self.entries[row]
        return None if entry is None else dict(zip(entry[0], entry[1:], strict=True))


class Snapshots(Sequence[Snapshot]):
    """Every step's snapshot, kept as columns (a year of minutes is 525,600 of them): times
    in an array, values in a list, health and exposure tables as key and value tuples shared
    with the step before when alike (`_Tables`), and each PnL part but `price` as a column
    from the first step that has it on (a step that did not touch it holds the very ZERO it
    was made with). A step's `price` part is not kept: it is what the step's value change
    leaves of the other parts (exactly how the loop worked it out,
    `attribution.close_parts`), so it is recomputed, equal to the digit. Reading an item
    builds its `Snapshot`.

    Every step given also feeds `running` (drawdown, step returns, lowest health: the
    summary's metrics, `running_metrics.py`). With `keep=False` that is all a step leaves:
    only the first and the last steps stay readable (and the one before the last), as
    their `Snapshot`s, so a run whose report shows no step holds none (issue 27); reading
    any other step, or every step, is an error, never a wrong answer."""

    def __init__(self, keep: bool = True, start: Decimal | None = None) -> None:
        self.keep = keep
        self.length = 0  # steps given (with `keep=False`, more than the columns hold)
        self.running = RunningMetrics(start)
        self.times = array("q")
        self.values: list[Decimal] = []
        self._health = _Tables()
        self._before = _Tables()
        self._exposure = _Tables()
        self._parts: dict[str, list[Decimal]] = {}     # rows 1.., a part but price each
        self._first: dict[str, Decimal] | None = None  # row 0's parts, price included
        self._kept: list[Snapshot] = []  # `keep=False`: the first and the last two steps

    def append(self, snap: Snapshot) -> None:
        """Keep one step (its parts' `price` is the remainder of the others, as `close_parts`
        and the first step of the loop make it)."""
        self.length += 1
        self.running.value(snap.time, snap.value)
        self.running.tables(snap.time, snap.health_before, snap.health)
        if not self.keep:
            self._keep_last(snap)
            return
        row = len(self.values)
        self.times.append(snap.time)
        self.values.append(snap.value)
        self._health.append(snap.health)
        if snap.health_before is snap.health:  # no liquidation, no firing: one table
            self._before.entries.append(self._health.entries[-1])
        else:
            self._before.append(snap.health_before, self._health.entries[-1])
        self._exposure.append(snap.exposure)
        if not row:
            self._first = dict(snap.parts)
            return
        columns = self._parts
        for name, value in snap.parts.items():
            # A part the step never touched is the ZERO it was made with; any other is
            # kept, a zero with digits of its own (0.00, -0) too, so every step reads back
            # as it was.
            if value is not ZERO and name != "price" and name not in columns:
                columns[name] = [ZERO] * (row - 1)
        for name, column in columns.items():
            column.append(snap.parts.get(name, ZERO))

    def extend(self, times: Sequence[int], values: list[Decimal],
               health: Mapping[str, list[Decimal | None]],
               exposure: Callable[[int, int], Mapping[str, list[Decimal]]],
               parts: Mapping[str, Sequence[Decimal]]) -> None:
        """Keep a stretch of steps at once (time/accruing.py), as appending each step's
        `Snapshot` would: their times and values, each venue's health (the same table
        before and after: no liquidation), each base's exposure (`exposure(i, j)`: steps
        i to j - 1, asked only for the steps kept) and each PnL part but `price` (the ZERO
        object where a step did not touch a part, as a step's own `parts` holds it), a
        column each."""
        count = len(times)
        if not count:
            return
        previous = self.values[-1]
        self.length += count
        self.running.values(times, values)
        for venue, column in health.items():
            self.running.lowest(times, venue, column)
        if not self.keep:
            first = max(0, count - 2)  # the last two are all it keeps
            exposed = exposure(first, count)
            for at in range(first, count):
                step = dict.fromkeys(PARTS, ZERO)
                step.update((name, part[at]) for name, part in parts.items())
                change = EXACT.subtract(values[at], values[at - 1] if at else previous)
                step["price"] = EXACT.subtract(change, sum_parts(step, skip="price"))
                table = {venue: column[at] for venue, column in health.items()}
                self._keep_last(Snapshot(
                    times[at], values[at], table,
                    {base: column[at - first] for base, column in exposed.items()},
                    step, table))
            return
        prior = len(self.values)
        self.times.extend(times)
        self.values.extend(values)
        self._health.extend(tuple(health), list(health.values()), count)
        self._before.entries.extend(self._health.entries[-count:])
        exposed = exposure(0, count)
        self._exposure.extend(tuple(exposed), list(exposed.values()), count)
        columns = self._parts
        for name, part in parts.items():
            if name != "price" and name not in columns \
                    and any(value is not ZERO for value in part):
                columns[name] = [ZERO] * (prior - 1)
        for name, kept in columns.items():
            given = parts.get(name)
            kept.extend(repeat(ZERO, count) if given is None else given)

    def _keep_last(self, snap: Snapshot) -> None:
        """`keep=False`: the step, with the first one and the one before it."""
        kept = self._kept
        kept.append(snap)
        self.times.append(snap.time)
        self.values.append(snap.value)
        if len(kept) > 3:
            del kept[1], self.times[1], self.values[1]

    def repeat_last(self, times: Sequence[int], values: Iterable[Decimal]) -> None:
        """Keep steps where only prices moved (time/quiet.py): the last step's health
        and exposure tables (health before liquidations too: there were none), no part
        but `price`, and the given values. Their tables are the step before's: no lower
        health, so only their values feed `running`."""
        count = len(times)
        given = list(values)
        if len(given) != count:
            raise ValueError("one value a step")
        feed = self.running.value
        for time, value in zip(times, given, strict=True):
            feed(time, value)
        self.length += count
        if not self.keep:
            last = self._kept[-1]
            for at in range(max(0, count - 2), count):  # the last two are all it keeps
                before = given[at - 1] if at else last.value
                parts = dict.fromkeys(PARTS, ZERO)
                # As `parts` works a kept step's out: the value change less no other part.
                parts["price"] = EXACT.subtract(EXACT.subtract(given[at], before), ZERO)
                self._keep_last(Snapshot(times[at], given[at], last.health, last.exposure,
                                         parts, last.health))
            return
        self.times.extend(times)
        self.values.extend(given)
        health = self._health.entries[-1]
        self._health.entries.extend(repeat(health, count))
        self._before.entries.extend(repeat(health, count))
        self._exposure.entries.extend(repeat(self._exposure.entries[-1], count))
        for column in self._parts.values():
            column.extend(repeat(ZERO, count))

    def _row(self, index: int) -> int:
        """Where step `index` is kept (negative indexes count from the end)."""
        row = range(self.length)[index]
        if self.keep or row == 0:
            return row
        if row == self.length - 1:
            return len(self._kept) - 1
        raise IndexError(f"step {row} of {self.length} was not kept (this backtest kept only "
                         "its first and last steps)")

    def _every_step(self) -> None:
        if not self.keep:
            raise ValueError("this backtest did not keep its steps: run it with "
                             "keep_steps=True to read them all")

    def parts(self, index: int) -> dict[str, Decimal]:
        """The step's PnL parts, every name of PARTS."""
        row = self._row(index)
        if not self.keep:
            return dict(self._kept[row].parts)
        if row == 0 and self._first is not None:
            return dict(self._first)
        parts = dict.fromkeys(PARTS, ZERO)
        for name, column in self._parts.items():
            value = column[row - 1]
            if value is not ZERO:
                parts[name] = value
        change = EXACT.subtract(self.values[row], self.values[row - 1])
        parts["price"] = EXACT.subtract(change, sum_parts(parts, skip="price"))
        return parts

    def venues_with_health(self) -> set[str]:
        """The venues with a health (debt there) after some step; each table looked at once."""
        self._every_step()
        found: set[str] = set()
        last: _Entry = None
        for entry in self._health.entries:
            if entry is last or entry is None:
                continue
            last = entry
            found.update(venue for venue, health in zip(entry[0], entry[1:], strict=True)
                         if health is not None)
        return found

    def key_sets(self) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """The steps' (health venues, exposure assets), each pair once, in the order first
        seen (the keys tuples are shared, so this is one dictionary lookup a step)."""
        self._every_step()
        found: dict[tuple[tuple[str, ...], tuple[str, ...]], None] = {}
        for health, exposure in zip(self._health.entries, self._exposure.entries,
                                    strict=True):
            found.setdefault((health[0] if health else (), exposure[0] if exposure else ()))
        return list(found)

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, index: int) -> Snapshot: ...

    @overload
    def __getitem__(self, index: slice) -> list[Snapshot]: ...

    def __getitem__(self, index: int | slice) -> Snapshot | list[Snapshot]:
        if isinstance(index, slice):
            return [self[row] for row in range(*index.indices(len(self)))]
        row = self._row(index)
        if not self.keep:
            snap = self._kept[row]
            before = snap.health_before
            return Snapshot(snap.time, snap.value, dict(snap.health), dict(snap.exposure),
                            dict(snap.parts), None if before is None else dict(before))
        health = self._health.table(row)
        exposure = self._exposure.table(row)
        assert health is not None and exposure is not None
        return Snapshot(self.times[row], self.values[row], health, exposure,
                        self.parts(index), self._before.table(row))

    def __iter__(self) -> Iterator[Snapshot]:
        self._every_step()
        return (self[row] for row in range(len(self)))


def _alike(one: tuple[Any, ...], two: tuple[Any, ...]) -> bool:
    """Equal values written alike too (1.0 and 1.00 are equal, not alike: `compare_total`
    tells them apart); None only alike to None."""
    if one is two:
        return True
    if one != two:  # unequal values (the usual case of a moving table) are never alike
        return False
    for value, other in zip(one, two, strict=True):
        if value is other:
            continue
        if value is None or other is None or value.compare_total(other):
            return False
    return True




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
