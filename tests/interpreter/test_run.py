"""Running plans: the hand-checked numbers of LANGUAGE.md, reports, and failures half-way."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from stratplan.dsl import parse
from stratplan.dsl.decimals import EXACT, arithmetic
from stratplan.executors.market import default_market
from stratplan.executors.registry import discover
from stratplan.interpreter.dag import build_dag
from stratplan.interpreter.engine import Engine, run_sync
from stratplan.interpreter.run import run_plan
from tests.conftest import CONFORMANCE, EXAMPLES


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
    # Value falls by the gas: 15 ETH * 3400 = 51,000 -> 51,000 - 45.288, up to the weETH
    # amount's own rounding (62.98668 / 1.05 kept to 40 digits), which the value, summed
    # exactly (accounts.portfolio_value), carries: collateral * 3570 - 48 * 3400.
    assert report["value_usd"]["start"] == "51000"
    exact = EXACT.subtract(EXACT.multiply(collateral, 3570), 48 * 3400)
    with arithmetic():
        assert Decimal(report["value_usd"]["end"]) == +exact
    assert abs(exact - (51_000 - Decimal("45.288"))) < Decimal("1e-34")
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


@pytest.mark.parametrize("concurrent", [True, False])
def test_a_run_that_starts_without_an_event_loop_and_needs_one_half_way_agrees(concurrent):
    """`run_sync` drives the immediate nodes without asyncio and starts the loop at the
    first awaited one: the same report as immediate executors and as `asyncio.run`."""
    text = (CONFORMANCE / "clean_btc_basis.plan").read_text()
    # The transfers run immediately, then the first trade needs the loop.
    mixed = {f: _AwaitOnly(e) if f == "cex_trade" else e for f, e in discover().items()}
    immediate = _run(text, concurrent=concurrent)
    half = _run(text, concurrent=concurrent, executors=mixed)
    assert half.report == immediate.report
    assert half.engine.monitor.snapshot() == immediate.engine.monitor.snapshot()
    plan = parse(text).plan
    assert plan is not None
    with arithmetic():
        engine = Engine(plan, default_market(), mixed)
        dag = build_dag(plan, engine.scope)
        plain = asyncio.run(engine.run_concurrent(dag) if concurrent
                            else engine.run_sequential(dag.nodes))
    assert [tuple(step) for step in plain.steps] == [tuple(step) for step in half.outcome.steps]


def test_run_sync_returns_what_a_loop_free_coroutine_returns_and_refuses_a_foreign_await():
    async def immediate():
        return 42

    async def foreign():
        await asyncio.sleep(0)  # suspends without asking for the loop first

    assert run_sync(immediate()) == 42
    with pytest.raises(RuntimeError, match="outside an event loop"):
        run_sync(foreign())


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


# --- issue 12: venues as they really work (LANGUAGE.md v2 sections 4 and 7) -------------------


def _example(name: str):
    return _run((EXAMPLES / name).read_text())


def test_btc_basis_example_received_asset_fees_exposure_margins_and_liquidation_prices():
    with arithmetic():
        report = _example("btc_basis.plan").report
        assert report["status"] == "ok"
        fee = Decimal("0.0004")
        btc = {"binance": Decimal("0.44"), "bybit": Decimal("0.33"), "okx": Decimal("0.33")}
        deposit = {"binance": Decimal(40_000), "bybit": Decimal(30_000), "okx": Decimal(30_000)}
        for venue, amount in btc.items():
            balances = report["balances"][venue]
            # Spot buy: the fee is taken from the BTC received (Binance, Bybit, OKX).
            assert Decimal(balances["BTC"]) == amount * (1 - fee)
            # Perp sell at 3x: initial margin = notional / 3, fee = notional * 4 bps in USDT.
            notional = amount * 67_800
            assert Decimal(report["margin"][venue]["USDT"]) == notional / 3
            assert Decimal(balances["USDT"]) == deposit[venue] - notional - notional / 3 \
                - notional * fee
            perp = report["perps"][venue]["BTC"]
            assert Decimal(perp["size"]) == -amount
            assert Decimal(perp["entry_price"]) == Decimal(perp["mark_price"]) == 67_800
            assert Decimal(perp["unrealised_pnl"]) == 0
            assert Decimal(perp["margin"]) == notional / 3
            assert Decimal(perp["leverage"]) == 3
            # A short is liquidated when margin + size * (P - entry) = 0.5% * |size| * P:
            # P = (entry + margin / |size|) / (1 + 0.005) = 67,800 * (1 + 1/3) / 1.005.
            liquidation = (67_800 + (notional / 3) / amount) / Decimal("1.005")
            assert Decimal(perp["liquidation_price"]) == liquidation
            assert abs(liquidation - Decimal("89950.2488")) < Decimal("0.0001")
        # Exposure: 1.1 * (1 - 0.0004) BTC held, 1.1 BTC short.
        assert Decimal(report["exposure"]["BTC"]) == Decimal("1.1") * (1 - fee) - Decimal("1.1")
        # USDT exposure counts the posted margin, 1.1 * 67,800 / 3 = 24,860, besides the
        # balances left at the three venues.
        left = sum(Decimal(report["balances"][v]["USDT"]) for v in btc)
        assert Decimal(report["exposure"]["USDT"]) == left + Decimal("1.1") * 67_800 / 3
        # Fees: 4 bps of 1.1 BTC on spot (paid in BTC) and on the perps (paid in USDT).
        assert Decimal(report["fees_usd"]) == 2 * Decimal("1.1") * 67_800 * fee
        assert report["slippage_usd"] == "0"
        # Carry: three shorts receive 0.01% of their notional every 8 hours, 1,095 times a
        # year (31,536,000 s / 28,800 s).
        funding = Decimal("1.1") * 67_800 * Decimal("0.0001") * 1095
        assert Decimal(report["carry"]["funding_usd"]) == funding == Decimal("8166.51")
        assert Decimal(report["carry"]["total_usd"]) == funding
        end = Decimal(report["value_usd"]["end"])
        assert Decimal(report["carry"]["apr"]) == funding / end


def test_flash_example_uses_the_eth_emode_and_reports_the_weeth_liquidation_price():
    with arithmetic():
        report = _run((CONFORMANCE / "clean_atomic_flash.plan").read_text()).report
        weeth = (Decimal(15) - Decimal("0.01332") + 48) / Decimal("1.05")
        aave = report["lending"]["aave"]
        # Everything borrowed (WETH) is in the eth category: weETH counts at 93% / 95%.
        assert aave["emode"] == "eth"
        health = weeth * 3570 * Decimal("0.95") / (48 * 3400)
        assert Decimal(aave["health"]) == Decimal(report["health"]["aave"]) == health
        assert abs(health - Decimal("1.246611375")) < Decimal("1e-9")
        # Still borrowable under the e-mode: 93% of the collateral less the debt.
        assert Decimal(aave["borrow_capacity_usd"]) == weeth * 3570 * Decimal("0.93") - 48 * 3400
        # weETH price, WETH fixed, at which health = 1: 48 * 3,400 / (collateral * 0.95).
        liquidation = Decimal(48 * 3400) / (weeth * Decimal("0.95"))
        assert Decimal(aave["liquidation_price"]["weETH"]) == liquidation
        assert abs(liquidation - Decimal("2863.7634")) < Decimal("0.0001")
        # Leverage of the lending position: collateral / (collateral - debt).
        collateral = weeth * 3570
        assert Decimal(aave["leverage"]) == collateral / (collateral - 48 * 3400)


def test_sp305_outside_emode_refuses_25000_usdt_at_weeths_own_ltv():
    with arithmetic():
        report = _run((CONFORMANCE / "sp305_outside_emode.plan").read_text()).report
        failure = report["failure"]
        assert (failure["code"], failure["line"]) == ("SP305", 7)
        # 9 ETH staked at 1.05 = 8.5714... weETH = 30,600 USD. USDT is outside the eth
        # category, so weETH counts at its own 72.5%: 22,185 USDT at most.
        collateral_usd = Decimal(9) / Decimal("1.05") * 3570
        own = collateral_usd * Decimal("0.725")
        assert own == 22_185 < 25_000
        assert collateral_usd * Decimal("0.93") > 25_000  # the e-mode LTV would have let it
        assert "at most 22185 USDT more" in failure["message"]
        assert "USDT is in no e-mode category" in failure["message"]
        assert report["debt"] == {} and report["collateral"] == {}  # the block rolled back


def test_borrowing_outside_the_category_drops_the_whole_account_to_own_ltvs():
    text = ("plan t\nholdings { wallet: 12 ETH }\nphase p {\n  atomic a via instadapp {\n"
            "    stake 10.5 ETH on etherfi -> weETH\n    supply all weETH to aave\n"
            "    borrow 5 WETH from aave\n    borrow 1_000 USDT from aave\n  }\n}\n")
    with arithmetic():
        report = _run(text).report
        assert report["status"] == "ok"
        aave = report["lending"]["aave"]
        assert aave["emode"] is None  # WETH and USDT are not both in a category
        # 10 weETH = 35,700 USD at weETH's own 75% threshold, against 5 * 3,400 + 1,000.
        assert Decimal(aave["health"]) == Decimal(35_700) * Decimal("0.75") / (5 * 3400 + 1000)
        assert Decimal(aave["borrow_capacity_usd"]) == \
            Decimal(35_700) * Decimal("0.725") - (5 * 3400 + 1000)


def test_carry_of_the_leveraged_example_at_the_default_rates():
    with arithmetic():
        report = _example("leveraged_restaking_atomic.plan").report
        assert report["status"] == "ok"
        # 15.2 ETH less the gas of the block, plus 48 flash-borrowed; 63 ETH staked at 1.05.
        weeth = Decimal(63) / Decimal("1.05")
        assert Decimal(report["collateral"]["aave"]["weETH"]) == weeth == 60
        collateral_usd, debt_usd = weeth * 3570, Decimal(48 * 3400)
        hedge_notional = 2 * Decimal("7.5") * 3400  # two 7.5 ETH shorts
        carry = report["carry"]
        # Funding: the shorts receive 0.01% every 8 hours, 1,095 times a year.
        assert Decimal(carry["funding_usd"]) == hedge_notional * Decimal("0.0001") * 1095 \
            == Decimal("5584.5")
        # Supply: weETH collateral earns 0.05% APR; borrow: WETH costs 2.5% APR.
        assert Decimal(carry["supply_usd"]) == collateral_usd * Decimal("0.0005") \
            == Decimal("107.1")
        assert Decimal(carry["borrow_usd"]) == -debt_usd * Decimal("0.025") == Decimal(-4080)
        # Staking: weETH's rate grows 3% a year.
        assert Decimal(carry["staking_usd"]) == collateral_usd * Decimal("0.03") \
            == Decimal(6426)
        total = Decimal("5584.5") + Decimal("107.1") - 4080 + 6426
        assert Decimal(carry["total_usd"]) == total == Decimal("8037.6")
        end = Decimal(report["value_usd"]["end"])
        assert Decimal(carry["apr"]) == total / end
        assert abs(Decimal(carry["apr"]) - Decimal("0.1155")) < Decimal("0.0001")
        # Each hedge: 3x, liquidated when ETH rises to (3,400 + 3,400 / 3) / 1.005.
        for venue in ("binance", "bybit"):
            perp = report["perps"][venue]["ETH"]
            assert Decimal(perp["leverage"]) == 3
            assert Decimal(perp["liquidation_price"]) == \
                (3400 + Decimal(3400) / 3) / Decimal("1.005")
        # Each 9,000 USDT deposit: 8,500 posted as margin, 10.2 paid as fee (4 bps of 25,500).
        for venue in ("binance", "bybit"):
            assert Decimal(report["balances"][venue]["USDT"]) == 9000 - 8500 - Decimal("10.2")
        # The USDT posted as margin is USDT exposure: 2 * (489.8 + 8,500).
        assert Decimal(report["exposure"]["USDT"]) == 2 * (Decimal("489.8") + 8500)


def test_v2_state_functions_read_what_the_report_shows():
    text = """plan fns
