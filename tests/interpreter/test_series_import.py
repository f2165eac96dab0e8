"""`stratplan series import` on small fixtures written to the published column layouts, and
`stratplan series synth` (deterministic, a valid series with the documented columns)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest

from stratplan.cli import main
from stratplan.interpreter.series.importers import base_of, detect, import_files, to_ms
from stratplan.interpreter.series.read import SeriesError, load_series, parse_time, read_series
from stratplan.interpreter.series.synth import COLUMNS, synth

DUMPS = Path(__file__).resolve().parent.parent / "data" / "dumps"
FUNDING = str(DUMPS / "BTCUSDT-fundingRate-2024-01.csv")
KLINE_HEADER = str(DUMPS / "ETHUSDT-1h-2024-01.csv")
KLINE_BARE = str(DUMPS / "ETHUSDT-1h-2023-12.csv")
KLINE_MICRO = str(DUMPS / "ETHUSDT-1h-2025-01.csv")
TARDIS = str(DUMPS / "binance-futures_derivative_ticker_2024-01-01_BTCUSDT.csv")


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_binance_funding_rate_dump_is_one_settlement_per_row():
    text, said = import_files([FUNDING])
    assert said == [f"{FUNDING}: funding"]
    assert text.splitlines() == [
        "time,funding.binance.BTC",
        "2024-01-01T00:00:00Z,0.00037409",
        "2024-01-01T08:00:00Z,0.0002984",
        "2024-01-01T16:00:00Z,-0.0000125"]
    series = read_series(text.encode(), "x")
    assert series.column("funding", "binance", "BTC").value(2) == Decimal("-0.0000125")


def test_binance_klines_with_and_without_header_in_ms_and_us():
    # A kline's close is known at its close: the row is at close_time + 1 ms.
    text, said = import_files([KLINE_BARE, KLINE_HEADER, KLINE_MICRO])
    assert [line.rsplit(": ", 1)[1] for line in said] == ["kline"] * 3
    assert text.splitlines() == [
        "time,price.ETH",
        "2023-12-31T01:00:00Z,2285.5",
        "2024-01-01T01:00:00Z,2295.51",
        "2024-01-01T02:00:00Z,2290.12",
        "2025-01-01T01:00:00Z,3351.07",
        "2025-01-01T02:00:00Z,3360.25"]


def test_tardis_derivative_ticker_prices_per_step_and_funding_at_its_timestamp():
    text, said = import_files([TARDIS])
    assert said == [f"{TARDIS}: tardis"]
    assert _rows(text) == [
        # the last mark of each minute, at the minute's end; the settlement at 00:00 with
        # the last rate announced for it
        {"time": "2024-01-01T00:00:00Z", "price.BTC": "42276.1",
         "funding.binance.BTC": "0.0003741"},
        {"time": "2024-01-01T00:01:00Z", "price.BTC": "42290", "funding.binance.BTC": ""},
        {"time": "2024-01-01T00:02:00Z", "price.BTC": "42299.5", "funding.binance.BTC": ""}]
    text, _ = import_files([TARDIS], step_ms=3_600_000, venue="okx")
    assert _rows(text) == [
        {"time": "2024-01-01T00:00:00Z", "price.BTC": "42276.1",
         "funding.okx.BTC": "0.0003741"},
        {"time": "2024-01-01T01:00:00Z", "price.BTC": "42299.5", "funding.okx.BTC": ""}]


def test_inputs_merge_on_the_union_of_their_times():
    text, _ = import_files([FUNDING, KLINE_HEADER])
    rows = _rows(text)
    assert list(rows[0]) == ["time", "price.ETH", "funding.binance.BTC"]
    assert [r["time"][11:16] for r in rows] == ["00:00", "01:00", "02:00", "08:00", "16:00"]
    series = read_series(text.encode(), "x")  # a valid series: held prices, settlements
    assert series.column("price", "ETH").value(3) == Decimal("2290.12")
    assert series.column("funding", "binance", "BTC").value(1) is None


def test_import_errors_are_one_line(tmp_path):
    bad = tmp_path / "BTCUSDT-x.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(SeriesError, match="not a Binance fundingRate or kline dump"):
        import_files([str(bad)])
    bad.write_text("calc_time,funding_interval_hours,last_funding_rate\n1704067200000,8,abc\n")
    with pytest.raises(SeriesError, match=r"BTCUSDT-x.csv:2: funding: 'abc' is not a number"):
        import_files([str(bad)])
    with pytest.raises(SeriesError, match="no such file"):
        import_files([str(tmp_path / "none.csv")])
    clash = tmp_path / "BTCUSDT-y.csv"
    clash.write_text("calc_time,funding_interval_hours,last_funding_rate\n1704067200000,8,0.1\n")
    with pytest.raises(SeriesError, match="is both"):
        import_files([FUNDING, str(clash)])


def test_helpers():
    assert [base_of(s) for s in ("BTCUSDT", "ETH-USDT-SWAP", "BTC/USDT", "ETHUSDC",
                                 "1000PEPEUSDT")] == ["BTC", "ETH", "BTC", "ETH", "1000PEPE"]
    assert to_ms("1704067200", "x") == to_ms("1704067200000", "x") \
        == to_ms("1704067200000000", "x") == parse_time("2024-01-01T00:00:00Z")
    assert detect([["calc_time", "funding_interval_hours", "last_funding_rate"]]) == "funding"


def test_cli_import_writes_a_series(tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["series", "import", FUNDING, KLINE_HEADER, "-o", str(out)]) == 0
    assert len(load_series(out)) == 5
    assert main(["series", "import", str(tmp_path / "none.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_synth_is_deterministic_and_a_valid_series():
    step = 8 * 3_600_000
    text = synth(30, step, 5)
    assert text == synth(30, step, 5) and text != synth(30, step, 6)
    series = read_series(text.encode(), "synth")
    assert len(series) == 30 * 3 + 1 and series.step_ms == step
    assert list(series.columns) == list(COLUMNS)
    first = {name: col.value(0) for name, col in series.columns.items()}
    # it starts at the built-in market's prices
    assert first["price.ETH"] == 3400 and first["price.BTC"] == 67800
    assert first["rate.weETH"] == Decimal("1.05") and first["price.weETH"] == 3570
    # funding settles every 8 hours; none at the first time
    assert first["funding.binance.BTC"] is None
    assert all(series.column("funding", "binance", "ETH").value(i) is not None
               for i in range(1, len(series)))
    rates = [series.column("rate", "weETH").value(i) for i in range(len(series))]
    assert rates == sorted(rates) and rates[-1] > rates[0]  # never falls, grows
    for i in range(len(series)):
        borrow = series.column("borrow", "aave", "WETH").value(i)
        supply = series.column("supply", "aave", "WETH").value(i)
        assert 0 < supply < borrow < 1


def test_synth_minutes_write_rates_hourly_and_funding_on_the_hour():
    text = synth(1, 60_000, 1)
    series = read_series(text.encode(), "synth")
    assert len(series) == 1441
    funding = series.column("funding", "binance", "BTC")
    settled = [i for i in range(len(series)) if funding.value(i) is not None]
    assert settled == [480, 960, 1440]  # 08:00, 16:00, 24:00
    rows = text.splitlines()
    at = rows[0].split(",").index("borrow.aave.WETH")
    assert rows[2].split(",")[at] == "" and rows[61].split(",")[at] != ""  # 00:01 held, 01:00 set


def test_cli_synth(tmp_path):
    out = tmp_path / "y.csv"
    assert main(["series", "synth", "--days", "3", "--step", "1d", "--seed", "2",
                 "-o", str(out)]) == 0
    series = load_series(out)
    assert len(series) == 4
    # with a step longer than 8 hours a row carries the sum of the settlements it passed
    assert series.column("funding", "binance", "BTC").value(1) is not None
    assert main(["series", "synth", "--days", "3", "--step", "0h"]) == 2
