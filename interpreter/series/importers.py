"""`stratplan series import`: public market-data dumps turned into a series (LANGUAGE.md
section 8).

Recognised by their columns (a header is optional where the publisher omits it):

- Binance `fundingRate` dumps (data.binance.vision, futures/um/.../fundingRate):
  `calc_time,funding_interval_hours,last_funding_rate`; each row is a settlement, written
  as `funding.VENUE.BASE` at `calc_time`.
- Binance kline dumps (spot and futures, any interval): twelve columns `open_time, open,
  high, low, close, volume, close_time, quote_volume, count, taker_buy_volume,
  taker_buy_quote_volume, ignore`, with the header (futures since 2022) or without (spot,
  older futures). Times in milliseconds, or microseconds (spot since 2025). A kline's
  close is only known when the kline ends, so `price.BASE` = close is written at
  `close_time` + 1 ms (the next kline's open): no row shows a price before its time.
- Tardis `derivative_ticker` CSV: `exchange, symbol, timestamp, local_timestamp,
  funding_timestamp, funding_rate, predicted_funding_rate, open_interest, last_price,
  index_price, mark_price` (times in microseconds). `price.BASE` is the mark price, the last
  one in each `--step` bucket (default 1m), written at the bucket's end; a settlement is
  written at each `funding_timestamp` the feed moves past, with the last `funding_rate`
  seen before it.

The symbol (`BTCUSDT`, `ETH-USDT-SWAP`, `BTC/USDT`) gives BASE: the quote currency is cut
off (`--asset` overrides it); the venue comes from `--venue` (Tardis: its `exchange`,
`binance-futures` -> `binance`). Several inputs merge into one series on the union of
their times; the same cell written twice with different values is an error.

What is written is what `backtest` reads: every cell is checked as the series reader checks
it (`read.cell_value`: ASCII digits, the market's number type for the column: a positive
price, a funding rate between -1 and 1), and every time is a whole number in ASCII digits
between 1970 and 9999. A dump that breaks one of these is refused (one line naming the file
and the row), never written with the value, never converted in silence. Files are read
through `dsl/files.py` (regular files only, at most 2 GiB).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from stratplan.dsl.files import FileRefused, read_regular
from stratplan.interpreter.series.read import MAX_MS, SeriesError, cell_value, iso

QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "USD", "PERP", "SWAP")
KLINE_HEADER = ["open_time", "open", "high", "low", "close", "volume", "close_time",
                "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore"]
FUNDING_HEADER = ["calc_time", "funding_interval_hours", "last_funding_rate"]
TARDIS_COLUMNS = {"exchange", "symbol", "timestamp", "funding_timestamp", "funding_rate",
                  "mark_price"}
_EXCHANGES = {"binance-futures": "binance", "binance-delivery": "binance",
              "okex-swap": "okx", "okex-futures": "okx", "bybit": "bybit",
              "binance": "binance", "okx": "okx", "okex": "okx"}
_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_ASSET = re.compile(r"[a-z]*[A-Z][A-Za-z0-9.]*\Z")
MAX_IMPORT_BYTES = 2 * 1024 * 1024 * 1024


@dataclass
class Table:
    """Cells by time (Unix ms) and column name, merged from every input."""

    rows: dict[int, dict[str, str]] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)

    def put(self, time: int, column: str, value: str, where: str) -> None:
        """One cell; SeriesError when the cell was written before with another value."""
        if column not in self.columns:
            self.columns.append(column)
        row = self.rows.setdefault(time, {})
        old = row.get(column)
        if old is not None and Decimal(old) != Decimal(value):
            raise SeriesError(f"{where}: {column} at {iso(time)} is both {old} and {value}")
        row[column] = value

    def csv(self) -> str:
        """The series text: `time` in ISO 8601, columns in a stable order."""
        order = sorted(self.columns, key=lambda name: (_KIND_ORDER.get(name.split(".")[0], 9),
                                                       name))
        out = io.StringIO()
        out.write(",".join(["time", *order]) + "\n")
        for time in sorted(self.rows):
            row = self.rows[time]
            out.write(",".join([iso(time), *(row.get(name, "") for name in order)]) + "\n")
        return out.getvalue()


_KIND_ORDER = {"price": 0, "rate": 1, "funding": 2, "supply": 3, "borrow": 4}


def to_ms(text: str, where: str) -> int:
    """Unix time in ms from an integer in seconds, milliseconds or microseconds (told apart
    by size: a time after 1973 in milliseconds has 12 or more digits, in microseconds 15)."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 30:
        raise SeriesError(f"{where}: {text!r} is not a time (a whole number in digits 0-9)")
    value = int(digits)
    if value >= 100_000_000_000_000:      # microseconds
        value //= 1000
    elif value < 100_000_000_000:         # seconds
        value *= 1000
    if value > MAX_MS:
        raise SeriesError(f"{where}: {text!r} is not a time before the end of 9999")
    return value


