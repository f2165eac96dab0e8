"""Accruing rows (interpreter/time/accruing.py): a backtest that steps a lending book's rows
with its own loop gives the step-by-step reference path's results (`reference=True`) to the
last digit — every step's value, health, exposure and PnL parts, every event, fill and
firing, the summary — and stops before every row where something else can happen."""

from __future__ import annotations

from decimal import Decimal
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratplan.executors.market import default_market
from stratplan.interpreter.time import accruing
from stratplan.interpreter.time.backtest import run_backtest
from stratplan.interpreter.time.metrics import report
from tests.interpreter.test_backtest_quiet import _agree, _equal, _plan, _series

MARKET = default_market()
HOUR = 3_600_000
SETTINGS = settings(deadline=None, max_examples=60,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

LOOP = """plan loop "a weETH loop"
holdings {{ wallet: 15.2 ETH, 5000 USDC }}
phase entry {{
  atomic leverage via instadapp {{
    flash borrow {flash} WETH from balancer
    unwrap all WETH
    stake {stake} ETH on etherfi -> weETH
    supply all weETH to aave
    borrow {flash} WETH from aave
    flash repay all WETH to balancer
  }}
}}
"""
STABLE = """plan stable "WETH against USDC"
holdings {{ wallet: 12 WETH, 1 ETH, 500 USDC }}
phase entry {{
  supply 10 WETH to aave
  borrow {usdc} USDC from aave
}}
"""
TRIGGERS = [
    "trigger delever when health(aave) < {level} cooldown {cooldown} {{\n"
    "  repay 100 USDC to aave\n}}\n",
    "trigger dip when price(ETH) < {low} and not (health(aave) > 50) {{\n"
    "  repay 10 USDC to aave\n}}\n",
    "trigger check every {every} {{\n  assert health(aave) > 1.01 else \"close to liquidation\"\n}}\n",
    "trigger rich when balance(wallet, USDC) > 100 {{\n  repay 10 USDC to aave\n}}\n",
    "trigger staked when rate(weETH) > 1.0501 {{\n  repay 10 USDC to aave\n}}\n",
]


@st.composite
def lending_backtests(draw):
    """A weETH loop or an ETH/USDC loan, at a leverage that may end in liquidation, with
    triggers on health, prices, times (and some this module does not follow), over a series
    of minutes or hours with moving prices, a moving exchange rate (a slashing too), APRs
    held for some rows, funding cells, maybe an oracle column."""
    rows = draw(st.integers(3, 50))
    step = draw(st.sampled_from([60_000, HOUR]))
    shape = draw(st.sampled_from(["loop", "stable"]))
    if shape == "loop":
        flash = draw(st.sampled_from([30, 48, 52]))
        text = LOOP.format(flash=flash, stake=Decimal("15") + flash)
    else:
        text = STABLE.format(usdc=draw(st.sampled_from([10_000, 20_000, 25_000])))
    chosen = draw(st.lists(st.sampled_from(range(len(TRIGGERS))), max_size=3, unique=True))
    levels = {"level": draw(st.sampled_from(["1.1", "1.2", "1.3", "1.5"])),
              "cooldown": draw(st.sampled_from(["1m", "2h"])),
              "low": draw(st.sampled_from(["3300", "3390", "3400"])),
              "every": draw(st.sampled_from(["3m", "2h", "1d"]))}
    text += "".join(TRIGGERS[index].format(**levels) for index in sorted(chosen))
    moves = draw(st.lists(st.integers(-60, 40), min_size=rows, max_size=rows))
    weeth_column = draw(st.booleans())
    rate_column = draw(st.booleans())
    slash = draw(st.integers(0, rows))
    apr_every = draw(st.sampled_from([1, 3, 60]))
    funding_every = draw(st.sampled_from([0, 4]))
    oracle = draw(st.booleans()) and draw(st.booleans())
    header = ["time", "price.ETH"]
    header += ["price.weETH"] if weeth_column else []
    header += ["rate.weETH"] if rate_column else []
    header += ["supply.aave.weETH", "supply.aave.WETH", "borrow.aave.WETH", "borrow.aave.USDC",
               "funding.binance.BTC"]
    header += ["oracle.weETH"] if oracle else []
    eth, rate, lines = Decimal(3400), Decimal("1.05"), []
    for index in range(rows):
        eth += moves[index]
        rate = rate * Decimal("0.97") if index == slash else rate + Decimal("0.0000003")
        cells = [_iso(index * step), str(eth)]
        if weeth_column:
            cells.append(str((eth * rate * Decimal("0.999")).quantize(Decimal("0.01"))))
        if rate_column:
            cells.append(str(rate))
        held = index % apr_every == 0
        cells += [f"0.00{index % 7 + 1}" if held else "", "0.001" if held else "",
                  f"0.0{index % 5 + 2}" if held else "", "0.08" if held else ""]
        cells.append("0.0001" if funding_every and index % funding_every == 1 else "")
        if oracle:
            cells.append(str((eth * Decimal("1.04")).quantize(Decimal("0.01"))))
        lines.append(",".join(cells))
    return _plan(text), _series(lines, ",".join(header))


def _iso(ms: int) -> str:
    from stratplan.interpreter.series.read import iso
    return iso(1_704_067_200_000 + ms)


def _stepped(monkeypatch) -> list[int]:
    """Records how many rows each stretch of `AccruingRows` stepped."""
    counts: list[int] = []
    run = accruing.AccruingRows._run

    def counting(self, layout, live, first, stop, snapshots, totals):
        done = run(self, layout, live, first, stop, snapshots, totals)
        counts.append(done - first)
        return done

    monkeypatch.setattr(accruing.AccruingRows, "_run", counting)
    return counts


@SETTINGS
@given(lending_backtests())
def test_property_accruing_rows_equal_the_reference(generated):
    plan, data = generated
    _agree(plan, data)


@SETTINGS
@given(lending_backtests(), st.integers(1, 4))
def test_property_blocks_of_any_size_and_no_kept_step_change_nothing(generated, size):
    """Rows are worked out in blocks (`accruing.BLOCK` of them): blocks of 1 to 4 rows put
    their edges everywhere (a firing, a liquidation, a stretch's end at a block's first or
    last row) and give every step as one block of 1,024 does; a run keeping no step gives
    the reference's summary."""
    plan, data = generated
    with patch.object(accruing, "BLOCK", size):
        _agree(plan, data)
        lean = run_backtest(plan, MARKET, data, keep_steps=False)
    _equal(report(lean), report(run_backtest(plan, MARKET, data, reference=True)))


def test_the_leveraged_loop_is_stepped_here_but_for_its_events(monkeypatch):
    """A loop over two days of hours with a check every 6h and a health trigger that never
    fires: the first row, the rows where the check is due and the row after each firing
    are the loop's, every other row is stepped here."""
    counts = _stepped(monkeypatch)
    text = LOOP.format(flash=48, stake=63) + \
        "trigger delever when health(aave) < 1.1 cooldown 1d {\n  repay 100 USDC to aave\n}\n" \
        "trigger check every 6h {\n  assert health(aave) > 1.01 else \"low\"\n}\n"
    lines = [f"{_iso(i * HOUR)},{3400 + (i % 7) * 3},{1.05 + i / 1e6:.7f},0.002,0.03"
             for i in range(48)]
    data = _series(lines, "time,price.ETH,rate.weETH,supply.aave.weETH,borrow.aave.WETH")
    result = _agree(_plan(text), data)
    # Rows 1..47: row 1 (the first step), each row where the check is due (6h, 12h, ...,
    # 42h) and the row after each firing are the loop's; rows 2-5, 8-11, ..., 44-47 (eight
    # stretches of four) are stepped here.
    assert counts == [4] * 8
    assert result.firings == {"delever": 0, "check": 7}


def test_a_rising_health_condition_stops_before_its_row(monkeypatch):
    """ETH falls 20 a row: health(aave) < 1.3 becomes true at one row, which the loop steps
    and fires at (the reference fires at the same time); later the loan is liquidated at
    the row where health falls below 1, also the loop's."""
    counts = _stepped(monkeypatch)
    text = STABLE.format(usdc=20_000) + \
        "trigger delever when health(aave) < 1.3 cooldown 1d {\n  repay 100 USDC to aave\n}\n"
    lines = [f"{_iso(i * 60_000)},{3400 - 20 * i},0.001,0.08" for i in range(60)]
    data = _series(lines, "time,price.ETH,supply.aave.WETH,borrow.aave.USDC")
    result = _agree(_plan(text), data)
    firing = next(e for e in result.events if e.kind == "firing")
    # health = 10 WETH * p * 0.83 (WETH's threshold at aave) / 20,000.0x USDC: below 1.3
    # from the first p below 1.3 * 20,000 / 8.3 = 3132.5, i.e. row 14 (3120).
    assert firing.time == 1_704_067_200_000 + 14 * 60_000
    # Rows 2-13 are stepped here; 14 (the firing) and 15 (the row after it) by the loop;
    # 16-50 here; 51, where ETH at 2380 takes health below 1 (a liquidation), by the loop;
    # 52-59 here.
    liquidation = next(e for e in result.events if e.kind == "liquidation")
    assert liquidation.time == 1_704_067_200_000 + 51 * 60_000
    assert counts == [12, 35, 8]


def test_a_liquidation_is_the_loops_at_the_same_row(monkeypatch):
    """Without triggers, a collapsing ETH price liquidates the loan: the row where health
    falls below 1 is stepped by the loop, as in the reference."""
    _stepped(monkeypatch)
    lines = [f"{_iso(i * 60_000)},{3400 - 40 * i},0.001,0.08" for i in range(60)]
    data = _series(lines, "time,price.ETH,supply.aave.WETH,borrow.aave.USDC")
    result = _agree(_plan(STABLE.format(usdc=25_000)), data)
    assert any(e.kind == "liquidation" for e in result.events)


def test_a_condition_on_the_rate_leaves_every_row_to_the_loop(monkeypatch):
    """`rate(weETH)` moves at every row, and a stretch writes rates only when it ends."""
    counts = _stepped(monkeypatch)
    text = STABLE.format(usdc=10_000) + TRIGGERS[4].format()
    lines = [f"{_iso(i * 60_000)},{3400 + i},0.001,0.08" for i in range(30)]
    _agree(_plan(text), _series(lines, "time,price.ETH,supply.aave.WETH,borrow.aave.USDC"))
    assert counts == []


def test_a_condition_on_the_debt_fires_at_its_row(monkeypatch):
    """`debt(aave, USDC) > 20000.05`: the debt grows by ~0.003 USDC a minute at 8%, so the
    condition turns true at the first row whose debt, compounded as the step compounds it,
    passes 20,000.05; rows before it are stepped here with the amounts written to the
    books, and the firing is the loop's at that row, as in the reference."""
    counts = _stepped(monkeypatch)
    text = STABLE.format(usdc=20_000) + \
        "trigger owed when debt(aave, USDC) > 20000.05 {\n  repay 1 USDC to aave\n}\n"
    lines = [f"{_iso(i * 60_000)},3400,0.001,0.08" for i in range(40)]
    result = _agree(_plan(text),
                    _series(lines, "time,price.ETH,supply.aave.WETH,borrow.aave.USDC"))
    from stratplan.dsl.decimals import arithmetic
    with arithmetic():
        x = Decimal("0.08") * 60 / Decimal(31_536_000)
        factor = 1 + x + x * x / 2 + x * x * x / 6
        debt, row = Decimal(20_000), 0
        while debt <= Decimal("20000.05"):
            debt, row = debt + (debt * factor - debt), row + 1
    assert row == 17  # 0.05 / (20,000 * x) = 16.4 rows
    firing = next(e for e in result.events if e.kind == "firing")
    assert firing.time == 1_704_067_200_000 + row * 60_000
    assert counts[0] == row - 2  # rows 2..16: row 1 is the first step, row 17 the loop's


def test_interest_over_a_stretch_is_the_steps_arithmetic():
    """One WETH/USDC loan, APRs 1% and 8% held, ETH at 3400 throughout, rows a minute apart:
    the debt after n rows is 10,000 * f^n with f = 1 + x + x²/2 + x³/6, x = 0.08 * 60 /
    31,536,000, each row rounded to 40 digits as the step rounds it."""
    lines = [f"{_iso(i * 60_000)},3400,0.01,0.08" for i in range(31)]
    data = _series(lines, "time,price.ETH,supply.aave.WETH,borrow.aave.USDC")
    result = run_backtest(_plan(STABLE.format(usdc=10_000)), MARKET, data)
    from stratplan.dsl.decimals import arithmetic
    with arithmetic():
        x = Decimal("0.08") * 60 / Decimal(31_536_000)
        factor = 1 + x + x * x / 2 + x * x * x / 6
        debt, collateral = Decimal(10_000), Decimal(10)
        supply = 1 + Decimal("0.01") * 60 / Decimal(31_536_000)
        for _ in range(30):
            debt = debt + (debt * factor - debt)
            collateral = collateral + (collateral * supply - collateral)
    books = result.engine.monitor.books
    assert books["debt"][("aave", "USDC")] == debt
    assert books["collateral"][("aave", "WETH")] == collateral


def test_arithmetic_that_fails_in_a_block_is_left_to_the_loop(monkeypatch):
    """A block works rows out past where the step would stop; if its arithmetic fails
    there (an overflow on books a liquidation would have changed first), the rows are left
    to the loop, and the backtest is the reference's."""
    import decimal

    counts = _stepped(monkeypatch)
    health = accruing._Block._health

    def failing(self):
        if self.first >= 10:
            raise decimal.Overflow("a price past the stop")
        return health(self)

    monkeypatch.setattr(accruing._Block, "_health", failing)
    monkeypatch.setattr(accruing, "BLOCK", 4)
    lines = [f"{_iso(i * 60_000)},{3400 + i},0.001,0.08" for i in range(30)]
    _agree(_plan(STABLE.format(usdc=10_000)),
           _series(lines, "time,price.ETH,supply.aave.WETH,borrow.aave.USDC"))
    # Blocks of 4 rows: rows 2-5 and 6-9 are stepped here; the block from row 10 fails,
    # so the loop steps row 10, and every later block fails at its first row too.
    assert counts[0] == 8
    assert len(counts) > 1 and all(count == 0 for count in counts[1:])


def test_a_condition_on_value_reads_each_rows_prices():
    """`value()` is the books at the market's prices: each row's prices are written before
    the condition is read, so `rich` fires at the first row whose value passes 45,000 (13
    ETH-priced units at 3400 + 3i, USDC 500 net of the loan, less the entry's gas: i = 9),
    as in the reference. Found by an adversarial run: the stretch read the prices of its
    first row."""
    text = STABLE.format(usdc=20_000) + \
        "trigger rich when value() > 45000 {\n  repay 10 USDC to aave\n}\n"
    lines = [f"{_iso(i * 60_000)},{3400 + 3 * i},0.001,0.08" for i in range(40)]
    data = _series(lines, "time,price.ETH,supply.aave.WETH,borrow.aave.USDC")
    for size in (1, 3, 256):
        with patch.object(accruing, "BLOCK", size):
            result = _agree(_plan(text), data)
        firing = next(e for e in result.events if e.kind == "firing")
        passed = next(s.time for s in result.snapshots if s.value > 45_000)
        assert firing.time == passed == 1_704_067_200_000 + 9 * 60_000


def test_a_health_beyond_1e30_is_sp110_on_every_path():
    """A dust debt (1e-27 USDC against 10 WETH) makes health(aave) ~3e31: the evaluator
    refuses it (SP110, LANGUAGE.md section 1) at every step after the entry, and so do the compiled
    condition and the accruing rows (found by an adversarial run: they compared it)."""
    text = ("plan dust \"x\"\nholdings { wallet: 12 WETH, 1 ETH, 500 USDC }\n"
            "phase entry {\n  supply 10 WETH to aave\n  borrow 1 USDC from aave\n"
            "  repay 0.999999999999999999999999999 USDC to aave\n}\n"
            "trigger low when health(aave) < 1.5 {\n  repay 1 USDC to aave\n}\n")
    lines = [f"{_iso(i * 60_000)},{3400 + i},0.05" for i in range(5)]
    result = _agree(_plan(text), _series(lines, "time,price.ETH,borrow.aave.USDC"))
    failures = [e for e in result.events if e.kind == "failure"]
    assert [e.code for e in failures] == ["SP110"] * 4  # rows 1-4 (row 0 is the entry)
    assert "out of range" in failures[0].message and result.failed


def test_an_asset_on_a_derived_underlying_is_priced_from_the_same_row():
    """A market listing aWETH (on WETH, 5% staking APR) before WETH (on ETH): aWETH's price
    is price(WETH) · rate(aWETH) with WETH's price of the same row, on every path (found by
    an adversarial run: the step derived aWETH before WETH, from WETH's price of the row
    before, and a step reading only the held assets left WETH's price behind)."""
    from pathlib import Path

    from stratplan.executors.market import market_from_text
    text = (Path(accruing.__file__).parents[2] / "executors/data/default_market.yaml"
            ).read_text()
    text = text.replace("assets: {WETH:", "assets: {aWETH: {underlying: WETH, rate: 1.01}, WETH:")
    text = text.replace("prices: {", "prices: {aWETH: 3434, ")
    text = text.replace("  staking: {", "  staking: {aWETH: 5%, ")
    text = text.replace("      USDT: {ltv: 75%", "      aWETH: {ltv: 70%, liquidation_threshold: "
                        "80%, liquidation_bonus: 5%, oracle: exchange_rate}\n      USDT: {ltv: 75%",
                        1)
    market = market_from_text(text, "chained")
    assert next(iter(market.assets)) == "aWETH"  # listed before WETH, its underlying
    plan = _plan("plan p \"x\"\nholdings { wallet: 10 aWETH, 1 ETH }\n"
                 "phase entry {\n  supply 10 aWETH to aave\n  borrow 10000 USDC from aave\n}\n")
    lines = [f"{_iso(i * 60_000)},{3400 + 7 * i},0.08" for i in range(30)]
    data = _series(lines, "time,price.ETH,borrow.aave.USDC")
    for size in (1, 256):
        with patch.object(accruing, "BLOCK", size):
            result = _agree(plan, data, market)
    # At the last row WETH is ETH's 3603 · 1 and aWETH that · its rate at the row.
    assert result.market.prices["WETH"] == 3603
    from stratplan.dsl.decimals import arithmetic
    with arithmetic():
        assert result.market.prices["aWETH"] == 3603 * result.market.assets["aWETH"].rate
