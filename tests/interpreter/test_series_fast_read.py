"""The series reader's fast path (interpreter/series/fast_read.py) against its plain path.

The fast path may only ever answer what the plain path answers: for any text, the public
`read_series` (fast path first, plain path on any doubt) gives the same series, offset for
offset, or the same SeriesError message, as the plain path alone. The generated texts mix
the plain shape with everything the fast path must refuse to vouch for; a small chunk size
puts chunk boundaries between any two lines. Other tests make sure the fast path really
answers for the plain shape (so it cannot silently always fall back) and that
`Column.floats` is `float(value(row))` for every row, cached, read or sliced.
"""

from __future__ import annotations

import math
from array import array
from datetime import UTC, datetime
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from stratplan.interpreter.series import fast_read
from stratplan.interpreter.series.read import (
    Column,
    Series,
    SeriesError,
    _read_plain,
    load_series,
    read_series,
)

COLUMNS = ["price.BTC", "funding.binance.BTC", "supply.aave.weETH", "rate.weETH",
           "oracle.ETH", "borrow.aave.WETH"]
KINDS = {name: name.split(".")[0] for name in COLUMNS}
# Cells at and beyond each type's limits, and shapes the fast path leaves to the plain path.
ODD_CELLS = ["0", "-0", "0.0", "00", "1", "-1", "0.999999", "-0.999999", "1.0", "-1.0",
             "0.9999999999999999999999", "1e30", "1e-30", "1e31", "1e-31", "-1.5e-40", "1E5",
             "+5", "+0.5", "-5", ".5", "5.", "-.5", ".", "-", "1.2.3", "5-", "1" * 30,
             "9" * 31, "1" * 41, "1" * 40, "0." + "0" * 27 + "1", "0." + "0" * 28 + "1",
             "." + "0" * 28 + "1", " 5", "5 ", "\t5", '"5"', "\u0661", "nan", "inf", "1_000",
             "0x10", "5\r", "12,5"]


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain_value(kind: str) -> st.SearchStrategy[str]:
    """A value of the plain shape, valid for its kind."""
    digits = st.integers(1, 10**9).map(str)
    fraction = st.tuples(st.integers(0, 99999), st.integers(0, 10**6)).map(
        lambda pair: f"{pair[0]}.{pair[1]}")
    if kind == "funding":
        small = st.integers(0, 10**8).map(lambda n: f"0.{n:08d}")
        return st.one_of(small, small.map(lambda text: "-" + text), st.just("0"))
    if kind in ("supply", "borrow"):
        return st.one_of(digits, fraction, st.just("0"))
    return st.one_of(digits, fraction.filter(lambda text: float(text) > 0))


@st.composite
def series_texts(draw: Any, odd: bool = True) -> bytes:
    """Series text: mostly the plain shape, with (when `odd`) every kind of anomaly."""
    names = draw(st.lists(st.sampled_from(COLUMNS), max_size=4, unique=True))
    header = ["time", *names]
    if odd and draw(st.integers(0, 19)) == 0:
        header = draw(st.sampled_from([[" time", *names], ["time", *names, *names[:1]],
                                       ["time", *names, "colour.BTC"], ["when", *names],
                                       ["time", *names, ""]]))
    start = draw(st.one_of(st.integers(-86_400_000, 2 * 10**12),
                           st.sampled_from([0, 1704067200000, 1704067199000])))
    step = draw(st.sampled_from([1000, 60_000, 3_600_000, 8 * 3_600_000, 86_400_000, 7000,
                                 250, 1]))
    count = draw(st.integers(0 if odd else 1, 30))
    iso_times = draw(st.booleans())
    density = {name: draw(st.sampled_from([0, 0.05, 0.5, 1])) for name in names}
    lines = []
    moment = start
    for _ in range(count):
        if odd and draw(st.integers(0, 9)) == 0:
            moment += draw(st.sampled_from([0, -step, 17, step * 3, 86_400_000]))
        else:
            moment += step if lines else 0
        if iso_times and (not odd or draw(st.integers(0, 29))):
            time = _iso(moment) if moment >= 0 else "1969-12-31T00:00:00Z"
        else:
            time = str(moment) if moment >= 0 else str(-moment)
        if odd and draw(st.integers(0, 29)) == 0:
            time = draw(st.sampled_from(["2024-01-01 00:00:00Z", "2024-01-01T00:00:00+00:00",
                                         "2024-01-01T00:00:00.5Z", "2024-01-01T00:00:00z",
                                         "2024-02-30T00:00:00Z", "2024-01-01T24:00:00Z",
                                         "2024-01-01T23:59:60Z", "", " 0", "1" * 16,
                                         "253402300800000", "0001-01-01T00:00:00Z"]))
        cells = [time]
        for name in names:
            if draw(st.floats(0, 1)) >= density[name]:
                cells.append("")
            elif odd and draw(st.integers(0, 14)) == 0:
                cells.append(draw(st.sampled_from(ODD_CELLS)))
            else:
                cells.append(draw(_plain_value(KINDS[name])))
        if odd and draw(st.integers(0, 39)) == 0:
            cells = draw(st.sampled_from([cells[:-1], [*cells, "1"], [*cells, ""]]))
        lines.append(",".join(cells))
        if odd and draw(st.integers(0, 39)) == 0:
            lines.append(draw(st.sampled_from(["", " ", "\t", ",,"])))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join([",".join(header), *lines])
    if draw(st.booleans()):
        text += eol
    if odd:
        if draw(st.integers(0, 19)) == 0:
            text = "\ufeff" + text
        if draw(st.integers(0, 19)) == 0 and "\n" in text:
            at = draw(st.integers(0, text.count("\n") - 1))
            parts = text.split("\n")
            text = "\n".join(parts[:at + 1]) + draw(st.sampled_from(["\r", "\n", "\r\r"])) \
                + "\n".join(parts[at + 1:])
        if draw(st.integers(0, 29)) == 0:
            text += draw(st.sampled_from(["\n\n", "\r\n", " ", "\u00e9"]))
    return text.encode("utf-8")


