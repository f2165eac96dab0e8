"""The backtest's fast path (interpreter/readings.py, compiled `when` conditions, the
liquidation guard) gives the same results, to the last digit, as the plain definitions
(`run_backtest(..., reference=True)`: executors/accounts.py and the evaluator at every step).
docs/performance.md explains each fast path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratplan.dsl.models import Assert, BoolOp, Call, Compare, NameRef, Not, Number, Trigger
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
    snaps = [(s.time, s.value, s.health, s.exposure, s.parts) for s in result.snapshots]
    events = [(e.time, e.kind, e.name, e.node, e.line, e.code, e.message, e.loss_usd)
              for e in result.events]
    notices = [(n.code, n.message) for n in result.notices]
    return snaps, events, notices, result.firings, result.pnl, result.value_end


def _same(plan, market, data) -> None:
    fast = run_backtest(plan, market, data)
    plain = run_backtest(plan, market, data, reference=True)
    assert _everything(fast) == _everything(plain)


@st.composite
def health_triggers(draw) -> Trigger:
    """A `when` trigger on health(aave), in the shapes compile_condition handles (and one it
    does not: a comparison with a price), with a body that always succeeds."""
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


@SETTINGS
@given(valid_plans(triggers=True), series(max_rows=25), health_triggers())
def test_property_fast_and_plain_backtests_agree(plan, data, guard):
    _same(plan, MARKET, data)
    _same(plan.model_copy(update={"triggers": (*plan.triggers, guard)}), MARKET, data)


def test_the_leveraged_example_agrees_over_the_shipped_series_and_a_depeg():
    plan = parse((ROOT / "examples" / "leveraged_restaking_over_time.plan").read_text()).plan
    assert plan is not None
    shipped = load_series(ROOT / "examples" / "data" / "synthetic_8h.csv")
    _same(plan, MARKET, shipped.slice(None, shipped.times[0] + 60 * 86_400_000))
    # a depeg deep enough to fire the deleverage trigger and then liquidate
    rows = ["time,price.ETH,price.weETH,supply.aave.weETH,borrow.aave.WETH"]
    prices = ["3570", "3500", "3300", "3100", "2900", "2700", "2500", "2600", "3570"]
    for day, price in enumerate(prices):
        rows.append(f"{day * 86_400_000},3400,{price},0.001,0.03")
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
        _compare("<", _health(), level), _compare(">", level, _health()),
        _compare("==", _health(), _health()), _compare("<", _num("1"), _num("2")),
        Not(operand=_compare(">=", _health(), level), span=SPAN),
        BoolOp(op="or", left=_compare("<", _health(), _num("1")),
               right=_compare(">", _health(), _num("1.3")), span=SPAN),
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
    # shapes it leaves to the evaluator
    price = Call(func="price", args=(AssetArg(symbol="ETH", span=SPAN),), span=SPAN)
    assert compile_condition(_compare("<", price, level), scope) is None
    assert compile_condition(_compare("<", _health("binance"), level), scope) is None


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
