"""The series reader (LANGUAGE.md section 8): format, carry-forward, strict checks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from stratplan.interpreter.series.read import SeriesError, iso, load_series, parse_time, read_series

CSV = b"""time,price.ETH,funding.binance.BTC,supply.aave.weETH
2024-01-01T00:00:00Z,3400,,0.0005
2024-01-01T08:00:00Z,,0.0001,
1704124800000,3500.5,-0.0002,0.001
"""


def test_reads_iso_and_millisecond_times_and_carries_held_values():
    series = read_series(CSV, "s.csv")
    assert list(series.times) == [1704067200000, 1704067200000 + 8 * 3_600_000, 1704124800000]
    price = series.column("price", "ETH")
    assert [price.value(i) for i in range(3)] == [Decimal(3400), Decimal(3400),
                                                  Decimal("3500.5")]
    funding = series.column("funding", "binance", "BTC")
    # Funding is not held: an empty cell is no settlement.
    assert [funding.value(i) for i in range(3)] == [None, Decimal("0.0001"), Decimal("-0.0002")]
    supply = series.column("supply", "aave", "weETH")
    assert [supply.value(i) for i in range(3)] == [Decimal("0.0005"), Decimal("0.0005"),
                                                   Decimal("0.001")]
    assert series.step_ms == 8 * 3_600_000


def test_no_python_object_per_cell():
    series = read_series(CSV, "s.csv")
    column = series.column("price", "ETH")
    assert isinstance(column.data, bytearray)
    assert column.starts.typecode == "q" and series.times.typecode == "q"


@pytest.mark.parametrize(("text", "where"), [
    (b"time,price.ETH\n2024-01-02T00:00:00Z,1\n2024-01-01T00:00:00Z,2\n", "s.csv:3"),
    (b"time,price.ETH\n2024-01-01T00:00:00Z,1\n2024-01-01T00:00:00Z,2\n", "s.csv:3"),
    (b"time,price.ETH\nyesterday,1\n", "s.csv:2"),
    (b"time,price.ETH\n2024-01-01T00:00:00Z,abc\n", "s.csv:2"),
    (b"time,price.ETH\n2024-01-01T00:00:00Z,-5\n", "s.csv:2"),
    (b"time,price.ETH\n2024-01-01T00:00:00Z,1,2\n", "s.csv:2"),
    (b"time,colour.ETH\n2024-01-01T00:00:00Z,1\n", "s.csv:1"),
    (b"when,price.ETH\n2024-01-01T00:00:00Z,1\n", "s.csv:1"),
    (b"time,price.ETH,price.ETH\n", "s.csv:1"),
    (b"", "s.csv"),
    (b"time,price.ETH\n", "s.csv"),
    (b"time,price.ETH\n2024-01-01T00:00:00Z,NaN\n", "s.csv:2"),
    (b"time,price.ETH\n2024-01-01T00:00:00Z,1e999\n", "s.csv:2"),
])
def test_invalid_series_say_where(text, where):
    with pytest.raises(SeriesError) as error:
        read_series(text, "s.csv")
    message = str(error.value)
    assert message.startswith(where + ":") or message.startswith(where + " ")
    assert "\n" not in message


def test_missing_file_is_a_series_error(tmp_path):
    with pytest.raises(SeriesError, match="no such series file"):
        load_series(tmp_path / "none.csv")
    with pytest.raises(SeriesError, match="folder"):
        load_series(tmp_path)


def test_times_round_trip():
    assert parse_time("2024-03-05T08:00:00Z") == 1709625600000
    assert iso(1709625600000) == "2024-03-05T08:00:00Z"
    assert parse_time("2024-03-05T09:00:00+01:00") == 1709625600000
    with pytest.raises(ValueError):
        parse_time("99999999999999999999")
