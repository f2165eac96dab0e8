"""The summary's metrics gathered step by step (interpreter/time/running_metrics.py), and a
backtest that keeps no step (`run_backtest(..., keep_steps=False)`, results.Snapshots)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratplan.dsl.decimals import EXACT, arithmetic
from stratplan.dsl.parser import parse
from stratplan.executors.market import default_market
from stratplan.interpreter.series.read import read_series
from stratplan.interpreter.testing.strategies import series, valid_plans
from stratplan.interpreter.time.backtest import run_backtest
from stratplan.interpreter.time.metrics import report, summary
from stratplan.interpreter.time.running_metrics import RunningMetrics

MARKET = default_market()
D = Decimal


def _fed(values: list[Decimal], start: Decimal | None = None) -> RunningMetrics:
    running = RunningMetrics(start)
    with arithmetic():
        for time, value in enumerate(values):
            running.value(time * 60_000, value)
    return running


def test_zero_returns_are_counted_and_the_rest_summed_exactly():
    """A value kept from the step before (the same Decimal) is a zero return, as is an
    equal one; 0 -> 5 has no return (V_(i-1) is not > 0)."""
    same = D(100)
    running = _fed([same, same, same, D(110), D(110), D(99), D(0), D(5)])
    # 100->100 twice and 110->110 once: three zeros. Moved: 100->110 is +0.1, 110->99 is
    # 99/110 - 1 = -0.1, 99->0 is -1.
    assert (running.moved, running.still, running.returns) == (3, 3, 6)
    assert running.total == D("0.1") - D("0.1") - 1 == D(-1)
    assert running.squares == D("0.01") + D("0.01") + 1
    assert running.downside == D("0.01") + 1


def test_the_variance_is_the_sample_variance_of_every_return():
    """100 -> 110 -> 99 -> 99 -> 99: returns 0.1, -0.1, 0, 0; mean 0, so the variance is
    Σr² / (n - 1) = 0.02 / 3. A return of 1/3 makes the sums carry more digits than 40:
    the variance is Σr² - (Σr)²/n over n - 1, with only that last division rounded."""
    assert _fed([D(100), D(110), D(99), D(99), D(99)]).variance() == D("0.02") / 3
    running = _fed([D(3), D(4), D(4)])   # returns 1/3 and 0
    with arithmetic():
        third = D(4) / D(3) - 1          # 0.3333...3 (40 digits)
        square = EXACT.multiply(third, third)
        expected = EXACT.subtract(square, EXACT.divide(square, D(2))) / 1
        assert running.variance() == expected
        # The plain two-pass definition agrees to the digits kept.
        mean = third / 2
        plain = ((third - mean) ** 2 + mean * mean) / 1
        assert abs(plain - running.variance()) <= plain * D("1e-38")


def test_drawdown_starts_from_the_value_before_the_phases():
    """Start 100 (before the phases), steps 98, 105, 84, 90 a minute apart: the peak 105 at
    1 minute, the worst fall (105 - 84) / 105 = 0.2 at 2 minutes; a first step below the
    start is already a fall from it, (100 - 98) / 100, dated from the first step."""
    running = _fed([D(98), D(105), D(84), D(90)], start=D(100))
    assert running.worst == D("0.2")
    assert (running.worst_from, running.worst_to) == (60_000, 120_000)
    only_start = _fed([D(98)], start=D(100))
    assert only_start.worst == D("0.02") and only_start.worst_from == 0


def test_lowest_health_is_the_first_time_reached_before_or_after():
    """Each step's tables before its liquidations and after its firings; the very same
    tables as the step before are skipped; ties keep the first time."""
    running = RunningMetrics()
    first = {"aave": D("1.5"), "spark": None}
    running.tables(0, first, first)
    running.tables(60_000, {"aave": D("1.2"), "spark": D(3)}, {"aave": D("1.3"), "spark": D(3)})
    last = {"aave": D("1.2"), "spark": D(2)}
    running.tables(120_000, last, last)
    assert running.health == {"aave": (D("1.2"), 60_000), "spark": (D(2), 120_000)}
    # The step before's very tables again add nothing, whatever they hold now: skipped by
    # identity (a table is never changed once given; this one is, to show the skip).
    last["aave"] = D("0.5")
    running.tables(180_000, last, last)
    assert running.health["aave"] == (D("1.2"), 60_000)
    running.tables(240_000, dict(last), last)
    assert running.health["aave"] == (D("0.5"), 240_000)


LOOP = """plan loop "weETH loop, deleveraged below 1.3"
holdings { wallet: 15.2 ETH }
phase entry {
  atomic leverage via instadapp {
    flash borrow 48 WETH from balancer
    unwrap all WETH
    stake 63 ETH on etherfi -> weETH
    supply all weETH to aave
    borrow 48 WETH from aave
    flash repay all WETH to balancer
  }
}
trigger deleverage when health(aave) < 1.3 cooldown 1d {
  repay 2 WETH to aave
}
"""


def _series(rows: int) -> str:
    lines = ["time,price.ETH,price.weETH,rate.weETH,supply.aave.weETH,borrow.aave.WETH"]
    for i in range(rows):
        eth = 3400 - 7 * i if i < rows // 2 else 3400 - 7 * (rows - i)
        lines.append(f"2024-01-01T{i // 60:02d}:{i % 60:02d}:00Z,{eth},{eth * 1.05:.2f},"
                     f"{1.05 + i / 1e6:.6f},0.001,0.03")
    return "\n".join(lines) + "\n"


def test_a_run_without_its_steps_reports_the_same_and_keeps_three():
    plan = parse(LOOP).plan
    data = read_series(_series(200).encode(), "loop")
    kept = run_backtest(plan, MARKET, data)
    lean = run_backtest(plan, MARKET, data, keep_steps=False)
    assert report(lean) == report(kept)
    assert len(lean.snapshots) == len(kept.snapshots) == 200
    assert len(lean.snapshots.values) == 3  # the first and the last two
    assert lean.snapshots[0] == kept.snapshots[0]
    assert lean.snapshots[-1] == kept.snapshots[-1]
    assert lean.snapshots[199] == kept.snapshots[199]
    with pytest.raises(IndexError, match="step 100 of 200 was not kept"):
        lean.snapshots[100]
    with pytest.raises(ValueError, match="did not keep its steps"):
        list(lean.snapshots)
    with pytest.raises(ValueError, match="did not keep its steps"):
        lean.snapshots.key_sets()


def test_min_health_and_drawdown_equal_their_definitions_over_kept_steps():
    """The running metrics against the plain definitions over every kept step."""
    plan = parse(LOOP).plan
    result = run_backtest(plan, MARKET, read_series(_series(200).encode(), "loop"))
    snaps = list(result.snapshots)
    lowest: dict[str, tuple[Decimal, int]] = {}
    for snap in snaps:
        for table in (snap.health_before, snap.health):
            for venue, health in (table or {}).items():
                if health is not None and (venue not in lowest or health < lowest[venue][0]):
                    lowest[venue] = (health, snap.time)
    with arithmetic():
        peak, worst = result.value_start, D(0)
        for snap in snaps:
            peak = max(peak, snap.value)
            worst = max(worst, (peak - snap.value) / peak)
    got = summary(result)
    assert got["min_health"] == {v: {"value": h, "time": t} for v, (h, t) in lowest.items()}
    assert got["max_drawdown"] == worst > 0
    assert result.firings["deleverage"] >= 1


@settings(deadline=None, max_examples=30,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(valid_plans(triggers=True), series(max_rows=25))
def test_property_keeping_no_step_changes_no_report(plan, data):
    kept = run_backtest(plan, MARKET, data)
    lean = run_backtest(plan, MARKET, data, keep_steps=False)
    assert report(lean) == report(kept)
    assert len(lean.snapshots.values) <= 3
    if len(kept.snapshots):
        assert lean.snapshots[-1] == kept.snapshots[-1]


_SLOTS = ("peak", "peak_time", "worst", "worst_from", "worst_to", "last", "positive", "total",
          "squares", "downside", "moved", "still", "health")


@settings(deadline=None, max_examples=200)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=12),
       st.lists(st.sampled_from(["90", "99.5", "100", "100.00", "101", "0.3", "-2", "0"]),
                min_size=1, max_size=12),
       st.integers(0, 11), st.sampled_from([None, "100", "120", "-1"]), st.booleans())
def test_property_a_stretch_given_at_once_is_each_step_given_in_turn(moves, texts, split,
                                                                     start, same):
    """`RunningMetrics.values` (a stretch of steps at once, time/accruing.py) leaves every
    sum, count, peak, fall and date as `value` step by step does, to the digit and to the
    object: equal values, the very object of the step before, non-positive values and
    steps before the first all included."""
    values = [D(text) * (1 + D(move) / 7) for text, move in zip(texts, moves, strict=False)]
    if same and len(values) > 2:
        values[2] = values[1]  # the very object of the step before
    times = [60_000 * at for at in range(len(values))]
    split = min(split, len(values))
    one = RunningMetrics(None if start is None else D(start))
    two = RunningMetrics(None if start is None else D(start))
    with arithmetic():
        for time, value in zip(times, values, strict=True):
            one.value(time, value)
        for time, value in zip(times[:split], values[:split], strict=True):
            two.value(time, value)
        two.values(times[split:], values[split:])
    for name in _SLOTS:
        mine, theirs = getattr(two, name), getattr(one, name)
        assert mine == theirs and str(mine) == str(theirs), name


def test_a_stretch_at_once_works_out_the_returns_and_the_fall():
    """100, then 110, 99, 99, 121 at once: returns 0.1, -0.1, 0 and 121/99 - 1 = 2/9; the
    peak 110 at 1 minute, then 121 at 4; the worst fall (110 - 99) / 110 = 0.1 at 2."""
    running = RunningMetrics()
    with arithmetic():
        running.value(0, D(100))
        running.values([60_000, 120_000, 180_000, 240_000], [D(110), D(99), D(99), D(121)])
        two_ninths = D(121) / D(99) - 1
    assert (running.moved, running.still) == (3, 1)
    assert running.total == EXACT.add(D("0.1") - D("0.1"), two_ninths)
    assert running.squares == EXACT.add(D("0.02"), EXACT.multiply(two_ninths, two_ninths))
    assert running.downside == D("0.01")
    assert (running.worst, running.worst_from, running.worst_to) == (D("0.1"), 60_000,
                                                                      120_000)
    assert (running.peak, running.peak_time) == (D(121), 240_000)


def test_the_lowest_health_of_a_stretch_is_its_first_lowest():
    """Health 1.4, None, 1.2, 1.3, 1.20 over five steps: the lowest 1.2, first at the third
    step (the equal 1.20 later keeps the first time); a stretch above it changes nothing."""
    running = RunningMetrics()
    times = [0, 60_000, 120_000, 180_000, 240_000]
    running.lowest(times, "aave", [D("1.4"), None, D("1.2"), D("1.3"), D("1.20")])
    assert running.health == {"aave": (D("1.2"), 120_000)}
    running.lowest(times, "aave", [D("1.5"), D("1.21")])
    running.lowest(times, "spark", [None, None])
    assert running.health == {"aave": (D("1.2"), 120_000)}


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(st.sampled_from([None, "1.5", "1.50", "2", "0.9"]),
                          st.sampled_from([None, "1.5", "3"])), min_size=1, max_size=8),
       st.integers(0, 8), st.booleans())
def test_property_tables_extended_by_columns_are_the_tables_appended(rows, split, empty):
    """`_Tables.extend` (a stretch's tables as columns, time/accruing.py) keeps the entries
    `append` keeps table by table: equal values, and the entry of the step before shared
    where the values are written alike (1.5 then 1.5, not 1.5 then 1.50)."""
    from stratplan.interpreter.time.results import _Tables
    keys = () if empty else ("aave", "spark")
    tables = [{} if empty else {"aave": None if a is None else D(a),
                                "spark": None if b is None else D(b)} for a, b in rows]
    split = min(split, len(tables))
    one, two = _Tables(), _Tables()
    for table in tables:
        one.append(table)
    for table in tables[:split]:
        two.append(table)
    rest = tables[split:]
    two.extend(keys, [[table[key] for table in rest] for key in keys], len(rest))
    assert [repr(entry) for entry in two.entries] == [repr(entry) for entry in one.entries]
    shared = [a is b for a, b in zip(one.entries, one.entries[1:], strict=False)]
    assert [a is b for a, b in zip(two.entries, two.entries[1:], strict=False)] == shared
