"""Quiet rows (interpreter/time/quiet.py): a backtest that crosses the rows where only
prices move gives the step-by-step reference path's results (`reference=True`) to the last
digit — every step's value, health, exposure and PnL parts, every event, fill
and firing, the summary metrics — and its PnL parts still add up exactly."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratplan.dsl.parser import parse
from stratplan.executors.market import default_market
from stratplan.interpreter.series.read import read_series
from stratplan.interpreter.time import quiet
from stratplan.interpreter.time.backtest import run_backtest
from stratplan.interpreter.time.metrics import report
from stratplan.interpreter.time.results import EXACT, PARTS

MARKET = default_market()
HOUR = 3_600_000
SETTINGS = settings(deadline=None, max_examples=60,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CENT = Decimal("0.01")


def _plan(text: str):
    result = parse(text, "q.plan")
    assert result.plan is not None, (text, result.diagnostics)
    return result.plan


def _equal(one, two, path: str = "") -> None:
    """Equal reports: the same keys, lists and texts, and numbers of equal value (a number
    may be written with other trailing zeros: 150000.50 and 150000.500), to the last
    digit; the path of the first difference is in the message."""
    if isinstance(one, dict):
        assert one.keys() == two.keys(), path
        for key in one:
            _equal(one[key], two[key], f"{path}.{key}")
    elif isinstance(one, list):
        assert len(one) == len(two), path
        for index, (a, b) in enumerate(zip(one, two, strict=True)):
            _equal(a, b, f"{path}[{index}]")
    elif isinstance(one, str) and isinstance(two, str) and one != two:
        try:
            a, b = Decimal(one), Decimal(two)
        except ArithmeticError:
            raise AssertionError(f"{path}: {one!r} != {two!r}") from None
        assert a == b, f"{path}: {one} != {two}"
    else:
        assert one == two, (path, one, two)


def _crossed(monkeypatch) -> list[int]:
    """Records how many rows each `QuietRows.cross` keeps."""
    counts: list[int] = []
    cross = quiet.QuietRows.cross

    def counting(self, row, stop, snapshots):
        counts.append(stop - row)
        cross(self, row, stop, snapshots)

    monkeypatch.setattr(quiet.QuietRows, "cross", counting)
    return counts


def _agree(plan, data, market=MARKET):
    """Both paths' full reports (every step) agree; the fast one's parts add up exactly."""
    fast = run_backtest(plan, market, data)
    plain = run_backtest(plan, market, data, reference=True)
    _equal(report(fast, steps=True), report(plain, steps=True))
    assert [(e.time, e.kind, e.name) for e in fast.events] == \
        [(e.time, e.kind, e.name) for e in plain.events]
    total = Decimal(0)
    for name in PARTS:
        total = EXACT.add(total, fast.pnl[name])
    assert total == EXACT.subtract(fast.value_end, fast.value_start)
    return fast


def _series(rows: list[str], header: str):
    return read_series(("\n".join([header, *rows]) + "\n").encode(), "q.csv")


# --- generated plans and series ------------------------------------------------------------------

TRIGGERS = [
    "trigger close when price(BTC) > {high} cooldown 3h {{\n  perp buy 0.5 BTC/USDT on binance\n}}\n",
    "trigger dip when price(BTC) < {low} or price(ETH) >= {eth} {{\n"
    "  spot buy 0.01 BTC/USDT on binance\n}}\n",
    "trigger calm when not (price(BTC) <= {low}) and health(aave) > 1.5 {{\n"
    "  perp sell 0.1 BTC/USDT on binance leverage 10x\n}}\n",
    "trigger check every 5h {{\n  assert exposure(BTC) < 100 else \"drift\"\n}}\n",
    "trigger paid when funding(binance, BTC) < 0 {{\n  perp buy 0.1 BTC/USDT on binance\n}}\n",
    "trigger exact when price(BTC) == {exact} {{\n  spot sell 0.01 BTC/USDT on binance\n}}\n",
    "trigger guarded when price(BTC) > {high} and position(binance, BTC) < 0 {{\n"
    "  perp buy 0.5 BTC/USDT on binance\n}}\n",
    "trigger poorer when value() < 199_000 or exposure(BTC) > 1.5 {{\n"
    "  spot buy 0.01 BTC/USDT on binance\n}}\n",
]


@st.composite
def books_and_series(draw):
    """A plan (spot and perps at any leverage, some hedged, some not, triggers on prices,
    funding and times) and a series (price walks with held empty cells, funding cells, a
    column whose first value comes late), with trigger levels inside the walk's range."""
    rows = draw(st.integers(3, 60))
    step = draw(st.sampled_from([60_000, HOUR]))
    btc_moves = draw(st.lists(st.integers(-300, 300), min_size=rows, max_size=rows))
    eth_moves = draw(st.lists(st.integers(-300, 300), min_size=rows, max_size=rows))
    gaps = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
    funding_every = draw(st.sampled_from([0, 3, 8]))
    funding_rate = draw(st.sampled_from(["0.0001", "-0.0003", "0.002"]))
    eth_from = draw(st.integers(0, rows))
    btc, eth = Decimal(67800), Decimal(3400)
    lines, btc_seen = [], []
    for index in range(rows):
        btc = max(Decimal(100), btc * (1 + Decimal(btc_moves[index]) / 2000)).quantize(CENT)
        eth = max(Decimal(10), eth * (1 + Decimal(eth_moves[index]) / 2000)).quantize(CENT)
        btc_cell = "" if gaps[index] and index else str(btc)
        if btc_cell:
            btc_seen.append(btc)
        eth_cell = str(eth) if index >= eth_from else ""
        cells = [str(index * step), btc_cell, eth_cell]
        if funding_every:
            cells.append(funding_rate if index and index % funding_every == 0 else "")
        lines.append(",".join(cells))
    header = "time,price.BTC,price.ETH" + (",funding.binance.BTC" if funding_every else "")
    data = _series(lines, header)
    low, high = min(btc_seen), max(btc_seen)
    level = draw(st.sampled_from(btc_seen))
    spot = draw(st.sampled_from(["0", "0.5", "1"]))
    size = draw(st.sampled_from(["0.5", "1", "2"]))
    side = draw(st.sampled_from(["sell", "buy"]))
    leverage = draw(st.sampled_from(["1", "3", "10", "20"]))
    # An ETH perp: its price column may start late (the market's 3,400 until then).
    base = draw(st.sampled_from(["BTC", "ETH"]))
    chosen = draw(st.lists(st.sampled_from(TRIGGERS), max_size=3, unique=True))
    text = ("plan q\nholdings { binance: 200_000 USDT }\n"
            + (f"phase spot {{\n  spot buy {spot} BTC/USDT on binance\n}}\n" if spot != "0"
               else "phase spot {\n  assert 1 > 0 else \"x\"\n}\n")
            + f"phase hedge after spot {{\n  perp {side} {size} {base}/USDT on binance "
              f"leverage {leverage}x\n}}\n"
            + "".join(t.format(high=level, low=level, eth=eth, exact=level) for t in chosen))
    del low, high
    return _plan(text), data


