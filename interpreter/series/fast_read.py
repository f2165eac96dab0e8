"""The series reader's fast path: the common valid shape read with bulk operations.

`read.py` reads a series line by line (its plain path); a year of minutes, 525,600 rows,
takes about two seconds that way, most of it Python work per cell. Nearly every series a
backtest reads has one plain shape, though: the header on the first line, one line ending
(`\\n` or `\\r\\n`) throughout, times all ISO `YYYY-MM-DDTHH:MM:SSZ` or all integer
milliseconds, and cells that are plain decimals. This module reads that shape a chunk of
lines at a time with C-level operations over whole columns (`bytes.split`, `translate`,
`map`, `accumulate`, `array`), so no Python object exists per cell of the whole file.

It is a proof, not a second reader: it accepts a chunk only when bulk checks show that the
plain path would accept every line of it and build the very same columns, and otherwise it
answers None, and `read_series` reads the whole text again on the plain path. So every
error message, and the result for any odd input (blank lines, spaces, quotes, a stray
`\\r`, an exponent, a `+` sign, mixed time shapes...), is the plain path's by construction.
The checks are deliberately narrower than what the plain path accepts: a doubt costs time,
never a wrong result.

What makes a cell certainly valid (the plain path's `cell_value`): only ASCII digits and one
optional `.` (and a leading `-` for funding), `float()` accepting it (which rules out `.`,
`1.2.3` and `5-`), and at most 30 characters, so at most 30 digits and, unless zero, a
magnitude within 1e-29..1e30; then a price, an exchange rate or an oracle price must be above 0 as a float
(a decimal above 0 is a float above 0 at that size), a funding rate strictly between -1 and
1 as a float (rounding to nearest never brings a decimal at or beyond 1 inside), a supply or
borrow APR has no sign so it is never negative.
"""

from __future__ import annotations

from array import array
from itertools import accumulate, compress, pairwise, repeat
from math import nan
from operator import add, lt, mul, truth
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from collections.abc import Sequence

# Lines read at once: about this many bytes, cut at a line end. Small enough that one
# chunk's per-cell objects are a few MB, big enough that the per-chunk work is negligible.
# A module constant so the tests can lower it and put chunk boundaries everywhere.
CHUNK_BYTES = 1 << 18

_DIGITS = b"0123456789"
# Every byte but `,` and the line end: deleting them leaves a chunk's skeleton, `,,\n` per
# line (`,,\r\n` when lines end so; a stray `\r` then shows).
_NOT_SKELETON = {b"\n": bytes(b for b in range(256) if b not in b",\n"),
                 b"\r\n": bytes(b for b in range(256) if b not in b",\r\n")}
# A chunk's lines as one row of cells: `\n` ends a cell, and so does `\r` where lines end
# with `\r\n` (anywhere else a `\r` stays in its cell, which it makes doubtful).
_CELLS = {b"\n": bytes.maketrans(b"\n", b","), b"\r\n": bytes.maketrans(b"\r\n", b",,")}
_HEADER = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._,"
# Digits as `0`: an ISO time then reads `0000-00-00T00:00:00Z` whatever its value.
_AS_ZERO = bytes.maketrans(_DIGITS, b"0" * 10)
_ISO = b"0000-00-00T00:00:00Z"
_ISO_SPLIT = bytes.maketrans(b"Z", b"T")  # date T hms T date T hms ...
_DAY = 86_400_000
_DATE = b"\0" * 10  # where a day's date goes in a day of times (_Reader._grid)
_ROW = len(_ISO) + 1  # an ISO time and its `\n`
# The bytes a cell of each kind may hold.
_SIGNED = _DIGITS + b".-"
_UNSIGNED = _DIGITS + b"."
_MAX_CELL = 30  # characters: at most 30 digits, so exact and below 1e30, and >= 1e-29
# A column with fewer values than 1 in this many rows has its offsets written a run of
# equal offsets at a time (_Reader._runs), not cell by cell.
_SPARSE = 8


class _Doubt(Exception):
    """The chunk is not certainly of the plain shape: read the whole text the plain way."""


class _Days(dict[bytes, int]):
    """`YYYY-MM-DD` -> Unix milliseconds of its midnight, computed by `parse_time` itself
    the first time a date is seen (a year of minutes has 365 dates for 525,600 rows)."""

    def __missing__(self, date: bytes) -> int:
        value = parse_time(date.decode("ascii") + "T00:00:00Z")  # ValueError: a doubt
        self[date] = value
        return value


class _Clock(dict[bytes, int]):
    """`HH:MM:SS` -> milliseconds since midnight (at most 86,400 of them). Only a time of
    day that any date takes as it is (00:00:00..23:59:59) is known; `24:00:00` or a leap
    second is a doubt, so the sum of a date's and a time's milliseconds is `parse_time` of
    the whole ISO text."""

    def __missing__(self, hms: bytes) -> int:
        hours, minutes, seconds = int(hms[0:2]), int(hms[3:5]), int(hms[6:8])
        if hours > 23 or minutes > 59 or seconds > 59:
            raise _Doubt
        value = ((hours * 60 + minutes) * 60 + seconds) * 1000
        self[hms] = value
        return value


