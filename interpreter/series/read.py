"""Series of prices, funding and rates over time (LANGUAGE.md section 8).

A series is a CSV file with a header: `time` (ISO 8601 in UTC, or integer Unix
milliseconds), strictly increasing, and columns named by a key:

    price.ASSET                 USD price, held until the next value
    funding.VENUE.BASE          funding rate for one interval; a value is a settlement
    rate.ASSET                  exchange rate of a rate-bearing asset to its underlying, held
    supply.VENUE.ASSET          APR as a fraction, held
    borrow.VENUE.ASSET          APR as a fraction, held

A year of minutes is 525,600 rows, so the reader keeps no Python object per cell: times
are one `array('q')` of milliseconds, and each column is one bytearray holding its cells'
text with two `array('q')` of offsets per row (an empty held cell points at the value it
carries forward). A cell becomes a Decimal only when a step asks for it; `Column.floats`
gives a whole column as floats at once, for a quick look before exact arithmetic.

The plain path below reads line by line and says what is wrong with a bad series; the
common valid shape is first tried in bulk by `fast_read.py`, which answers only when the
plain path would certainly build the same series, so results and messages are the plain
path's either way, about six times sooner for a year of minutes.

A cell is a number of the market's own types (executors/market_numbers.py), because a
column carries the same quantity as the market field it replaces: prices, exchange rates and
oracle prices are `Positive`, a funding rate a `SignedFraction` (-1 < rate < 1), supply and
borrow APRs `NonNegative`; every one finite, exact (40 digits) and within 1e-30..1e30. A
series the market would refuse is refused: a bad series never creates money. Times are
Unix milliseconds from 1970-01-01 (Unix time 0) to the end of 9999.

The file is read through `dsl/files.py`: only a regular file, at most 2 GiB (a FIFO or
`/dev/zero` is refused before a byte is read).

Every problem is a `SeriesError` with one line saying where (`file.csv:7: ...`); the
linter reports it as SP500 at the `use series` line, the CLI as a one-line error (exit 2).
"""

from __future__ import annotations

import difflib
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from itertools import tee
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from pydantic import AfterValidator, BeforeValidator

from stratplan.dsl.files import FileRefused, read_regular
from stratplan.executors.market_numbers import NonNegative, Positive, SignedFraction, to_decimal

if TYPE_CHECKING:
    from collections.abc import Callable

    from stratplan.executors.market import Market

