"""Executors against a position monitor: fees, margins, lending math, flash loans, plugins."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from stratplan.dsl import parse
from stratplan.executors.errors import ExecutionError
from stratplan.executors.ledger import Ledger
from stratplan.executors.market import default_market
from stratplan.executors.protocol import Executor, Options, Order
from stratplan.executors.registry import RegistryError, discover
from stratplan.interpreter.monitor import PositionMonitor
from stratplan.interpreter.run import run_plan

MARKET = default_market()


def _instr(text: str):
    plan = parse(f"plan p\nphase a {{ {text} }}").plan
    assert plan is not None, text
    return plan.phases[0].body[0]


def _do(text: str, monitor: PositionMonitor, amount=None, *, atomic: bool = False, **extra):
    instr = _instr(text)
    executors = discover()
    value = amount if amount is not None else (
        instr.amount.kind if instr.amount.kind in ("all", "max") else instr.amount.value)
    order = Order(instr, value, in_transaction=atomic, options=Options(), **extra)
    return asyncio.run(executors[instr.kind].execute(order, monitor, MARKET))


def test_monitor_implements_the_ledger_protocol():
    assert isinstance(PositionMonitor(), Ledger)
    for executor in discover().values():
        assert isinstance(executor, Executor)


def test_transfer_from_cex_pays_the_withdrawal_fee():
    monitor = PositionMonitor()
    monitor.seed("binance", "USDT", Decimal(100))
    _do("transfer 50 USDT from binance to wallet", monitor)
    assert monitor.get("balance", "wallet", "USDT") == Decimal(49)
    assert monitor.get("balance", "binance", "USDT") == Decimal(50)
    assert monitor.cost("fee") == Decimal(1)


def test_transfer_overdraw_is_sp300_and_changes_nothing():
    monitor = PositionMonitor()
    monitor.seed("wallet", "USDT", Decimal(10))
    with pytest.raises(ExecutionError) as error:
        _do("transfer 50 USDT from wallet to binance", monitor)
    assert error.value.code == "SP300"
    assert monitor.get("balance", "wallet", "USDT") == Decimal(10)


def test_spot_buy_and_sell_with_taker_fee_and_limits():
    monitor = PositionMonitor()
    monitor.seed("binance", "USDT", Decimal(10_000))
    _do("spot buy 1 ETH/USDT on binance", monitor)
    # The fee (4 bps) is taken from the ETH received, as Binance does: 1 · (1 - 0.0004) ETH
    # for 3,400 USDT; the fee is 0.0004 ETH = 1.36 USD.
    assert monitor.get("balance", "binance", "USDT") == 10_000 - Decimal(3400)
    assert monitor.get("balance", "binance", "ETH") == 1 - Decimal("0.0004")
    assert monitor.cost("fee") == Decimal("0.0004") * 3400
    _do("spot sell all ETH/USDT on binance", monitor)
    assert monitor.get("balance", "binance", "ETH") == 0
    # A sell takes its fee from the USDT received: 0.9996 · 3,400 · (1 - 0.0004).
    assert monitor.get("balance", "binance", "USDT") == \
        6_600 + Decimal("0.9996") * 3400 * (1 - Decimal("0.0004"))
    with pytest.raises(ExecutionError) as error:
        _do("spot buy 1 ETH/USDT on binance limit 3000", monitor, limit=Decimal(3000))
    assert error.value.code == "SP306"


def test_perp_margin_leverage_and_pro_rata_release():
    monitor = PositionMonitor()
    monitor.seed("okx", "USDT", Decimal(10_000))
    _do("perp sell 1 ETH/USDT on okx leverage 5x", monitor, leverage=Decimal(5))
    assert monitor.get("position", "okx", "ETH/USDT") == Decimal(-1)
    assert monitor.get("margin", "okx", "ETH/USDT") == Decimal(680)
    _do("perp buy 0.5 ETH/USDT on okx", monitor)
    assert monitor.get("position", "okx", "ETH/USDT") == Decimal("-0.5")
    assert monitor.get("margin", "okx", "ETH/USDT") == Decimal(340)
    with pytest.raises(ExecutionError) as error:
        _do("perp sell 1 ETH/USDT on okx leverage 25x", monitor, leverage=Decimal(25))
    assert error.value.code == "SP303"
    with pytest.raises(ExecutionError) as error:
        _do("perp sell 100 ETH/USDT on okx", monitor)
    assert error.value.code == "SP303"


def test_lending_ltv_health_and_max_borrow():
    monitor = PositionMonitor()
    monitor.seed("wallet", "weETH", Decimal(10))
    _do("supply all weETH to aave", monitor)
    assert monitor.get("collateral", "aave", "weETH") == Decimal(10)
    result = _do("borrow max WETH from aave", monitor)
    room = Decimal(10) * 3570 * Decimal("0.93") / 3400
    assert monitor.get("debt", "aave", "WETH") == room
    assert [code for code, _ in result.warnings] == ["SP302"]  # 0.95 / 0.93 < 1.05
    with pytest.raises(ExecutionError) as error:
        _do("borrow 1 WETH from aave", monitor)
    assert error.value.code == "SP305"
    with pytest.raises(ExecutionError) as error:
        _do("withdraw 1 weETH from aave", monitor)
    assert error.value.code == "SP301"


def test_repay_all_is_capped_by_the_wallet_and_the_debt():
    monitor = PositionMonitor()
    monitor.seed("wallet", "weETH", Decimal(10))
    _do("supply all weETH to aave", monitor)
    _do("borrow 5 WETH from aave", monitor)
    monitor.add("balance", "wallet", "WETH", Decimal(-2))
    _do("repay all WETH to aave", monitor)
    assert monitor.get("debt", "aave", "WETH") == Decimal(2)
    monitor.seed("wallet", "WETH", Decimal(10))
    _do("repay 7 WETH to aave", monitor)
    assert monitor.get("debt", "aave", "WETH") == 0
    assert monitor.get("balance", "wallet", "WETH") == Decimal(8)


def test_stake_swap_wrap():
    monitor = PositionMonitor()
    monitor.seed("wallet", "ETH", Decimal("10.5"))
    _do("stake 10.5 ETH on etherfi -> weETH", monitor)
    assert monitor.get("balance", "wallet", "weETH") == Decimal(10)
    _do("swap 10 weETH -> USDT on uniswap slippage 50bps", monitor, slippage=Decimal("0.005"))
    assert monitor.get("balance", "wallet", "USDT") == Decimal(35700) * (1 - Decimal("0.0055"))
    assert monitor.cost("slippage") == Decimal(35700) * Decimal("0.005")
    monitor.seed("wallet", "ETH", Decimal(1))
    _do("wrap all ETH", monitor)
    assert monitor.get("balance", "wallet", "WETH") == Decimal(1)


def test_flash_loans_need_a_transaction_and_carry_the_fee():
    monitor = PositionMonitor()
    with pytest.raises(ExecutionError) as error:
        _do("flash borrow 10 WETH from aave", monitor)
    assert error.value.code == "SP202"
    _do("flash borrow 10 WETH from aave", monitor, atomic=True)
    assert monitor.get("flash", "aave", "WETH") == Decimal("10.005")
    monitor.seed("wallet", "WETH", Decimal(1))
    _do("flash repay all WETH to aave", monitor, atomic=True)
    assert monitor.get("flash", "aave", "WETH") == 0
    assert monitor.get("balance", "wallet", "WETH") == Decimal("0.995")


def test_unstake_with_a_queue_cannot_be_atomic():
    monitor = PositionMonitor()
    monitor.seed("wallet", "weETH", Decimal(1))
    with pytest.raises(ExecutionError) as error:
        _do("unstake 1 weETH on etherfi -> ETH", monitor, atomic=True)
    assert error.value.code == "SP206"
    _do("unstake 1 weETH on etherfi -> ETH", monitor)
    assert monitor.get("balance", "wallet", "ETH") == Decimal("1.05")


@pytest.mark.parametrize("alone", [False, True])
def test_rollback_restores_every_book_and_cost(alone):
    monitor = PositionMonitor()
    monitor.seed("binance", "USDT", Decimal(10_000))
    before = monitor.snapshot()
    monitor.begin(alone=alone)
    _do("perp sell 1 ETH/USDT on binance", monitor)
    _do("spot buy 1 ETH/USDT on binance", monitor)
    assert monitor.snapshot() != before
    monitor.rollback()
    assert monitor.snapshot() == before
    monitor.begin(alone=alone)  # the log is gone: a new transaction starts clean
    _do("spot buy 1 ETH/USDT on binance", monitor)
    monitor.commit()
    monitor.begin(alone=alone)
    monitor.rollback()
    assert monitor.get("balance", "binance", "ETH") == 1 - Decimal("0.0004")  # fee in ETH


@pytest.mark.parametrize("alone", [False, True])
def test_gas_paid_inside_a_transaction_stays_paid_after_rollback(alone):
    monitor = PositionMonitor()
    monitor.seed("wallet", "ETH", Decimal(1))
    monitor.begin(alone=alone)
    monitor.pay_gas(21_000, Decimal("0.25"), Decimal(500))
    monitor.add("balance", "wallet", "ETH", Decimal("-0.5"))
    monitor.rollback()
    assert monitor.get("balance", "wallet", "ETH") == Decimal("0.75")
    assert (monitor.gas_units, monitor.gas_eth, monitor.gas_usd) == (21_000, Decimal("0.25"),
                                                                      Decimal(500))
    monitor.pay_gas(0, Decimal("0.75"), Decimal(0))  # exactly what is left: the entry goes
    assert monitor.books["balance"] == {}
    with pytest.raises(ExecutionError, match=r"needs 0\.1 ETH of gas"):
        monitor.pay_gas(1, Decimal("0.1"), Decimal(0))
    assert monitor.gas_units == 21_000  # a refused payment counts nothing


@pytest.mark.parametrize(("first", "second"), [(False, True), (True, False), (True, True)])
def test_transactions_do_not_nest_whichever_log_they_use(first, second):
    monitor = PositionMonitor()
    monitor.begin(alone=first)
    with pytest.raises(RuntimeError, match="do not nest"):
        monitor.begin(alone=second)
    monitor.rollback()


def test_a_plugin_executor_replaces_the_builtin_and_is_called(monkeypatch):
    from tests.executors.fake import RecordingCexExecutor
    points = [("recording", "tests.executors.fake:RecordingCexExecutor")]
    monkeypatch.setattr("stratplan.executors.registry.entry_point_values", lambda: points)
    RecordingCexExecutor.calls.clear()
    plan = parse("plan p\nphase a { spot buy 2 BTC/USDT on binance }").plan
    report = run_plan(plan, MARKET).report
    assert RecordingCexExecutor.calls == ["buy 2 BTC/USDT"]
    assert report["balances"] == {"binance": {"BTC": "2"}}


def test_a_broken_plugin_is_a_one_line_error(monkeypatch):
    points = [("broken", "no_such_module:Thing")]
    monkeypatch.setattr("stratplan.executors.registry.entry_point_values", lambda: points)
    with pytest.raises(RegistryError, match="broken"):
        discover()