holdings { wallet: 100_000 USDT, 15 ETH }
phase a {
  transfer 20_000 USDT from wallet to binance
  perp sell 1 BTC/USDT on binance leverage 5x
  atomic lever via instadapp {
    stake 10.5 ETH on etherfi -> weETH
    supply all weETH to aave
    borrow 7 WETH from aave
  }
  assert entry_price(binance, BTC) == 67_800
  assert liquidation_price(binance, BTC) == (67_800 + 67_800 / 5) / 1.005
  assert liquidation_price(aave, weETH) == 7 * 3400 / (10 * 0.95)
  assert liquidation_price(aave, WETH) == 0       # no WETH collateral: none
  assert liquidation_price(okx, BTC) == 0         # no position: none
  assert funding(binance, BTC) == 0.01% and rate(weETH) == 1.05
  assert supply_rate(aave, weETH) == 5bps and borrow_rate(aave, WETH) == 2.5%
  assert exposure(USDT) == 100_000 - 67_800 * 0.0004  # margin counts as USDT
  assert value() > 150_000
}
"""
    with arithmetic():
        result = _run(text)
        report = result.report
        assert report["status"] == "ok", report["failure"]
        from stratplan.executors.accounts import portfolio_value
        from stratplan.interpreter.evaluate import Scope, evaluate
        scope = Scope({}, {}, default_market(), result.engine.monitor)
        value = evaluate(parse("plan p\nlet v = value()\nphase a { wrap 1 ETH }").plan.lets[0].value,
                         scope)
        assert value == portfolio_value(result.engine.monitor, default_market()) == \
            Decimal(report["value_usd"]["end"])
        assert Decimal(report["perps"]["binance"]["BTC"]["liquidation_price"]) == \
            (67_800 + Decimal(67_800) / 5) / Decimal("1.005")


@pytest.mark.parametrize("condition, message", [
    ("entry_price(binance, weETH) == 0", "binance lists no weETH perp"),
    ("liquidation_price(okx, USDC) == 0", "okx lists no USDC perp"),
    ("liquidation_price(aave, BTC) == 0", "aave does not take BTC as collateral"),
    ("funding(bybit, USDT) == 0", "bybit lists no USDT perp"),
    ("supply_rate(aave, BTC) == 0", "aave does not take BTC"),
    ("borrow_rate(aave, weETH) == 0", "aave does not lend weETH"),
])
def test_v2_state_functions_refuse_what_the_venue_does_not_list(condition, message):
    report = _run(f"plan t\nholdings {{ wallet: 1 ETH }}\nphase p {{\n  assert {condition}\n}}\n"
                  ).report
    assert (report["failure"]["code"], report["failure"]["line"]) == ("SP103", 4)
    assert message in report["failure"]["message"]