def number(text: str, where: str, kind: str) -> str:
    """A decimal cell of a column of `kind` (price, funding), as the series reader will read
    it (`read.cell_value`), normalised as written (no float on the way)."""
    try:
        value = cell_value(kind, text.strip().encode("utf-8"))
    except ValueError as exc:
        raise SeriesError(f"{where}: {kind}: {exc}") from None
    return f"{value.normalize():f}" if value else "0"


def base_of(symbol: str) -> str:
    """`BTCUSDT` -> `BTC`, `ETH-USDT-SWAP` -> `ETH`, `BTC/USDT` -> `BTC`, `1000PEPEUSDT` ->
    `1000PEPE`."""
    text = symbol.strip().upper()
    for separator in ("/", "-", "_", ":"):
        if separator in text:
            return text.split(separator)[0]
    for quote in QUOTES:
        if text.endswith(quote) and len(text) > len(quote):
            return text[: -len(quote)]
    return text


def symbol_from_name(path: str) -> str | None:
    """The symbol in a Binance dump's file name: `BTCUSDT-1h-2024-01.csv` -> `BTCUSDT`."""
    stem = Path(path).name.split(".")[0]
    head = stem.split("-")[0]
    return head if head and head.isalnum() else None


def detect(rows: list[list[str]]) -> str:
    """`funding`, `kline` or `tardis` from the first row (a header, or data)."""
    if not rows:
        raise SeriesError("empty file")
    first = [cell.strip().lower() for cell in rows[0]]
    if first[:3] == FUNDING_HEADER:
        return "funding"
    if first == KLINE_HEADER or (len(first) == 12 and _all_numbers(first)):
        return "kline"
    if TARDIS_COLUMNS <= set(first):
        return "tardis"
    raise SeriesError("not a Binance fundingRate or kline dump, nor a Tardis "
                      f"derivative_ticker file (first row: {','.join(rows[0][:6])}...)")


def _all_numbers(cells: Iterable[str]) -> bool:
    try:
        for cell in cells:
            Decimal(cell)
    except InvalidOperation:
        return False
    return True


def _check_key(venue: str | None, asset: str, where: str) -> None:
    if venue is not None and not _NAME.match(venue):
        raise SeriesError(f"{where}: venue {venue!r} is not a name (`binance`)")
    if not _ASSET.match(asset):
        raise SeriesError(f"{where}: asset {asset!r} is not an asset symbol (`BTC`)")