MAX_SERIES_BYTES = 2 * 1024 * 1024 * 1024
_NUMBER = re.compile(rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
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
        times = self.times
        lo = 0 if start_ms is None else next((i for i, t in enumerate(times) if t >= start_ms),
                                             len(times))
        hi = len(times) if end_ms is None else next(
            (i for i, t in enumerate(times) if t > end_ms), len(times))
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


def _column(name: str, where: str) -> Column:
    kind = name.split(".", 1)[0]
    pattern = _KEYS.get(kind)
    match = pattern.match(name) if pattern else None
    if match is None:
        raise SeriesError(f"{where}: unknown column {name!r} (expected time, price.ASSET, "
                          "rate.ASSET, oracle.ASSET, funding.VENUE.BASE, supply.VENUE.ASSET or "
                          "borrow.VENUE.ASSET)")
    return Column(name, kind, match.groups())


# What kind of venue each column kind names (funding: a CEX's perps; supply, borrow: a
# lending venue's rates).
_VENUE_KIND = {"funding": "cex", "supply": "lending", "borrow": "lending"}


def unknown_in_market(series: Series, market: Market) -> str | None:
    """Why a column of the series names an asset or a venue the market does not know (a
    typo such as `price.BTCC` or `funding.binace.BTC` would otherwise leave the market's
    constant in force, silently), or None. A known asset the plan never uses is fine. The
    message suggests the column meant when a known name is close (`funding.binance.BTC`)."""
    for col in series.columns.values():
        venue_kind = _VENUE_KIND.get(col.kind)
        if venue_kind is not None:
            venue = market.venues.get(col.key[0])
            if venue is None or venue.kind != venue_kind:
                known = sorted(n for n, v in market.venues.items() if v.kind == venue_kind)
                return (f"column {col.name!r}: the market has no {venue_kind} venue "
                        f"{col.key[0]!r} (its {venue_kind} venues: {', '.join(known) or 'none'})"
                        + _meant(col, 0, known))
        asset = col.key[-1]
        if asset not in market.prices:
            return (f"column {col.name!r}: the market has no asset {asset!r} (its assets: "
                    f"{', '.join(sorted(market.prices))})"
                    + _meant(col, len(col.key) - 1, sorted(market.prices)))
    return None


def _meant(col: Column, part: int, known: list[str]) -> str:
    """`; did you mean funding.binance.BTC?` when a known name is close to the unknown one."""
    close = difflib.get_close_matches(col.key[part], known, n=1, cutoff=0.7)
    if not close:
        return ""
    key = list(col.key)
    key[part] = close[0]
    return f"; did you mean {'.'.join((col.kind, *key))}?"


def _cells(line: bytes) -> list[bytes]:
    return [cell.strip() for cell in line.split(b",")]


def read_series(data: bytes, source: str) -> Series:
    """Parse series text; SeriesError naming the line when it is invalid.

    The bulk reader answers for the common valid shape; anything else, valid or not, is
    read again from the start on the plain path, which alone says what is wrong."""
    # Imported here: fast_read builds on this module's Column, Series and checks.
    from stratplan.interpreter.series.fast_read import read_fast

    series = read_fast(data, source)
    return series if series is not None else _read_plain(data, source)


def _read_plain(data: bytes, source: str) -> Series:
    """Series text read line by line: the reference the fast path is held to, and the one
    place that says what is wrong with a series."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.splitlines()
    number = 0
    header: list[bytes] | None = None
    for number, raw in enumerate(lines, 1):  # noqa: B007 - the header's line number is used
        if raw.strip():
            header = _cells(raw)
            break
    if header is None:
        raise SeriesError(f"{source}: the series is empty (expected a header with `time`)")
    try:
        names = [cell.decode("ascii") for cell in header]
    except UnicodeDecodeError:
        raise SeriesError(f"{source}:{number}: the header is not ASCII") from None
    if names[0] != "time":
        raise SeriesError(f"{source}:{number}: the first column must be `time`, "
                          f"found {names[0]!r}")
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise SeriesError(f"{source}:{number}: column {duplicate!r} appears twice")
    series = Series(source)
    columns = [_column(name, f"{source}:{number}") for name in names[1:]]
    for col in columns:
        series.columns[col.name] = col
    width = len(names)
    times = series.times
    previous: int | None = None
    checked: dict[str, bytes] = {}
    header_line = number
    for number, raw in enumerate(lines[header_line:], header_line + 1):
        if not raw.strip():
            continue
        cells = _cells(raw)
        if len(cells) != width:
            raise SeriesError(f"{source}:{number}: {len(cells)} cells, the header has {width}")
        try:
            moment = parse_time(cells[0].decode("ascii"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise SeriesError(f"{source}:{number}: bad time: {exc}") from None
        if previous is not None and moment <= previous:
            raise SeriesError(f"{source}:{number}: time {iso(moment)} is not after the "
                              f"previous row's {iso(previous)} (times must strictly increase)")
        previous = moment
        times.append(moment)
        for col, cell in zip(columns, cells[1:]):  # noqa: B905 - widths checked above
            if not cell:
                if col.kind in HELD and col.starts:
                    col.starts.append(col.starts[-1])
                    col.ends.append(col.ends[-1])
                else:
                    at = len(col.data)
                    col.starts.append(at)
                    col.ends.append(at)
                continue
            if cell != checked.get(col.name):  # a value repeated is checked once
                _check_value(col, cell, f"{source}:{number}")
                checked[col.name] = cell
            at = len(col.data)
            col.data += cell
            col.starts.append(at)
            col.ends.append(at + len(cell))
    if not times:
        raise SeriesError(f"{source}: the series has a header but no rows")
    return series


def _checks(number_type: Any) -> tuple[Callable[..., Any], tuple[Callable[..., Any], ...]]:
    """A market number type (`Annotated[Decimal, BeforeValidator(to_decimal),
    AfterValidator(positive)]`) as its reader and its checks, so that a series column is
    held to the very type its market field has, not to a copy of its rule."""
    metadata = get_args(number_type)[1:]
    before: list[Callable[..., Any]] = [m.func for m in metadata
                                        if isinstance(m, BeforeValidator)]
    after: tuple[Callable[..., Any], ...] = tuple(m.func for m in metadata
                                                  if isinstance(m, AfterValidator))
    return (before[0] if before else to_decimal), after


# The market's type of each column's quantity: a price (`prices`), an exchange rate
# (`assets.X.rate`) and an oracle price are Positive, a funding rate (`rates.funding`) a
# SignedFraction, a supply or borrow APR (`rates.lending`) NonNegative.
_TYPES = {kind: _checks(number_type) for kind, number_type in (
    ("price", Positive), ("rate", Positive), ("oracle", Positive),
    ("funding", SignedFraction), ("supply", NonNegative), ("borrow", NonNegative))}


def cell_value(kind: str, cell: bytes) -> Decimal:
    """A cell of a column of `kind` as the number it holds: written in ASCII as the format
    says, and of the market's type for that quantity; ValueError saying why not."""
    if _NUMBER.match(cell) is None:
        shown = cell.decode("utf-8", "replace")
        raise ValueError(f"{shown!r} is not a number (digits 0-9, such as 67800 or 0.0001)")
    value = Decimal(cell.decode("ascii"))
    read, checks = _TYPES[kind]
    # The pattern admits only finite numbers; one of at most 41 characters has at most 40
    # digits, and a magnitude in 1e-30..1e29: those pass the type's reader as they are.
    if len(cell) > 41 or not (value.is_zero() or -30 <= value.adjusted() < 30):
        value = read(value)  # the market's rules: finite, exact, in range
    for check in checks:
        value = check(value)
    checked: Decimal = value
    return checked


def _check_value(col: Column, cell: bytes, where: str) -> None:
    """A cell as the market's number type for its column (SeriesError otherwise)."""
    try:
        cell_value(col.kind, cell)
    except ValueError as exc:
        raise SeriesError(f"{where}: {col.name}: {exc}") from None


def series_head(data: bytes) -> bytes:
    """The header and the first row of series text (line ends as `\\n`), or the text's
    blank lines only: what a run at the series' first time reads of it."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = [line for line in data.splitlines() if line.strip()][:2]
    return b"".join(line + b"\n" for line in lines)


def load_series(path: str | Path) -> Series:
    """Read a series file; SeriesError with a one-line reason when it cannot be used."""
    try:
        data = read_regular(path, MAX_SERIES_BYTES, "series file")
    except FileRefused as exc:
        raise SeriesError(str(exc)) from None
    return read_series(data, str(path))