def _outcome(read: Any, data: bytes) -> tuple[str, Any]:
    try:
        series = read(data, "s.csv")
    except SeriesError as error:
        return "error", str(error)
    return "series", _shape(series)


def _shape(series: Series) -> Any:
    return (series.source, series.times.tolist(),
            [(name, col.name, col.kind, col.key, bytes(col.data), col.starts.tolist(),
              col.ends.tolist()) for name, col in series.columns.items()])


def _same_floats(got: array, want: list[float]) -> bool:
    return len(got) == len(want) and all(
        a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(got, want, strict=True))


def _want_floats(col: Column) -> list[float]:
    values = [col.value(row) for row in range(len(col.starts))]
    return [float(v) if v is not None else math.nan for v in values]


@given(series_texts(), st.sampled_from([1, 7, 40, 300, 1 << 20]))
def test_read_series_is_the_plain_path_for_any_text(data, chunk):
    with patch.object(fast_read, "CHUNK_BYTES", chunk):
        assert _outcome(read_series, data) == _outcome(_read_plain, data)


@given(series_texts(odd=False), st.sampled_from([1, 7, 40, 300, 1 << 20]))
def test_the_fast_path_answers_for_the_plain_shape(data, chunk):
    """Held to the plain path directly, with no fallback to hide behind."""
    with patch.object(fast_read, "CHUNK_BYTES", chunk):
        series = fast_read.read_fast(data, "s.csv")
    if series is None:  # only a series the plain path refuses (ISO times a second apart
        assert _outcome(_read_plain, data)[0] == "error"  # from a sub-second step, ...)
        return
    assert _shape(series) == _shape(_read_plain(data, "s.csv"))
    for col in series.columns.values():
        assert _same_floats(col.floats(), _want_floats(col))


def _year_of_minutes_text(rows: int, eol: str = "\r\n") -> bytes:
    start = 1704067200000
    lines = ["time,price.BTC,funding.binance.BTC,supply.aave.weETH"]
    for row in range(rows):
        moment = start + row * 60_000
        funding = f"0.000{row % 97:02d}" if row % 480 == 0 else ""
        supply = f"0.0{row % 13}" if row % 60 == 0 else ""
        lines.append(f"{_iso(moment)},{67800 + row % 1000}.{row % 7},{funding},{supply}")
    return (eol.join(lines) + eol).encode("ascii")


def test_the_fast_path_is_taken_for_a_plain_file(tmp_path):
    """With the plain path unavailable, the usual file still reads: the fast path answered."""
    data = _year_of_minutes_text(5000)
    path = tmp_path / "s.csv"
    path.write_bytes(data)
    with patch("stratplan.interpreter.series.read._read_plain",
               side_effect=AssertionError("the plain path was used")):
        series = load_series(path)
    assert _shape(series) == _shape(_read_plain(data, str(path)))
    with patch.object(fast_read, "CHUNK_BYTES", 1000):  # many chunks
        assert fast_read.read_fast(data, "s.csv") is not None
    with patch.object(fast_read, "CHUNK_BYTES", 1000):  # and millisecond times
        text = b"time,price.BTC\n" + b"".join(b"%d,%d.5\n" % (1000 + i * 7, i + 1)
                                              for i in range(3000))
        assert _shape(fast_read.read_fast(text, "s.csv")) == _shape(_read_plain(text, "s.csv"))