@SETTINGS
@given(books_and_series())
def test_property_quiet_rows_agree_with_the_reference(case):
    """Generated books and series: crossing quiet rows changes no result (30 digits)."""
    plan, data = case
    _agree(plan, data)


# --- what is crossed, and what is not ---------------------------------------------------------------

HEDGED = """plan hedged
holdings { binance: 300_000 USDT }
phase spot { spot buy 1 BTC/USDT on binance }
phase hedge after spot { perp sell 1 BTC/USDT on binance leverage 1x }
trigger close when price(BTC) > CEILING cooldown 1d { perp buy 1 BTC/USDT on binance }
trigger weekly every 1w { assert exposure(BTC) <= 0.01 else "drift" }
"""


def _minutes(prices: list[str], funding_every: int = 480) -> object:
    rows = [f"{index * 60_000},{price},{'0.0001' if index and index % funding_every == 0 else ''}"
            for index, price in enumerate(prices)]
    return _series(rows, "time,price.BTC,funding.binance.BTC")


def test_a_hedged_book_crosses_all_but_its_settlements(monkeypatch):
    """Two days of minutes, a hedged book: every row is quiet but the first step, the
    funding settlements (every 480th row) and the row after each stretch's end."""
    counts = _crossed(monkeypatch)
    prices = [str(67_800 + (index % 97) - 48) for index in range(2 * 1440)]
    result = _agree(_plan(HEDGED.replace("CEILING", "150_000")), _minutes(prices))
    stepped = len(prices) - 1 - sum(counts)
    # Settlements at rows 480, 960, ..., 2400 (5) and row 1: six stepped rows.
    assert stepped == 6, (stepped, counts)
    assert result.pnl["funding"] == sum(Decimal("0.0001") * Decimal(prices[row])
                                        for row in range(480, len(prices), 480))


