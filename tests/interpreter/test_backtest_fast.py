"""The backtest's fast path (interpreter/readings.py, compiled `when` conditions, the
liquidation guard) gives the same results, to the last digit, as the plain definitions
(`run_backtest(..., reference=True)`: executors/accounts.py and the evaluator at every step).
docs/performance.md explains each fast path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.models import (
    Assert,
    BinOp,
    BoolOp,
    Call,
    Compare,
    NameRef,
    Not,
    Number,
    Trigger,
)
from stratplan.dsl.parser import parse
from stratplan.executors.accounts import exposure, health_factor, portfolio_value
from stratplan.executors.market import default_market
from stratplan.interpreter.evaluate import Scope, holds
from stratplan.interpreter.monitor import PositionMonitor
from stratplan.interpreter.series.read import load_series, read_series
from stratplan.interpreter.testing.strategies import SPAN, AssetArg, series, valid_plans
from stratplan.interpreter.time.backtest import run_backtest
from stratplan.interpreter.time.readings import Readings
from stratplan.interpreter.time.triggers import compile_condition

MARKET = default_market()
ROOT = Path(__file__).resolve().parents[2]
SETTINGS = settings(deadline=None, max_examples=40,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _num(text: str) -> Number:
    return Number(value=Decimal(text), text=text, span=SPAN)


def _health(venue: str = "aave") -> Call:
    return Call(func="health", args=(NameRef(name=venue, span=SPAN),), span=SPAN)


def _compare(op: str, left, right) -> Compare:
    return Compare(op=op, left=left, right=right, span=SPAN)


def _everything(result):
    snaps = [(s.time, s.value, s.health, s.health_before, s.exposure, s.parts)
             for s in result.snapshots]
    events = [(e.time, e.kind, e.name, e.node, e.line, e.code, e.message, e.loss_usd,
               e.collateral, e.debt, e.repaid, e.seized, e.written_off_usd)
              for e in result.events]
    notices = [(n.code, n.message) for n in result.notices]
    market = result.market
    rates = market.rates
    final = (dict(market.prices), {a: i.rate for a, i in market.assets.items()},
             dict(market.oracle_feed()), {v: dict(t) for v, t in rates.funding.items()},
             {v: (dict(t.supply), dict(t.borrow)) for v, t in rates.lending.items()})
    return (snaps, events, notices, result.firings, result.pnl, result.value_end,
            result.fills, result.benchmark_end, final)


def _same(plan, market, data) -> None:
    fast = run_backtest(plan, market, data)
    plain = run_backtest(plan, market, data, reference=True)
    assert _everything(fast) == _everything(plain)


@st.composite
def health_triggers(draw) -> Trigger:
    """A `when` trigger on health(aave), in the shapes compile_condition handles (among them
    a comparison with a price, read from the step's market), with a body that always
    succeeds."""
    level = _num(str(draw(st.sampled_from(["1", "1.05", "1.1", "1.2", "1.3", "2"]))))
    shapes = [
        _compare("<", _health(), level),
        _compare(">=", level, _health()),
        Not(operand=_compare(">", _health(), level), span=SPAN),
        BoolOp(op="and", left=_compare("<", _health(), level),
               right=_compare(">", _health(), _num("0.5")), span=SPAN),
        BoolOp(op="or", left=_compare("<", _health(), level),
               right=_compare("<", Call(func="price", args=(AssetArg(symbol="ETH", span=SPAN),), span=SPAN), _num("0")),
               span=SPAN),
    ]
    condition = draw(st.sampled_from(shapes))
    check = Assert(condition=_compare(">", _num("1"), _num("0")), span=SPAN)
    cooldown = None
    if draw(st.booleans()):
        from stratplan.interpreter.testing.strategies import _duration
        cooldown = _duration(draw(st.integers(1, 12)), "h")
    return Trigger(name="guard", when=condition, cooldown=cooldown, body=(check,), span=SPAN)


def _venue(name: str) -> NameRef:
    return NameRef(name=name, span=SPAN)


def _asset(symbol: str) -> AssetArg:
    return AssetArg(symbol=symbol, span=SPAN)


def _rate_calls() -> list[Call]:
    """The market functions a backtest reads from the series (or the market's constants),
    each at a venue and asset the generated series may or may not have a column for."""
    return [
        Call(func="funding", args=(_venue("binance"), _asset("BTC")), span=SPAN),
        Call(func="funding", args=(_venue("okx"), _asset("ETH")), span=SPAN),
        Call(func="borrow_rate", args=(_venue("aave"), _asset("WETH")), span=SPAN),
        Call(func="borrow_rate", args=(_venue("aave"), _asset("USDT")), span=SPAN),
        Call(func="supply_rate", args=(_venue("aave"), _asset("weETH")), span=SPAN),
        Call(func="rate", args=(_asset("weETH"),), span=SPAN),
        Call(func="oracle", args=(_venue("aave"), _asset("weETH")), span=SPAN),
    ]


# Levels that cross the generated series' values (funding -0.5 to 1 bps, lending 0 to 30%,
# weETH's rate from 1.05 up) and the market's constants (1bps, 2.5%, 5.5%, 0.05%).
_RATE_LEVELS = ["0", "0.00002", "0.0001", "0.0005", "0.025", "0.055", "0.1", "0.2", "1.05",
                "1.0500001", "3000", "3570"]


@st.composite
def rate_triggers(draw) -> Trigger:
    """A `when` trigger on market functions that follow the series (`funding`,
    `supply_rate`, `borrow_rate`, `rate`), in shapes compile_condition handles (comparisons
    with constants or with each other, `and`, `or`, `not`, mixed with health(aave)) and one
    it does not (arithmetic on a rate); its body always succeeds."""
    calls = _rate_calls()
    one, two = draw(st.sampled_from(calls)), draw(st.sampled_from(calls))
    level = _num(draw(st.sampled_from(_RATE_LEVELS)))
    op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
    shapes = [
        _compare(op, one, level),
        _compare(op, level, one),
        _compare(op, one, two),
        Not(operand=_compare(op, one, level), span=SPAN),
        BoolOp(op="or", left=_compare("<", _health(), _num("1.2")),
               right=_compare(op, one, level), span=SPAN),
        BoolOp(op="and", left=_compare(op, one, level), right=_compare(">", two, level),
               span=SPAN),
        _compare(op, BinOp(op="*", left=one, right=_num("3"), span=SPAN), level),
    ]
    condition = draw(st.sampled_from(shapes))
    check = Assert(condition=_compare(">", _num("1"), _num("0")), span=SPAN)
    cooldown = None
    if draw(st.booleans()):
        from stratplan.interpreter.testing.strategies import _duration
        cooldown = _duration(draw(st.integers(1, 12)), "h")
    return Trigger(name="rates", when=condition, cooldown=cooldown, body=(check,), span=SPAN)


@SETTINGS
@given(valid_plans(triggers=True), series(max_rows=25), health_triggers(), rate_triggers())
def test_property_fast_and_plain_backtests_agree(plan, data, guard, rates):
    _same(plan, MARKET, data)
    _same(plan.model_copy(update={"triggers": (*plan.triggers, guard, rates)}), MARKET, data)


def test_the_leveraged_example_agrees_over_the_shipped_series_and_a_depeg():
    plan = parse((ROOT / "examples" / "leveraged_restaking_over_time.plan").read_text()).plan
    assert plan is not None
    shipped = load_series(ROOT / "examples" / "data" / "synthetic_8h.csv")
    _same(plan, MARKET, shipped.slice(None, shipped.times[0] + 60 * 86_400_000))
    # a WETH squeeze that fires the deleverage trigger (borrow APR 30%), then a fall of
    # aave's oracle price of weETH (a broken feed, v3's oracle.weETH) deep enough to
    # liquidate what is left
    rows = ["time,price.ETH,price.weETH,oracle.weETH,supply.aave.weETH,borrow.aave.WETH"]
    prices = ["3570", "3500", "3300", "3100", "2900", "2700", "2500", "2600", "3570"]
    for day, price in enumerate(prices):
        borrow = "0.3" if day == 1 else "0.03"
        rows.append(f"{day * 86_400_000},3400,{price},{price},0.001,{borrow}")
    depeg = read_series(("\n".join(rows) + "\n").encode(), "depeg")
    _same(plan, MARKET, depeg)
    result = run_backtest(plan, MARKET, depeg)
    assert result.firings["deleverage"] >= 1
    assert any(e.kind == "liquidation" for e in result.events)


def test_compiled_conditions_equal_the_evaluator():
    monitor = PositionMonitor()
    scope = Scope({}, {}, MARKET, monitor)
    level = _num("1.15")
    conditions = [
        _compare("<", Call(func="funding", args=(_venue("binance"), _asset("BTC")), span=SPAN),
                 _num("-0.0001")),
        _compare("==", Call(func="borrow_rate", args=(_venue("aave"), _asset("WETH")),
                            span=SPAN), _num("0.025")),
        _compare(">", _health(), Call(func="price", args=(_asset("ETH"),), span=SPAN)),
        _compare("<", _health(), level), _compare(">", level, _health()),
        _compare("==", _health(), _health()), _compare("<", _num("1"), _num("2")),
        Not(operand=_compare(">=", _health(), level), span=SPAN),
        BoolOp(op="or", left=_compare("<", _health(), _num("1")),
               right=_compare(">", _health(), _num("1.3")), span=SPAN),
        # what the books hold, through the evaluator
        _compare(">", Call(func="exposure", args=(_asset("ETH"),), span=SPAN), _num("10")),
        _compare("<", Call(func="value", args=(), span=SPAN), _num("200000")),
        _compare("==", Call(func="debt", args=(_venue("aave"), _asset("WETH")), span=SPAN),
                 _num("48")),
        _compare(">", Call(func="collateral", args=(_venue("aave"), _asset("weETH")),
                           span=SPAN), Call(func="price", args=(_asset("ETH"),), span=SPAN)),
        _compare("<", Call(func="position", args=(_venue("binance"), _asset("BTC")),
                           span=SPAN), _num("0")),
        BoolOp(op="and", left=_compare("<", _health(), _num("1.3")),
               right=_compare(">=", Call(func="balance", args=(_venue("wallet"),
                                                                 _asset("ETH")), span=SPAN),
                              _num("0")), span=SPAN),
    ]
    readings = Readings(monitor, MARKET)
    states = [(), (("collateral", "weETH", "60"),),
              (("collateral", "weETH", "60"), ("debt", "WETH", "48")),
              (("collateral", "weETH", "60"), ("debt", "WETH", "52"))]
    for state in states:
        monitor.books = PositionMonitor().books
        for book, asset, amount in state:
            monitor.add(book, "aave", asset, Decimal(amount))
        readings = Readings(monitor, MARKET)
        readings.refresh()
        for condition in conditions:
            compiled = compile_condition(condition, scope)
            assert compiled is not None, condition
            assert compiled(readings.health()) == holds(condition, scope), (state, condition)
    # shapes it leaves to the evaluator: health at a CEX, arithmetic on a market function,
    # calls the evaluator refuses (SP103 at each step)
    price = Call(func="price", args=(_asset("ETH"),), span=SPAN)
    assert compile_condition(_compare("<", _health("binance"), level), scope) is None
    doubled = BinOp(op="*", left=price, right=_num("2"), span=SPAN)
    assert compile_condition(_compare("<", doubled, level), scope) is None
    refused = [Call(func="funding", args=(_venue("aave"), _asset("BTC")), span=SPAN),
               Call(func="borrow_rate", args=(_venue("aave"), _asset("weETH")), span=SPAN),
               Call(func="supply_rate", args=(_venue("aave"), _asset("BTC")), span=SPAN),
               Call(func="price", args=(_asset("DOGE"),), span=SPAN),
               Call(func="rate", args=(_asset("DOGE"),), span=SPAN)]
    for call in refused:
        assert compile_condition(_compare("<", call, level), scope) is None, call.func


def test_compiled_market_functions_read_the_market_as_it_changes():
    """A compiled comparison of a market function reads the market when called, as the
    evaluator does: a backtest changes its market's prices and rates in place each step."""
    data = read_series(b"time,funding.binance.BTC,borrow.aave.WETH,supply.aave.weETH,"
                       b"rate.weETH,price.ETH\n"
                       b"0,,,,,3400\n"
                       b"3600000,-0.0002,0.12,0.002,1.06,3000\n"
                       b"7200000,,0.01,,1.04,3500\n", "s.csv")
    plan = parse("plan p\nholdings { wallet: 1 ETH }\nphase start { assert 1 > 0 else \"x\" }\n"
                 ).plan
    assert plan is not None
    from stratplan.interpreter.time.backtest import Backtest
    bt = Backtest(plan, MARKET, data, executors={})
    scope = Scope({}, {}, bt.market, PositionMonitor())
    conditions = [_compare(op, call, _num(level)) for call in [*_rate_calls(),
                  Call(func="price", args=(_asset("ETH"),), span=SPAN)]
                  for op in ("<", "==", ">") for level in ("-0.0001", "0.0001", "0.025", "0.1",
                                                           "1.05", "3400")]
    conditions.append(_compare("<", _rate_calls()[0], _rate_calls()[2]))
    compiled = [compile_condition(condition, scope) for condition in conditions]
    assert all(c is not None for c in compiled)
    seen = set()
    for row in range(3):
        bt.apply_row(row)
        truths = []
        for condition, function in zip(conditions, compiled, strict=True):
            assert function is not None
            truths.append(function({}))
            assert truths[-1] == holds(condition, scope), (row, condition)
        seen.add(tuple(truths))
    assert len(seen) == 3  # the rows differ, and the compiled conditions follow them
    # the market the backtest was given is not changed
    assert MARKET.funding_rate("binance", "BTC") == Decimal("0.0001")
    assert MARKET.borrow_rate("aave", "WETH") == Decimal("0.025")


def test_readings_equal_the_accounts_functions():
    monitor = PositionMonitor()
    monitor.add("balance", "wallet", "ETH", Decimal("1.5"))
    monitor.add("balance", "binance", "USDT", Decimal(1000))
    monitor.add("collateral", "aave", "weETH", Decimal("59.98731429"))
    monitor.add("collateral", "aave", "WETH", Decimal("2"))
    monitor.add("debt", "aave", "WETH", Decimal(48))
    monitor.add("position", "binance", "ETH/USDT", Decimal("-2"))
    monitor.add("entry", "binance", "ETH/USDT", Decimal(3300))
    monitor.add("margin", "binance", "ETH/USDT", Decimal(700))
    readings = Readings(monitor, MARKET)
    readings.refresh()
    assert readings.value() == portfolio_value(monitor, MARKET)
    assert readings.health() == {"aave": health_factor(monitor, MARKET, "aave")}
    assert readings.exposures() == {"ETH": exposure(monitor, MARKET, "ETH")}
    # a key appears: the layout follows
    monitor.add("balance", "wallet", "weETH", Decimal(3))
    readings.refresh()
    assert readings.value() == portfolio_value(monitor, MARKET)
    assert readings.exposures() == {"ETH": exposure(monitor, MARKET, "ETH")}
    assert readings.net_units("weETH") == Decimal("62.98731429")


# --- the perp guard (readings.perp_bound) -----------------------------------------------------


@st.composite
def brackets(draw) -> tuple[tuple[Decimal, Decimal, Decimal], ...]:
    """Continuous maintenance brackets as the market accepts them (`_check_brackets`)."""
    rates = sorted(draw(st.lists(st.integers(1, 500), min_size=1, max_size=4, unique=True)))
    more = draw(st.lists(st.integers(1, 10**7), min_size=len(rates) - 1,
                         max_size=len(rates) - 1, unique=True))
    starts = [0, *sorted(more)]
    found: list[tuple[Decimal, Decimal, Decimal]] = []
    amount = Decimal(0)
    for start, rate in zip(starts, rates, strict=True):
        rate_d = Decimal(rate) / 10_000
        if found:
            amount = found[-1][2] + Decimal(start) * (rate_d - found[-1][1])
        found.append((Decimal(start), rate_d, amount))
    return tuple(found)


def _decimal(low: int, high: int, places: int) -> st.SearchStrategy[Decimal]:
    return st.integers(low * 10**places, high * 10**places).map(
        lambda n: Decimal(n).scaleb(-places))


@settings(deadline=None, max_examples=300)
@given(_decimal(-50, 50, 6).filter(bool), _decimal(1, 200_000, 4), _decimal(0, 500_000, 4),
       brackets(), st.lists(st.floats(-0.5, 0.5), min_size=1, max_size=8))
def test_property_a_perp_past_its_guard_bound_is_never_liquidatable(size, entry, margin,
                                                                       table, moves):
    """Every mark on the safe side of `perp_bound` is one the plain check finds safe; marks
    near the bound on both sides, and far from it, are tried."""
    from stratplan.executors.accounts import PerpPosition
    from stratplan.interpreter.time.readings import perp_bound
    with arithmetic():
        bound = perp_bound(size, entry, margin, table)
        if bound is None:
            return
        for move in [*moves, 1e-12, -1e-12, 1e-9, 2e-9]:
            mark = bound * (1 + Decimal(move))
            if mark <= 0 or not (mark > bound if size > 0 else mark < bound):
                continue
            assert not PerpPosition("v", "B/Q", size, entry, mark, margin, table).liquidatable
        # and the bound is close: just past the root the plain check liquidates
        root = PerpPosition("v", "B/Q", size, entry, bound, margin, table).liquidation_price
        assert root is not None and abs(bound - root) <= abs(root) * Decimal("2e-9")


CENT = Decimal("0.01")


def _perp_plan(leverage: str, trigger: str = "") -> str:
    return ("plan p\nholdings { binance: 10_000 USDT }\n"
            f"phase hedge {{\n  perp sell 1 ETH/USDT on binance leverage {leverage}x\n"
            f"  perp buy 0.1 BTC/USDT on binance leverage {leverage}x\n}}\n{trigger}")


@SETTINGS
@given(st.sampled_from(["1", "2", "3", "5", "10", "20"]),
       st.lists(st.integers(-400, 400), min_size=2, max_size=30),
       st.lists(st.integers(-400, 400), min_size=2, max_size=30),
       st.sampled_from(["", "0.0001", "-0.003"]), st.booleans())
def test_property_perps_near_liquidation_agree(leverage, eth_moves, btc_moves, funding, again):
    """Perps at every leverage over walks that liquidate some of them (and funding that
    eats the margin), with a trigger that reopens one: the guard skips only what the plain
    check would skip."""
    trigger = ("trigger again every 1h {\n  perp sell 0.5 ETH/USDT on binance leverage 10x\n}\n"
               if again else "")
    plan = parse(_perp_plan(leverage, trigger)).plan
    assert plan is not None
    rows = ["time,price.ETH,price.BTC,funding.binance.ETH"]
    eth, btc = Decimal(3400), Decimal(67800)
    for index in range(max(len(eth_moves), len(btc_moves))):
        if index < len(eth_moves):
            eth = max(Decimal(1), eth * (1 + Decimal(eth_moves[index]) / 2000)).quantize(CENT)
        if index < len(btc_moves):
            btc = max(Decimal(1), btc * (1 + Decimal(btc_moves[index]) / 2000)).quantize(CENT)
        rows.append(f"{index * 3_600_000},{eth},{btc},{funding if index % 2 else ''}")
    _same(plan, MARKET, read_series(("\n".join(rows) + "\n").encode(), "perps"))


# --- rates the books do not hold (apply_row's `live`) -------------------------------------------


@SETTINGS
@given(series(max_rows=25), st.sampled_from(["every 2h", "when price(ETH) < 3300",
                                             "when rate(weETH) > 1.0501",
                                             "when price(ETH) * 1 < 3300"]),
       st.booleans())
def test_property_rates_of_assets_not_held_agree(data, when, held):
    """weETH's rate grows (staking APR, or the series' `rate.weETH`) while the plan holds
    none; a trigger then stakes into it (a firing reads its rate and price), conditions name
    it or go through the evaluator. Every snapshot, part and the final market agree."""
    holdings = "wallet: 20 ETH, 100 weETH" if held else "wallet: 20 ETH"
    text = (f"plan p\nholdings {{ {holdings} }}\nphase start {{ assert 1 > 0 else \"x\" }}\n"
            f"trigger buy {when} {{\n  stake 1 ETH on etherfi -> weETH\n}}\n")
    plan = parse(text).plan
    assert plan is not None, text
    _same(plan, MARKET, data)


# --- snapshots as columns (results.Snapshots) ---------------------------------------------------


def _digits(snap) -> tuple:
    """A snapshot as its digits are written (repr tells 1.0 from 1.00, -0 from 0)."""
    return (snap.time, repr(snap.value), repr(snap.health), repr(snap.health_before),
            repr(snap.exposure), repr(sorted(snap.parts.items())))


@SETTINGS
@given(valid_plans(triggers=True), series(max_rows=25), health_triggers())
def test_property_snapshot_columns_read_back_every_digit(generated, data, guard):
    """Every snapshot the loop appends reads back from the columns with the same digits:
    the price part recomputed from the value change, shared health and exposure tables,
    parts kept only where not untouched."""
    from stratplan.interpreter.time import results
    kept: list[tuple] = []
    values: list[Decimal] = []
    append, repeat_last = results.Snapshots.append, results.Snapshots.repeat_last

    def recording(self, snap):
        kept.append(_digits(snap))
        values.append(snap.value)
        append(self, snap)

    def repeating(self, times, new_values):  # quiet rows (time/quiet.py)
        new_values = list(new_values)
        _, _, health, _, exposure, _ = kept[-1]
        for time, value in zip(times, new_values, strict=True):
            parts = dict.fromkeys(results.PARTS, results.ZERO)
            parts["price"] = results.EXACT.subtract(value, values[-1])
            kept.append((time, repr(value), health, health, exposure,
                         repr(sorted(parts.items()))))
            values.append(value)
        repeat_last(self, times, new_values)

    def extending(self, times, new_values, health, exposure, parts):
        # accruing rows (time/accruing.py): each step as `close_parts` would have made it
        for at, (time, value) in enumerate(zip(times, new_values, strict=True)):
            step = dict.fromkeys(results.PARTS, results.ZERO)
            rest = results.ZERO
            for name, column in parts.items():
                step[name] = column[at]
                if column[at]:
                    rest = results.EXACT.add(rest, column[at])
            step["price"] = results.EXACT.subtract(
                results.EXACT.subtract(value, values[-1]), rest)
            table = {venue: column[at] for venue, column in health.items()}
            exposed = {base: column[0] for base, column in exposure(at, at + 1).items()}
            kept.append(_digits(results.Snapshot(time, value, table, exposed, step, table)))
            values.append(value)
        extend(self, times, new_values, health, exposure, parts)

    extend = results.Snapshots.extend
    results.Snapshots.append = recording  # type: ignore[method-assign]
    results.Snapshots.repeat_last = repeating  # type: ignore[method-assign]
    results.Snapshots.extend = extending  # type: ignore[method-assign]
    try:
        plan = generated.model_copy(
            update={"triggers": (*generated.triggers, guard)})
        result = run_backtest(plan, MARKET, data)
    finally:
        results.Snapshots.append = append  # type: ignore[method-assign]
        results.Snapshots.repeat_last = repeat_last  # type: ignore[method-assign]
        results.Snapshots.extend = extend  # type: ignore[method-assign]
    assert [_digits(s) for s in result.snapshots] == kept
    assert len(result.snapshots) == len(kept)
    if kept:
        assert _digits(result.snapshots[-1]) == kept[-1]


def test_a_compiled_market_reading_beyond_1e30_is_sp110_as_evaluated():
    """weETH's price is ETH's (1e25) times its rate: 1.05e25, then 1e31 once the rate
    column says 1e6. The evaluator refuses `price(weETH)` beyond 1e30 (SP110); the
    compiled condition reads it through the same check (`evaluate.ranged`), so both paths
    record the same failures from that row on (found by an adversarial run)."""
    plan = parse("plan big \"x\"\nholdings { wallet: 12 WETH, 1 ETH, 500 USDC }\n"
                 "phase entry {\n  supply 10 WETH to aave\n  borrow 1000 USDC from aave\n}\n"
                 "trigger hi when price(weETH) < 1 {\n  repay 1 USDC to aave\n}\n").plan
    rows = ["time,price.ETH,rate.weETH,borrow.aave.USDC"]
    rows += [f"2024-01-01T00:0{i}:00Z,1E+25,{'1E+6' if i > 1 else '1.05'},0.05"
             for i in range(5)]
    data = read_series(("\n".join(rows) + "\n").encode(), "huge")
    _same(plan, MARKET, data)
    fast = run_backtest(plan, MARKET, data)
    assert [(e.time, e.code) for e in fast.events if e.kind == "failure"] == \
        [(1_704_067_200_000 + row * 60_000, "SP110") for row in (2, 3, 4)]