@pytest.mark.parametrize("text", [
    b"time,price.BTC\n2024-01-01T00:00:00Z,1\n\n2024-01-01T00:01:00Z,2\n",  # a blank line
    b"time,price.BTC\n2024-01-01T00:00:00Z, 1\n",                           # a space
    b"time,price.BTC\n2024-01-01T00:00:00Z,+1\n",                           # a sign
    b"time,price.BTC\n2024-01-01T00:00:00Z,1e3\n",                          # an exponent
    b"time,price.BTC\r\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,2\r\n",  # mixed ends
    b"time,price.BTC\n2024-01-01T00:00:00Z,1\r2024-01-01T00:01:00Z,2\n",    # a lone \r
    b"time,price.BTC\n2024-01-01T00:01:00Z,1\n2024-01-01T00:00:00Z,2\n",    # back in time
    b"time,price.BTC\n1704067200000,1\n2024-01-01T00:01:00Z,2\n",           # mixed times
    b"time,price.BTC\n2024-01-01T00:00:00Z,0\n",                            # not positive
    b"time,funding.binance.BTC\n2024-01-01T00:00:00Z,1\n",                  # not below 1
    b"time,price.BTC\n2024-01-01T24:00:00Z,1\n",                            # hour 24
    b"time,price.BTC\n2024-01-01T23:59:60Z,1\n",                            # a leap second
    b"time,price.BTC\n1000000000000000,1\n",                                # 16 digits
    b"time,price.BTC\r\n2024-01-01T00:00:00Z,1\r2\n2024-01-01T00:01:00Z,3",  # \r in a line
    b"time,colour.BTC\n0,1\n",                                               # no such column
    b"when,price.BTC\n0,1\n",                                                # no time
    b"time,price.BTC\n" + b"".join(b"2024-01-01T00:00:0%dZ,1\n" % (i // 4) for i in range(5)),
    b"time,price.BTC,price.BTC\n0,1,1\n",                                    # twice
    b"time,price.BTC",                                                      # no line end
    b"time,price.BTC\n",                                                    # no rows
])
def test_anything_odd_is_left_to_the_plain_path(text):
    assert fast_read.read_fast(text, "s.csv") is None
    assert _outcome(read_series, text) == _outcome(_read_plain, text)


@pytest.mark.parametrize("name", COLUMNS)
@pytest.mark.parametrize("fill", ["0.5", ""])
def test_every_odd_cell_in_every_kind_of_column(name, fill):
    """Each cell at or beyond a type's limits, among valid cells (dense) or empty ones (a
    sparse column): the same series or message as the plain path."""
    for cell in ODD_CELLS:
        rows = [f"{_iso(1704067200000 + row * 60_000)},{cell if row == 3 else fill}"
                for row in range(10)]
        text = "\n".join([f"time,{name}", *rows, ""]).encode("utf-8")
        assert _outcome(read_series, text) == _outcome(_read_plain, text), cell


def test_times_off_a_step_between_first_and_last_are_read_one_by_one():
    text = (b"time,price.BTC\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:30Z,2\n"
            b"2024-01-01T00:02:00Z,3\n")
    series = fast_read.read_fast(text, "s.csv")
    assert series is not None and _shape(series) == _shape(_read_plain(text, "s.csv"))


@given(series_texts(odd=False), st.data())
def test_floats_are_the_values_as_floats_cached_read_or_sliced(data, choice):
    try:
        series = read_series(data, "s.csv")
    except SeriesError:
        assume(False)  # times before 1970, or a repeated second
    for col in series.columns.values():
        want = _want_floats(col)
        assert _same_floats(col.floats(), want)      # as the reader left it
        col._floats = None
        assert _same_floats(col.floats(), want)      # computed
        assert col.floats() is col.floats()          # and cached
    times = series.times.tolist()
    lo = choice.draw(st.sampled_from([None, *times, times[0] - 1, times[-1] + 1]))
    hi = choice.draw(st.sampled_from([None, *times, times[0] - 1, times[-1] + 1]))
    part = series.slice(lo, hi)
    for col in part.columns.values():
        assert _same_floats(col.floats(), _want_floats(col))


@given(series_texts(odd=False), st.data())
def test_values_of_a_range_are_each_rows_value(data, choice):
    """`Column.values(start, stop)` (the accruing rows' read) is `value(row)` row by row:
    the same numbers, written alike, one Decimal for rows that share a cell, None where the
    column has no value yet; both the bulk decode and the cell-by-cell read are taken."""
    try:
        series = read_series(data, "s.csv")
    except SeriesError:
        assume(False)
    rows = len(series.times)
    start = choice.draw(st.integers(0, rows))
    stop = choice.draw(st.integers(start, rows))
    for col in series.columns.values():
        got = col.values(start, stop)
        fresh = Column(col.name, col.kind, col.key, col.data, col.starts, col.ends)
        want = [fresh.value(row) for row in range(start, stop)]
        assert [str(value) for value in got] == [str(value) for value in want]
        for before, after, one, two in zip(got, got[1:], want, want[1:], strict=False):
            assert (before is after) == (one is two)


def test_a_floats_cache_is_no_part_of_a_column():
    series = read_series(b"time,price.BTC\n0,1\n1,2.5\n", "s.csv")
    col = series.column("price", "BTC")
    assert col.floats().tolist() == [1.0, 2.5]
    assert col == Column(col.name, col.kind, col.key, col.data, col.starts, col.ends)
    assert "floats" not in repr(col)