def test_a_price_within_the_float_margin_of_a_level_is_stepped_and_decided_exactly(monkeypatch):
    """A price one hundred-trillionth above the level: floats cannot tell, so the row is
    stepped and the Decimal comparison fires the trigger there (and not one row before)."""
    counts = _crossed(monkeypatch)
    prices = ["100000"] * 300 + ["100000.000000001"] + ["100000"] * 300
    result = _agree(_plan(HEDGED.replace("CEILING", "100_000")), _minutes(prices, 10_000))
    assert not result.failed
    assert [e.time // 60_000 for e in result.events if e.kind == "firing"] == [300]
    assert sum(counts) < len(prices) - 1  # most rows crossed, not all


def test_a_perp_crossing_its_guard_mid_stretch_is_liquidated_at_the_same_row(monkeypatch):
    """An unhedged 20x short; the price climbs slowly through its liquidation mark inside
    what would otherwise be one quiet stretch."""
    counts = _crossed(monkeypatch)
    text = """plan short
holdings { binance: 10_000 USDT }
phase open { perp sell 1 BTC/USDT on binance leverage 20x }
"""
    prices = [str(Decimal(67_800) + index) for index in range(0, 6000, 2)]
    result = _agree(_plan(text), _minutes(prices, 100_000))
    liquidated = [e.time // 60_000 for e in result.events if e.kind == "liquidation"]
    assert len(liquidated) == 1 and 1 < liquidated[0] < len(prices)
    assert counts and sum(counts) > len(prices) // 2


def test_an_unhedged_book_moves_with_its_price_on_quiet_rows(monkeypatch):
    """Spot long, no hedge: each crossed row's value is worked out, the cash plus the BTC
    held at the row's price (a held empty cell keeps the price before it)."""
    counts = _crossed(monkeypatch)
    text = """plan long
holdings { binance: 100_000 USDT }
phase buy { spot buy 1 BTC/USDT on binance }
"""
    prices = ["67800", "67900.5", "", "68000.25", "67000", "67001"]
    result = _agree(_plan(text), _minutes(prices))
    units = result.engine.monitor.books["balance"][("binance", "BTC")]
    cash = result.snapshots[0].value - units * Decimal(67800)
    held = ["67800", "67900.5", "67900.5", "68000.25", "67000", "67001"]
    assert [s.value for s in result.snapshots] == [cash + units * Decimal(p) for p in held]
    assert sum(counts) == 4  # rows 2-5: row 1 is the first step


def test_perps_without_a_funding_column_settle_at_the_market_rate_each_interval(monkeypatch):
    """No funding column: the market's 1bps settles at every 8h boundary, and those rows
    are stepped (the crossing stops at them)."""
    counts = _crossed(monkeypatch)
    text = """plan short
holdings { binance: 100_000 USDT }
phase open { perp sell 1 BTC/USDT on binance leverage 2x }
"""
    rows = [f"{index * 60_000},{67_800 + index % 7}" for index in range(1500)]
    result = _agree(_plan(text), _series(rows, "time,price.BTC"))
    # Boundaries at 480, 960 and 1440 minutes: the short receives 1bps of the mark each.
    marks = [Decimal(67_800 + row % 7) for row in (480, 960, 1440)]
    assert result.pnl["funding"] == sum(Decimal("0.0001") * mark for mark in marks)
    assert len(counts) >= 4


def test_conditions_it_cannot_follow_leave_every_row_stepped(monkeypatch):
    """A condition on `price(BTC) * 2` goes through the evaluator: no row is crossed."""
    counts = _crossed(monkeypatch)
    text = HEDGED.replace("price(BTC) > CEILING", "price(BTC) * 2 > 300_000")
    _agree(_plan(text), _minutes([str(67_800 + i % 5) for i in range(500)]))
    assert counts == []


def test_conditions_on_the_books_are_followed(monkeypatch):
    """`position(...)` guarding a price level: what the books hold is fixed across quiet
    rows (and read through the evaluator at every stepped row), so rows are crossed before
    and after the firing that closes the short."""
    counts = _crossed(monkeypatch)
    text = HEDGED.replace("price(BTC) > CEILING",
                          "price(BTC) > 67_850 and position(binance, BTC) < 0")
    prices = [str(67_800 + (i % 120)) for i in range(2000)]
    result = _agree(_plan(text), _minutes(prices))
    assert result.firings["close"] == 1  # the first time above 67,850; then no short left
    assert sum(counts) > len(prices) * 0.9


def test_value_is_followed_while_it_cannot_move(monkeypatch):
    """`value()` of a hedged book (the perp sized to the BTC the spot buy left after its
    fee) does not move with the price: its rows are crossed. Once the hedge is halved it
    moves, and every row is stepped."""
    counts = _crossed(monkeypatch)
    text = """plan hedged
holdings { binance: 300_000 USDT }
phase spot { spot buy 1 BTC/USDT on binance }
phase hedge after spot { perp sell balance(binance, BTC) BTC/USDT on binance leverage 1x }
trigger poorer when value() < 100_000 { spot sell 0.5 BTC/USDT on binance }
trigger unhedge every 1d { perp buy 0.5 BTC/USDT on binance }
"""
    prices = [str(67_800 + (i % 120)) for i in range(2 * 1440)]
    result = _agree(_plan(text), _minutes(prices, 100_000))
    assert result.firings == {"poorer": 0, "unhedge": 1}
    # Crossed: rows 2 .. 1439 (the day's firing at row 1440 ends the hedge); after it none.
    assert counts == [1438]


def test_a_trigger_evaluated_before_a_firing_is_stepped_again():
    """At row 49 `close` fires (the short is gone), `guarded` is evaluated (no short: false)
    and `calm` fires (a short again). At row 50 nothing moved but `guarded`'s condition is
    true now: it fires there, so the row after a firing is stepped, not crossed (found by
    the property test above)."""
    text = """plan q
holdings { binance: 200_000 USDT }
phase spot { spot buy 1 BTC/USDT on binance }
phase hedge after spot { perp sell 0.5 BTC/USDT on binance leverage 1x }
trigger close when price(BTC) > 67_800 cooldown 3h { perp buy 0.5 BTC/USDT on binance }
trigger guarded when price(BTC) > 67_800 and position(binance, BTC) < 0 {
  perp buy 0.1 BTC/USDT on binance
}
trigger calm when not (price(BTC) <= 67_800) {
  perp sell 0.1 BTC/USDT on binance leverage 10x
}
"""
    prices = ["67800"] * 49 + ["67833.9"] * 6
    result = _agree(_plan(text), _minutes(prices, 100_000))
    fired = [(e.time // 60_000, e.name) for e in result.events if e.kind == "firing"]
    assert fired == [(49, "close"), (49, "calm"), (50, "guarded")]


def test_a_condition_that_cannot_be_evaluated_fails_at_every_step(monkeypatch):
    """`entry_price(aave, BTC)`: aave lists no BTC perp, so the condition fails at each step
    (SP103, a failure event a step) and no row is crossed: both paths record every one."""
    counts = _crossed(monkeypatch)
    text = HEDGED.replace("price(BTC) > CEILING", "entry_price(aave, BTC) > 1")
    result = _agree(_plan(text), _minutes([str(67_800 + i % 9) for i in range(300)]))
    failures = [e for e in result.events if e.kind == "failure"]
    assert len(failures) == 299 and failures[0].code == "SP103"
    assert counts == []


def test_a_perp_quoted_in_an_asset_not_worth_exactly_one(monkeypatch):
    """USDT at 0.9998: the mark is price / 0.9998, rounded, so a perp's value is not
    linear in the price; each crossed row works it out as the step does."""
    counts = _crossed(monkeypatch)
    market = MARKET.model_copy(update={"prices": {**MARKET.prices, "USDT": Decimal("0.9998")}})
    text = """plan short
holdings { binance: 100_000 USDT }
phase open { perp sell 1 BTC/USDT on binance leverage 3x }
phase spot after open { spot buy 0.5 BTC/USDT on binance }
"""
    prices = [str(Decimal(67_800) + Decimal(i % 37) / 8) for i in range(400)]
    result = _agree(_plan(text), _minutes(prices, 100_000), market)
    assert sum(counts) == len(prices) - 2  # everything but the first step is crossed
    assert result.value_end != result.snapshots[1].value
