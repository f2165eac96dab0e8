"""Series of prices, funding and rates over time (LANGUAGE.md section 8).

A series is a CSV file with a header: `time` (ISO 8601 in UTC, or integer Unix
milliseconds), strictly increasing, and columns named by a key:

    price.ASSET                 USD price, held until the next value
    funding.VENUE.BASE          funding rate for one interval; a value is a settlement
    rate.ASSET                  exchange rate of a rate-bearing asset to its underlying, held
    supply.VENUE.ASSET          APR as a fraction, held
    borrow.VENUE.ASSET          APR as a fraction, held

A series in memory (times and compact columns, no Python object per cell) is
`columns.py`'s.

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
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from pydantic import AfterValidator, BeforeValidator

from stratplan.dsl.files import FileRefused, read_regular
from stratplan.executors.market_numbers import NonNegative, Positive, SignedFraction, to_decimal
from stratplan.interpreter.series.columns import (
    HELD,
    MAX_MS,
    Column,
    Series,
    SeriesError,
    column_named,
    iso,
    parse_time,
)
from stratplan.interpreter.series.fast_read import read_fast

if TYPE_CHECKING:
    from collections.abc import Callable

    from stratplan.executors.market import Market

MAX_SERIES_BYTES = 2 * 1024 * 1024 * 1024
_NUMBER = re.compile(rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


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
    columns = [column_named(name, f"{source}:{number}") for name in names[1:]]
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


# The series' types live in columns.py (both readers build them); they are named here too,
# where every caller has always found them.
__all__ = ["HELD", "MAX_MS", "MAX_SERIES_BYTES", "Column", "Series", "SeriesError",
           "cell_value", "iso", "load_series", "parse_time", "read_series", "series_head",
           "unknown_in_market"]
