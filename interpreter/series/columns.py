"""What a series is, in memory: times and compact columns (LANGUAGE.md section 8).

A year of minutes is 525,600 rows, so a series keeps no Python object per cell: times are
one `array('q')` of milliseconds, and each column is one bytearray holding its cells' text
with two `array('q')` of offsets per row (an empty held cell points at the value it carries
forward). A cell becomes a Decimal only when a step asks for it; `Column.floats` gives a
whole column as floats at once, for a quick look before exact arithmetic.

Both readers build these: the plain one (`read.py`, line by line, every message) and the
bulk one (`fast_read.py`), which is why they live apart from either.
"""

from __future__ import annotations

import operator
import re
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from itertools import compress, repeat, tee

_ASSET = r"[a-z]*[A-Z][A-Za-z0-9.]*"
_NAME = r"[a-z_][a-z0-9_]*"
_KEYS = {
    "price": re.compile(rf"price\.({_ASSET})\Z"),
    "rate": re.compile(rf"rate\.({_ASSET})\Z"),
    "oracle": re.compile(rf"oracle\.({_ASSET})\Z"),  # v3: a lending venue's oracle price
    "funding": re.compile(rf"funding\.({_NAME})\.({_ASSET})\Z"),
    "supply": re.compile(rf"supply\.({_NAME})\.({_ASSET})\Z"),
    "borrow": re.compile(rf"borrow\.({_NAME})\.({_ASSET})\Z"),
}
HELD = frozenset({"price", "rate", "oracle", "supply", "borrow"})
_NO_VALUE = {"": "nan"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Unix milliseconds from 1970 to 9999: a bigger number is not a time in milliseconds.
MAX_MS = 253_402_300_799_999


def has_none(values: Iterable[object]) -> bool:
    """Whether any of the values is None, by identity: `None in values` asks each Decimal
    `== None`, which goes through the numbers ABCs (0.2 us a cell)."""
    return any(map(operator.is_, values, repeat(None)))


class SeriesError(Exception):
    """The series cannot be used; the message is one line and says where."""


@dataclass
class Column:
    """One column: its key parts and its cells' text, stored compactly."""

    name: str
    kind: str                       # price, rate, funding, supply, borrow
    key: tuple[str, ...]            # (ASSET,) or (VENUE, ASSET)
    data: bytearray = field(default_factory=bytearray)
    starts: array = field(default_factory=lambda: array("q"))
    ends: array = field(default_factory=lambda: array("q"))
    # The cell last read (its start and end in `data`) and its value: consecutive steps
    # often share one (a held value is the same cell), so it is parsed once.
    _start: int = -1
    _end: int = -1
    _value: Decimal | None = None
    # `floats()` once computed (or filled by the fast reader, which has the cells at hand):
    # a cache, so neither part of what a column is nor shown.
    _floats: array | None = field(default=None, compare=False, repr=False)

    def value(self, row: int) -> Decimal | None:
        """The value in force at `row` (carried forward for held columns), None when there
        is none yet (or, for funding, when the row has no settlement)."""
        start, end = self.starts[row], self.ends[row]
        if start == self._start and end == self._end:
            return self._value
        value = Decimal(self.data[start:end].decode("ascii")) if start != end else None
        self._start, self._end, self._value = start, end, value
        return value

    def values(self, start: int, stop: int) -> list[Decimal | None]:
        """`value(row)` for each row in [start, stop), in one pass: a cell several rows
        share is one Decimal, as `value` gives it (time/accruing.py reads its rows so)."""
        starts, ends = self.starts[start:stop], self.ends[start:stop]
        if not starts:
            return []
        data = self.data
        if starts[1:] == ends[:-1]:
            # Each row's cell right after the row before's (a price a minute): a new cell at
            # every row, decoded at once, then parsed.
            low = starts[0]
            text = data[low:ends[-1]].decode("ascii")
            cells = list(map(text.__getitem__, map(slice, map(operator.sub, starts, repeat(low)),
                                                   map(operator.sub, ends, repeat(low)))))
            if "" not in cells:  # an empty cell has no value: read as `value` reads it
                out: list[Decimal | None] = list(map(Decimal, cells))
                self._start, self._end, self._value = starts[-1], ends[-1], out[-1]
                return out
        out = []
        append = out.append
        last_start, last_end, value = self._start, self._end, self._value
        for begin, end in zip(starts, ends, strict=True):
            if begin != last_start or end != last_end:
                value = Decimal(data[begin:end].decode("ascii")) if begin != end else None
                last_start, last_end = begin, end
            append(value)
        self._start, self._end, self._value = last_start, last_end, value
        return out

    def floats(self) -> array:
        """`array('d')` with, per row, the value in force as a float (NaN when `value(row)`
        is None): a backtest compares a whole column with a threshold this way first and
        takes exact Decimals only for the rows that may matter. Computed once, then cached.
        A float is the cell's text correctly rounded, as `float(value(row))` is."""
        if self._floats is None:
            text = self.data.decode("ascii")  # the reader admits ASCII cells only
            cells, default = tee(map(text.__getitem__, map(slice, self.starts, self.ends)))
            # An empty cell (no value) reads as "nan", any other as itself.
            self._floats = array("d", map(float, map(_NO_VALUE.get, cells, default)))
        return self._floats

    def changes(self) -> list[int]:
        """Rows where the value changes: a funding column's cells (settlements), or a held
        column's new cells (a price, rate, supply, borrow or oracle value), in order."""
        starts, ends = self.starts, self.ends
        if self.kind == "funding":
            return list(compress(range(len(starts)), map(operator.ne, starts, ends)))
        moved = map(operator.ne, ends[1:], ends[:-1])
        return ([0] if len(ends) and starts[0] != ends[0] else []) + \
            list(compress(range(1, len(ends)), moved))

    def first_value(self) -> Decimal | None:
        """The first value in the column, or None when it is empty throughout."""
        for row in range(len(self.starts)):
            if self.starts[row] != self.ends[row]:
                return self.value(row)
        return None


@dataclass
class Series:
    """Times in Unix milliseconds and the columns by name."""

    source: str
    times: array = field(default_factory=lambda: array("q"))
    columns: dict[str, Column] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)

    def by_kind(self, kind: str) -> Iterator[Column]:
        """The columns of one kind, in file order."""
        return (c for c in self.columns.values() if c.kind == kind)

    def column(self, kind: str, *key: str) -> Column | None:
        """The column `kind.key...`, or None."""
        return self.columns.get(".".join((kind, *key)))

    @property
    def step_ms(self) -> int | None:
        """The smallest interval between two rows, or None for a single row."""
        times = self.times
        if len(times) < 2:
            return None
        return min(times[i + 1] - times[i] for i in range(len(times) - 1))

    def slice(self, start_ms: int | None, end_ms: int | None) -> Series:
        """The rows with start <= time <= end, held values carried into the first row."""
        times = self.times  # strictly increasing: the bounds by bisection
        lo = 0 if start_ms is None else bisect_left(times, start_ms)
        hi = len(times) if end_ms is None else bisect_right(times, end_ms)
        result = Series(self.source, times[lo:hi])
        for name, col in self.columns.items():
            starts, ends = col.starts[lo:hi], col.ends[lo:hi]
            floats = col._floats[lo:hi] if col._floats is not None else None
            result.columns[name] = Column(col.name, col.kind, col.key, col.data, starts, ends,
                                          _floats=floats)
        return result