def import_file(table: Table, path: str, venue: str | None = None, asset: str | None = None,
                step_ms: int = 60_000) -> str:
    """Read one dump into the table; returns its detected kind. SeriesError on bad input."""
    try:
        text = read_regular(path, MAX_IMPORT_BYTES, "file").decode("utf-8-sig")
    except FileRefused as exc:
        raise SeriesError(str(exc)) from None
    except UnicodeDecodeError:
        raise SeriesError(f"{path}: cannot read (not UTF-8 text)") from None
    rows = [row for row in csv.reader(io.StringIO(text)) if row and any(c.strip() for c in row)]
    try:
        kind = detect(rows)
    except SeriesError as exc:
        raise SeriesError(f"{path}: {exc}") from None
    if kind == "tardis":
        _tardis(table, path, rows, venue, asset, step_ms)
        return kind
    symbol = symbol_from_name(path)
    base = asset or (base_of(symbol) if symbol else None)
    if base is None:
        raise SeriesError(f"{path}: no symbol in the file name; pass --asset")
    if kind == "funding":
        if venue is None:
            venue = "binance"
        _check_key(venue, base, path)
        for number_, row in enumerate(rows[1:], 2):
            where = f"{path}:{number_}"
            if len(row) < 3:
                raise SeriesError(f"{where}: {len(row)} cells, expected 3")
            table.put(to_ms(row[0], where), f"funding.{venue}.{base}",
                      number(row[2], where, "funding"), where)
        return kind
    _check_key(None, base, path)
    start = 1 if rows[0][0].strip().lower() == "open_time" else 0
    for number_, row in enumerate(rows[start:], start + 1):
        where = f"{path}:{number_}"
        if len(row) < 7:
            raise SeriesError(f"{where}: {len(row)} cells, a kline has 12")
        close_time = to_ms(row[6], where)
        table.put(close_time + 1, f"price.{base}", number(row[4], where, "price"), where)
    return kind


def _tardis(table: Table, path: str, rows: list[list[str]], venue: str | None,
            asset: str | None, step_ms: int) -> None:
    header = [cell.strip().lower() for cell in rows[0]]
    at = {name: header.index(name) for name in header}
    last_price: dict[tuple[str, str], tuple[int, str]] = {}
    pending: dict[tuple[str, str], tuple[int, str]] = {}  # (venue, base) -> (funding time, rate)
    for number_, row in enumerate(rows[1:], 2):
        where = f"{path}:{number_}"
        if len(row) != len(header):
            raise SeriesError(f"{where}: {len(row)} cells, the header has {len(header)}")
        name = venue or _EXCHANGES.get(row[at["exchange"]].strip().lower(),
                                       row[at["exchange"]].strip().lower().split("-")[0])
        base = asset or base_of(row[at["symbol"]])
        _check_key(name, base, where)
        key = (name, base)
        now = to_ms(row[at["timestamp"]], where)
        mark = row[at["mark_price"]].strip()
        if mark:
            bucket_end = (now // step_ms + 1) * step_ms
            previous = last_price.get(key)
            if previous is not None and previous[0] != bucket_end:
                table.put(previous[0], f"price.{base}", previous[1], where)
            last_price[key] = (bucket_end, number(mark, where, "price"))
        funding_time = row[at["funding_timestamp"]].strip()
        rate = row[at["funding_rate"]].strip()
        if funding_time and rate:
            settles = to_ms(funding_time, where)
            held = pending.get(key)
            if held is not None and settles > held[0] and now >= held[0]:
                table.put(held[0], f"funding.{name}.{base}", held[1], where)
            pending[key] = (settles, number(rate, where, "funding"))
    for (_, base), (time, value) in last_price.items():
        table.put(time, f"price.{base}", value, path)


def import_files(paths: list[str], venue: str | None = None, asset: str | None = None,
                 step_ms: int = 60_000) -> tuple[str, list[str]]:
    """The series text from every dump, and one line per file saying what it was."""
    table = Table()
    said: list[str] = []
    for path in paths:
        kind = import_file(table, path, venue, asset, step_ms)
        said.append(f"{path}: {kind}")
    if not table.rows:
        raise SeriesError("the inputs hold no rows")
    return table.csv(), said


__all__ = ["SeriesError", "Table", "base_of", "detect", "import_file", "import_files", "to_ms"]