def read_fast(data: bytes, source: str) -> Series | None:
    """The series in `data` when it has the plain shape (and so certainly reads the same
    on the plain path), None when it has not: then only the plain path may say what it is."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    line_end = data.find(b"\n", start)
    if line_end < 0:
        return None
    header = data[start:line_end]
    eol = b"\n"
    if header.endswith(b"\r"):
        header, eol = header[:-1], b"\r\n"
    if not header or header.translate(None, _HEADER):
        return None
    names = header.decode("ascii").split(",")
    if names[0] != "time" or len(set(names)) != len(names):
        return None
    series = Series(source)
    try:
        columns = [column_named(name, source) for name in names[1:]]
    except SeriesError:
        return None
    stop = len(data) - len(eol) if data.endswith(eol) else len(data)
    pos = line_end + 1
    if pos >= stop:
        return None  # no rows: the plain path says so
    reader = _Reader(series, columns)
    try:
        while pos < stop:
            cut = data.find(eol, min(pos + CHUNK_BYTES, stop), stop)
            if cut < 0:
                cut = stop
            reader.chunk(data[pos:cut], eol)
            pos = cut + len(eol)
    except (_Doubt, ValueError):
        return None
    return series


class _Reader:
    """The series being built, one chunk of lines at a time."""

    def __init__(self, series: Series, columns: list[Column]) -> None:
        self.series = series
        self.columns = columns
        for col in columns:
            series.columns[col.name] = col
            col._floats = array("d")
        self.width = len(columns) + 1
        self.days = _Days()
        self.clock = _Clock()
        self.day_text: dict[tuple[int, int], bytes] = {}

    def chunk(self, text: bytes, eol: bytes) -> None:
        """Add the lines of `text` (no final line end); _Doubt or ValueError when a line is
        not certainly of the plain shape."""
        width = self.width
        skeleton = text.translate(None, _NOT_SKELETON[eol])
        line = b"," * (width - 1) + eol
        lines = (len(skeleton) + len(eol)) // len(line)
        if skeleton != line * (lines - 1) + line[:width - 1]:
            raise _Doubt  # a line without `width` cells, a stray `\r`, a bare `\n`
        # Both `\r` and `\n` end a cell: with `\r\n` each line but the last has one more,
        # empty when the `\r` is right before its `\n` (a stray `\r` is in a cell).
        cells = text.translate(_CELLS[eol]).split(b",")
        stride = width + len(eol) - 1
        if stride > width and b"".join(cells[width::stride]):
            raise _Doubt  # a `\r` not right before its `\n`
        self._times(cells[0::stride])
        for index, col in enumerate(self.columns, 1):
            self._column(col, cells[index::stride])

    def _times(self, cells: list[bytes]) -> None:
        """Times all ISO `YYYY-MM-DDTHH:MM:SSZ` or all integer milliseconds, after the
        previous chunk's and strictly increasing."""
        joined = b"\n".join(cells)
        moments = self._grid(cells, joined)
        if moments is not None:
            pass
        elif joined.translate(_AS_ZERO) == b"\n".join(repeat(_ISO, len(cells))):
            parts = joined.translate(_ISO_SPLIT, b"\n").split(b"T")
            moments = list(map(add, map(self.days.__getitem__, parts[0:-1:2]),
                               map(self.clock.__getitem__, parts[1::2])))
            if not all(map(lt, moments, moments[1:])):
                raise _Doubt
        elif not joined.translate(None, _DIGITS + b"\n") and b"" not in cells:
            if max(map(len, cells)) > 15:
                raise _Doubt  # MAX_MS has 15 digits
            moments = list(map(int, joined.decode("ascii").split("\n")))
            if max(moments) > MAX_MS or not all(map(lt, moments, moments[1:])):
                raise _Doubt
        else:
            raise _Doubt
        times = self.series.times
        if times and moments[0] <= times[-1]:
            raise _Doubt
        times.fromlist(moments)

    def _grid(self, cells: list[bytes], joined: bytes) -> list[int] | None:
        """The times when they are ISO times one step apart, a step that divides a day
        (a minute, an hour, 8 hours...), as most series are; None otherwise.

        The first and last times are read by `parse_time`; the times between are then
        known, and the chunk's text must be exactly theirs as written by this function:
        each day's times are one text with the date left blank, the date written in per
        day. So a row is checked by comparing bytes, and strictly increases by its step."""
        count = len(cells)
        if count < 2 or len(cells[0]) != len(_ISO) or len(cells[-1]) != len(_ISO):
            return None
        first, last = parse_time(cells[0].decode("ascii")), parse_time(cells[-1].decode("ascii"))
        step, rest = divmod(last - first, count - 1)
        if rest or step <= 0 or step % 1000 or _DAY % step:
            return None
        key = (step, first % step)
        day = self.day_text.get(key)
        if day is None:
            day = self.day_text[key] = b"".join(
                b"%sT%02d:%02d:%02dZ\n" % (_DATE, ms // 3_600_000, ms // 60_000 % 60,
                                            ms // 1000 % 60)
                for ms in range(first % step, _DAY, step))
        per_day = _DAY // step
        text = []
        for moment in range(first - first % _DAY, last + 1, _DAY):
            begin = (first - moment) // step if moment <= first else 0
            end = (last - moment) // step + 1 if last < moment + _DAY else per_day
            date = iso(moment)[:10].encode("ascii")
            text.append(day[begin * _ROW:end * _ROW].replace(_DATE, date))
        if b"".join(text) != joined + b"\n":
            return None
        return list(range(first, last + 1, step))

    def _column(self, col: Column, cells: list[bytes]) -> None:
        """One column's cells: checked in bulk, then its text and offsets appended exactly
        as the plain path appends them cell by cell."""
        base = len(col.data)
        if b"" not in cells:
            lengths = list(map(len, cells))
            joined = b"".join(cells)
            floats = _floats(col.kind, cells, joined, max(lengths))
            col.data += joined
            # Each cell starts where the text so far ends and ends its length further.
            offsets = array("q", list(accumulate(lengths, initial=base)))
            col.starts += offsets[:-1]
            col.ends += offsets[1:]
            if col._floats is not None:
                col._floats.fromlist(floats)
            return
        values = list(filter(None, cells))
        lengths = list(map(len, values))
        joined = b"".join(values)
        floats = _floats(col.kind, values, joined, max(lengths)) if values else []
        col.data += joined
        if len(values) * _SPARSE < len(cells):
            self._runs(col, cells, base, lengths, floats)
            return
        lengths = list(map(len, cells))
        # An empty cell adds nothing, so start == end == the length so far (funding, or a
        # held column before its first value) ...
        offsets = array("q", list(accumulate(lengths, initial=base)))
        col.ends += offsets[1:]
        if col.kind in HELD:
            # ... but an empty held cell repeats the previous row's start (its end is the
            # length so far already): the latest start of a cell, as starts only grow.
            carried = col.starts[-1] if col.starts else 0
            starts = accumulate(map(mul, offsets[:-1], map(truth, lengths)), max, initial=carried)
            col.starts.fromlist(list(starts)[1:])
        else:
            col.starts += offsets[:-1]
        col._floats = None  # computed when asked for (Column.floats)

    @staticmethod
    def _runs(col: Column, cells: list[bytes], base: int, lengths: list[int],
              floats: list[float]) -> None:
        """The offsets of a column of few values among empty cells (funding settlements
        every 8 hours in a series of minutes): between two values every row has the same
        offsets, so they are written a run at a time, and so is the floats cache."""
        held = col.kind in HELD
        rows = [*compress(range(len(cells)), cells), len(cells)]
        ends = array("q", [base]) * rows[0]
        # Before the first value a held column carries the previous chunk's (at first the
        # plain path's `len(data)`, 0); funding has no value there.
        starts = array("q", [col.starts[-1] if held and col.starts else base]) * rows[0]
        cache = col._floats
        if cache is not None:
            cache += array("d", [cache[-1] if held and cache else nan]) * rows[0]
        end = base
        for value, (row, following), length in zip(floats, pairwise(rows), lengths,
                                                   strict=True):
            run = following - row
            start, end = end, end + length
            ends += array("q", [end]) * run
            if held:
                starts += array("q", [start]) * run
            else:  # a funding value is its own row's only; the empty rows after it start
                starts.append(start)  # and end where the text so far ends
                starts += array("q", [end]) * (run - 1)
            if cache is not None:
                cache.append(value)
                cache += array("d", [value if held else nan]) * (run - 1)
        col.starts += starts
        col.ends += ends


def _floats(kind: str, values: Sequence[bytes], joined: bytes, longest: int) -> list[float]:
    """The non-empty cells of a column of `kind` (`joined` together, the longest `longest`
    bytes) as floats, when each is certainly a valid value of that kind (the module's
    docstring says why); _Doubt or ValueError otherwise."""
    if longest > _MAX_CELL or joined.translate(None, _SIGNED if kind == "funding" else _UNSIGNED):
        raise _Doubt
    floats = list(map(float, values))  # ValueError: `.`, `1.2.3`
    if kind == "funding":
        if not -1.0 < min(floats) <= max(floats) < 1.0:
            raise _Doubt
    elif kind not in ("supply", "borrow") and min(floats) <= 0.0:
        raise _Doubt
    return floats