def iso(ms: int) -> str:
    """`2024-01-01T00:00:00Z` (milliseconds shown only when there are some)."""
    seconds, rest = divmod(ms, 1000)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{rest:03d}Z" if rest else f"{text}Z"


def parse_time(text: str) -> int:
    """Unix milliseconds from ISO 8601 (UTC) or an integer in milliseconds, from 1970 to
    9999; ValueError."""
    value = _time(text.strip())
    if value < 0:
        raise ValueError(f"{text.strip()!r} is before 1970-01-01T00:00:00Z (Unix time 0), "
                         "where times start")
    return value


def _time(text: str) -> int:
    if text.isascii() and text.isdigit():
        value = int(text)
        if value > MAX_MS:
            raise ValueError(f"{text} is not a time in milliseconds")
        return value
    if not text or not text.isascii():
        raise ValueError(f"{text!r} is not a time")
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif moment.utcoffset() != UTC.utcoffset(None):
        moment = moment.astimezone(UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def column_named(name: str, where: str) -> Column:
    """The empty column a header cell names; SeriesError when it names none."""
    kind = name.split(".", 1)[0]
    pattern = _KEYS.get(kind)
    match = pattern.match(name) if pattern else None
    if match is None:
        raise SeriesError(f"{where}: unknown column {name!r} (expected time, price.ASSET, "
                          "rate.ASSET, oracle.ASSET, funding.VENUE.BASE, supply.VENUE.ASSET or "
                          "borrow.VENUE.ASSET)")
    return Column(name, kind, match.groups())
