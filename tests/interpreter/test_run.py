"""Running plans: the hand-checked numbers of LANGUAGE.md, reports, and failures half-way."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from stratplan.dsl import parse
from stratplan.dsl.decimals import arithmetic
from stratplan.executors.market import default_market
from stratplan.executors.registry import discover
from stratplan.interpreter.dag import build_dag
from stratplan.interpreter.engine import Engine
from stratplan.interpreter.run import run_plan

from tests.conftest import CONFORMANCE


def _run(text: str, **kwargs):
    plan = parse(text).plan
    assert plan is not None
    return run_plan(plan, default_market(), **kwargs)


def test_clean_atomic_flash_numbers():
    with arithmetic():  # the run computes with 40 digits; so does the arithmetic below
        _clean_atomic_flash_numbers()


def _clean_atomic_flash_numbers():
    result = _run((CONFORMANCE / "clean_atomic_flash.plan").read_text())
    report = result.report
    assert report["status"] == "ok"
    # Gas: 21,000 base + flash borrow 60,000 + unwrap 35,000 + stake 90,000 + supply 180,000
    #      + borrow 250,000 + flash repay 30,000 = 666,000 units at 20 gwei = 0.01332 ETH.
    assert report["gas"]["units"] == 21_000 + 60_000 + 35_000 + 90_000 + 180_000 + 250_000 + 30_000
    assert Decimal(report["gas"]["eth"]) == Decimal(666_000) * 20 / 10**9 == Decimal("0.01332")
    assert Decimal(report["gas"]["usd"]) == Decimal("0.01332") * 3400
    # Staked: (15 - 0.01332 gas + 48 unwrapped) ETH / 1.05 = 59.98731428... weETH.
    collateral = Decimal(report["collateral"]["aave"]["weETH"])
    assert collateral == (Decimal(15) - Decimal("0.01332") + 48) / Decimal("1.05")
    assert abs(collateral - Decimal("59.9873")) < Decimal("0.0001")
    assert report["debt"] == {"aave": {"WETH": "48"}}
    # Health = 59.9873... * 3570 * 0.95 / (48 * 3400) = 1.246611375.
    health = Decimal(report["health"]["aave"])
    assert health == collateral * 3570 * Decimal("0.95") / (48 * 3400)
    assert abs(health - Decimal("1.2466")) < Decimal("0.0001")
    # Value falls by exactly the gas: 15 ETH * 3400 = 51,000 -> 51,000 - 45.288.
    assert report["value_usd"] == {"start": "51000", "end": "50954.712"}
    assert report["balances"] == {} and report["fees_usd"] == "0"
    assert [(s["node"], s["line"], s["gas_eth"]) for s in report["steps"]] == \
        [("entry/leverage", 8, "0.01332"), ("entry/1", 16, "0")]


def test_clean_btc_basis_numbers():
    report = _run((CONFORMANCE / "clean_btc_basis.plan").read_text()).report
    assert report["status"] == "ok"
    # Spot fees come out of the BTC received: 1.1 · (1 - 0.0004) BTC held, 1.1 BTC short.
    assert Decimal(report["exposure"]["BTC"]) == Decimal("1.1") * (1 - Decimal("0.0004")) - \
        Decimal("1.1")
    positions = {v: Decimal(p["BTC"]) for v, p in report["positions"].items()}
    assert positions == {"binance": Decimal("-0.44"), "bybit": Decimal("-0.33"),
                         "okx": Decimal("-0.33")}
    for venue, size in positions.items():
        # Initial margin = notional / default leverage 3 = |size| * 67,800 / 3.
        notional = abs(size) * 67_800
        assert Decimal(report["margin"][venue]["USDT"]) == notional / 3
    # Binance: 40,000 - 0.44 * 67,800 (spot) - 9,944 margin - 11.9328 perp fee.
    spot_cost = Decimal("0.44") * 67_800
    perp_fee = Decimal("0.44") * 67_800 * Decimal("0.0004")
    assert Decimal(report["balances"]["binance"]["USDT"]) == \
        40_000 - spot_cost - Decimal(9944) - perp_fee
    # Three wallet transfers pay (21,000 + 65,000) gas each at 20 gwei.
    assert Decimal(report["gas"]["eth"]) == 3 * Decimal(86_000) * 20 / 10**9


def test_failure_half_way_names_node_line_and_completed_nodes():
    text = ("plan half\nholdings { wallet: 10_000 USDT, 1 ETH }\n"
            "phase a {\n  transfer 4_000 USDT from wallet to binance\n}\n"
            "phase b {\n  transfer 4_000 USDT from wallet to okx\n"
            "  transfer 4_000 USDT from wallet to bybit\n}\n"
            "phase c {\n  transfer 1 USDT from wallet to okx\n}\n")
    result = _run(text)
    report = result.report
    assert report["status"] == "failed"
    assert report["failed_node"] == "b/1"
    assert report["failure"]["line"] == 8 and report["failure"]["code"] == "SP300"
    assert report["completed"] == ["a/0", "b/0"]
    assert report["not_run"] == ["c/0"]
    assert [s["status"] for s in report["steps"]] == ["ok", "ok", "failed"]


def test_failed_atomic_block_restores_state_but_keeps_gas():
    text = ("plan t\nholdings { wallet: 11 ETH }\nphase p {\n  atomic lever {\n"
            "    stake 10 ETH on etherfi -> weETH\n    supply all weETH to aave\n"
            "    borrow 9.5 WETH from aave\n  }\n}\n")
    result = _run(text)
    assert result.report["failure"]["code"] == "SP305"
    assert result.report["failure"]["line"] == 7
    gas = Decimal(21_000 + 90_000 + 180_000 + 250_000) * 20 / 10**9
    assert result.report["balances"] == {"wallet": {"ETH": str(Decimal(11) - gas)}}
    assert result.report["collateral"] == {} and result.report["debt"] == {}
    assert Decimal(result.report["gas"]["eth"]) == gas


def test_sequential_and_concurrent_dispatch_agree():
    text = (CONFORMANCE / "clean_btc_basis.plan").read_text()
    concurrent = _run(text).engine.monitor.snapshot()
    sequential = _run(text, concurrent=False).engine.monitor.snapshot()
    assert concurrent == sequential


def test_assert_failure_stops_the_run_with_sp304():
    text = ("plan t\nholdings { wallet: 1 ETH }\nphase p {\n"
            "  assert balance(wallet, ETH) >= 2 else \"need two\"\n  wrap 0.5 ETH\n}\n")
    report = _run(text).report
    assert report["failure"]["code"] == "SP304"
    assert "need two" in report["failure"]["message"]
    assert report["not_run"] == ["p/1"]


class _AwaitOnly:
    """A built-in executor seen only through the coroutine of the protocol (no `apply`)."""

    def __init__(self, inner) -> None:
        self.inner, self.families = inner, inner.families

    async def execute(self, order, ledger, market):
        await asyncio.sleep(0)  # really yields to the event loop, as a live executor would
        return await self.inner.execute(order, ledger, market)


def test_awaited_executors_give_the_same_report_as_immediate_ones():
    for name in ("clean_btc_basis.plan", "clean_atomic_flash.plan"):
        text = (CONFORMANCE / name).read_text()
        immediate = _run(text)
        awaited = _run(text, executors={f: _AwaitOnly(e) for f, e in discover().items()})
        assert awaited.report == immediate.report, name
        assert awaited.engine.monitor.snapshot() == immediate.engine.monitor.snapshot()


def test_awaited_executor_failure_is_reported_like_an_immediate_one():
    text = ("plan half\nholdings { wallet: 10_000 USDT, 1 ETH }\n"
            "phase a {\n  transfer 4_000 USDT from wallet to okx\n"
            "  spot buy 1 BTC/USDT on okx\n  transfer 4_000 USDT from wallet to bybit\n}\n")
    immediate = _run(text).report
    awaited = _run(text, executors={f: _AwaitOnly(e) for f, e in discover().items()}).report
    assert immediate["failure"]["code"] == "SP300"
    assert awaited == immediate


def test_execute_now_refuses_a_node_whose_executor_must_be_awaited():
    text = "plan t\nholdings { wallet: 1 ETH }\nphase p {\n  wrap 0.5 ETH\n}\n"
    plan = parse(text).plan
    assert plan is not None
    executors = {f: _AwaitOnly(e) for f, e in discover().items()}
    engine = Engine(plan, default_market(), executors)
    node = build_dag(plan, engine.scope).nodes[0]
    with pytest.raises(ValueError, match="must be awaited"):
        engine.execute_now(node)
    assert asyncio.run(engine.execute(node)).status == "ok"


def test_a_wallet_that_cannot_pay_gas_fails_the_node_with_the_gas_message():
    text = ("plan t\nholdings { wallet: 0.001 ETH, 100 USDT }\nphase p {\n"
            "  transfer 10 USDT from wallet to binance\n}\n")
    result = _run(text)
    failure = result.report["failure"]
    # 86,000 units (a transfer from the wallet) at 20 gwei.
    assert failure["code"] == "SP300" and failure["line"] == 4
    assert failure["message"] == ("the wallet holds 0.001 ETH, the transaction needs "
                                  "0.00172 ETH of gas")
    assert result.report["balances"] == {"wallet": {"ETH": "0.001", "USDT": "100"}}
    assert result.report["gas"]["units"] == 0
