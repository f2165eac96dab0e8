"""One number type for market and series values (issue 23): every series cell passes the
market's own type for its quantity (executors/market_numbers.py), so a series can no more
create money than a market can; `series import` writes only what the reader takes; the
series reader reads only regular files, bounded; times run from 1970 to 9999."""

from __future__ import annotations

import os
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from stratplan.cli import main
from stratplan.executors.errors import MarketError
from stratplan.executors.market import market_from_data
from stratplan.executors.strict_yaml import load_strict
from stratplan.interpreter.journal.header import builtin_market_text
from stratplan.interpreter.lint.pipeline import lint_source
from stratplan.interpreter.series.importers import import_files
from stratplan.interpreter.series.read import (
    SeriesError,
    cell_value,
    load_series,
    parse_time,
    read_series,
    series_head,
)

T0, T1 = "2024-01-01T00:00:00Z", "2024-01-01T08:00:00Z"


def wide(digits: str) -> str:
    """The same number in fullwidth digits (U+FF10..U+FF19), never to pass as ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) if "0" <= c <= "9" else c for c in digits)


def _series(header: str, *rows: str) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


# What the market's types refuse, a series refuses: column, value, words of the message.
REFUSED = [
    ("funding.binance.BTC", "1e29", "between -1 and 1"),
    ("funding.binance.BTC", "1", "between -1 and 1"),
    ("funding.binance.BTC", "-1", "between -1 and 1"),
    ("supply.aave.weETH", "-3", "must not be negative"),
    ("borrow.aave.WETH", "-0.5", "must not be negative"),
    ("supply.aave.WETH", "-5000", "must not be negative"),
    ("price.BTC", "-1", "must be positive"),
    ("price.BTC", "0", "must be positive"),
    ("rate.weETH", "0", "must be positive"),
    ("oracle.weETH", "-3500", "must be positive"),
    ("price.BTC", "1e31", "out of range"),
    ("funding.binance.BTC", "1e-31", "out of range"),
    ("price.BTC", "1." + "1" * 45, "significant digits"),
    ("price.BTC", wide("67800"), "is not a number"),
    ("price.BTC", "nan", "is not a number"),
    ("price.BTC", "inf", "is not a number"),
]


@pytest.mark.parametrize(("column", "value", "why"), REFUSED)
def test_a_series_value_the_market_would_refuse_is_refused(column, value, why):
    with pytest.raises(SeriesError, match=why) as caught:
        read_series(_series(f"time,{column}", f"{T0},{value}"), "s.csv")
    assert str(caught.value).startswith(f"s.csv:2: {column}: ")


@pytest.mark.parametrize(("column", "value"), [
    ("funding.binance.BTC", "0.0001"), ("funding.binance.BTC", "-0.9999"),
    ("supply.aave.weETH", "0"), ("borrow.aave.WETH", "5000"), ("price.BTC", "1e30"),
    ("funding.okx.ETH", "1e-30"), ("rate.weETH", "1.05"), ("oracle.weETH", "3500.5"),
])
def test_what_the_market_takes_the_series_takes(column, value):
    series = read_series(_series(f"time,{column}", f"{T0},{value}", f"{T1},"), "s.csv")
    assert series.columns[column].value(0) == Decimal(value)


def test_the_series_types_are_the_markets_types():
    """The same value, as a market field and as a series column: both refused, or both
    taken (the market's rates and prices name the types the series reader uses)."""
    base = load_strict(builtin_market_text())
    for market_path, column in ((("rates", "funding", "binance", "BTC"), "funding.binance.BTC"),
                                (("rates", "lending", "aave", "supply", "weETH"),
                                 "supply.aave.weETH"),
                                (("prices", "BTC"), "price.BTC")):
        for value in ("-5000", "-1", "-0.5", "0", "0.5", "1", "1e29"):
            data = dict(base)
            node = data
            for key in market_path[:-1]:
                node[key] = dict(node[key])
                node = node[key]
            node[market_path[-1]] = value
            try:
                market_from_data(data, "m")
                market_ok = True
            except MarketError:
                market_ok = False
            try:
                cell_value(column.split(".")[0], value.encode())
                series_ok = True
            except ValueError:
                series_ok = False
            assert market_ok == series_ok, (column, value)


def test_a_negative_apr_no_longer_creates_money(tmp_path, capsys):
    """A borrow APR of -50 once turned 51,000 USD into 90,070: now the series is refused."""
    plan = tmp_path / "p.plan"
    plan.write_text("plan loop\nholdings { wallet: 10 weETH, 1 ETH }\nphase a {\n"
                    "  supply 10 weETH to aave\n  borrow 1 WETH from aave\n}\n")
    (tmp_path / "s.csv").write_bytes(_series("time,borrow.aave.WETH", f"{T0},-50", f"{T1},"))
    assert main(["backtest", str(plan), "--series", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "borrow.aave.WETH" in err and "negative" in err
    assert main(["lint", str(plan), "--series", str(tmp_path / "s.csv")]) == 2


def test_a_fifo_series_is_refused_by_lint_run_and_backtest_without_waiting(tmp_path, capsys):
    os.mkfifo(tmp_path / "s.csv")
    plan = tmp_path / "p.plan"
    plan.write_text('plan p\nuse series "s.csv"\nholdings { wallet: 1 ETH }\n'
                    "phase a {\n  wrap 0.1 ETH\n}\n")
    codes: list[int] = []

    def commands() -> None:
        codes.append(main(["lint", str(plan)]))
        codes.append(main(["run", str(plan)]))
        codes.append(main(["backtest", str(plan)]))

    worker = threading.Thread(target=commands, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "a FIFO series blocked a command"
    assert codes == [1, 2, 2]
    out = capsys.readouterr()
    assert "SP500" in out.out + out.err and "FIFO" in out.out + out.err


def test_dev_zero_as_a_series_is_refused_at_once():
    with pytest.raises(SeriesError, match="a device, not a regular file"):
        load_series("/dev/zero")


def test_times_run_from_1970_and_a_message_never_misreports_their_order():
    assert parse_time("1970-01-01T00:00:00Z") == 0
    for text in ("1969-12-31T23:59:59Z", "1969-12-30T00:00:00Z"):
        with pytest.raises(ValueError, match="before 1970-01-01"):
            parse_time(text)
    with pytest.raises(SeriesError) as caught:
        read_series(_series("time,price.BTC", "1969-12-30T00:00:00Z,1",
                            "1969-12-31T00:00:00Z,1"), "s.csv")
    assert "1970" in str(caught.value) and "increase" not in str(caught.value)
    series = read_series(_series("time,price.BTC", "1970-01-01T00:00:00Z,1",
                                 "1970-01-01T00:00:00.001Z,2"), "s.csv")
    assert list(series.times) == [0, 1]


def test_the_head_of_a_series_is_its_header_and_first_row():
    assert series_head(b"\xef\xbb\xbf\n\ntime,price.BTC\r\n0,1\r1,2\n") == \
        b"time,price.BTC\n0,1\n"


# --- series import writes what the reader reads -----------------------------------------


def _import(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


KLINE = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
         "taker_buy_volume,taker_buy_quote_volume,ignore\n"
         "1704067200000,42000,42100,41900,{close},1,1704070799999,1,1,1,1,0\n")
FUNDING = "calc_time,funding_interval_hours,last_funding_rate\n1704096000000,8,{rate}\n"


@pytest.mark.parametrize(("name", "text", "why"), [
    ("BTCUSDT-1h-2024-01.csv", KLINE.format(close="-5"), "must be positive"),
    ("BTCUSDT-1h-2024-01.csv", KLINE.format(close=wide("42050")), "is not a number"),
    ("BTCUSDT-1h-2024-01.csv", KLINE.format(close="0"), "must be positive"),
    ("BTCUSDT-fundingRate-2024-01.csv", FUNDING.format(rate="1e999"), "is not a number|range"),
    ("BTCUSDT-fundingRate-2024-01.csv", FUNDING.format(rate="5"), "between -1 and 1"),
    ("BTCUSDT-fundingRate-2024-01.csv", FUNDING.format(rate="NaN"), "is not a number"),
    ("BTCUSDT-fundingRate-2024-01.csv",
     "calc_time,funding_interval_hours,last_funding_rate\n" + wide("1704096000000") + ",8,0.0001\n",
     "is not a time"),
])
def test_import_refuses_what_the_reader_would(tmp_path, name, text, why):
    with pytest.raises(SeriesError, match=why) as caught:
        import_files([_import(tmp_path, name, text)])
    assert ":2:" in str(caught.value)


def test_what_import_writes_the_reader_reads(tmp_path):
    text, said = import_files([
        _import(tmp_path, "BTCUSDT-1h-2024-01.csv", KLINE.format(close="42050.5")),
        _import(tmp_path, "BTCUSDT-fundingRate-2024-01.csv", FUNDING.format(rate="-0.0003"))])
    series = read_series(text.encode(), "out.csv")
    assert series.columns["price.BTC"].value(0) == Decimal("42050.5")
    assert [line.rsplit(": ", 1)[1] for line in said] == ["kline", "funding"]


def test_import_reads_only_regular_files(tmp_path):
    os.mkfifo(tmp_path / "BTCUSDT-1h-2024-01.csv")
    with pytest.raises(SeriesError, match="FIFO"):
        import_files([str(tmp_path / "BTCUSDT-1h-2024-01.csv")])


def test_known_columns_lint_clean_with_their_market_types(tmp_path):
    (tmp_path / "s.csv").write_bytes(_series("time,price.BTC,funding.binance.BTC",
                                             f"{T0},67800,0.0001", f"{T1},67900,"))
    plan = ('plan p\nuse series "s.csv"\nholdings { wallet: 2 ETH }\n'
            "phase a {\n  wrap 1 ETH\n}\n")
    assert lint_source(plan.encode(), "p.plan", tmp_path).errors == 0
