"""`run --executor evm` on the built-in market: one transaction per atomic block, the
receipt's gas, Aave's error names, the ledger holding the chain's amounts."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from stratplan.dsl.parser import parse
from stratplan.executors.evm.executor import EvmExecutor
from stratplan.executors.market import default_market
from stratplan.interpreter.chain.run import run_on_chain
from stratplan.interpreter.run import run_plan
from tests.conftest import CONFORMANCE

LEVER = """plan lever
holdings {{ wallet: 10 ETH }}
phase entry {{
  atomic loop via instadapp {{
    flash borrow {flash} WETH from balancer
    unwrap all WETH
    stake all ETH on etherfi -> weETH
    supply all weETH to aave
    borrow {flash} WETH from aave
    flash repay all WETH to balancer
  }}
}}
"""


def _run(text: str, world: Any) -> Any:
    plan = parse(text).plan
    assert plan is not None
    return run_on_chain(plan, default_market(), EvmExecutor(world.aave, world=world))


def test_the_flash_loan_entry_is_one_transaction_with_the_models_health(fresh36: Any) -> None:
    text = (CONFORMANCE / "clean_atomic_flash.plan").read_text()
    chain = _run(text, fresh36)
    model = run_plan(parse(text).plan, default_market()).report  # type: ignore[arg-type]
    report = chain.report
    assert report["status"] == "ok"
    (tx,) = report["chain"]["transactions"]  # the block is one transaction, the assert none
    assert tx["node"] == "entry/leverage" and tx["status"] == "ok"
    assert re.fullmatch(r"0x[0-9a-f]{64}", tx["hash"])
    # Gas from the receipt: more than a plain transfer, not the model's table (666,000).
    assert 200_000 < tx["gas_used"] < 1_000_000 and tx["gas_used"] != 666_000
    assert report["gas"]["units"] == tx["gas_used"]
    assert report["steps"][0]["gas_eth"] == str(Decimal(tx["gas_used"]) * Decimal("2E-8"))
    # Collateral: 62.98668 ETH staked at 1.05 (59.98731428571428571428...) on the model's
    # side; the chain holds it to the wei (18 decimals, rounded down).
    assert report["collateral"]["aave"]["weETH"] == "59.987314285714285714"
    assert model["collateral"]["aave"]["weETH"].startswith("59.987314285714285714")
    assert report["debt"] == {"aave": {"WETH": "48"}}
    # Health 59.987314285714285714 * 3570 * 0.95 / (48 * 3400) = 1.24661137499999999999...
    # Aave's getUserAccountData agrees to its 8-decimal base currency (about 1e-13 here).
    chain_health = Decimal(tx["health"]["aave"]["chain"])
    model_health = Decimal(tx["health"]["aave"]["model"])
    assert abs(model_health - Decimal("1.246611375")) < Decimal("1e-19")
    assert abs(chain_health - model_health) / model_health < Decimal("1e-12")
    differences = [d["difference"] for d in report["chain"]["differences"]]
    assert differences == [f"gas: the chain used {tx['gas_used']}, the model 666000"]


def test_an_over_levered_entry_reverts_with_aaves_error(fresh36: Any) -> None:
    # 160 ETH staked: 152.38095 weETH worth 544,000 USD; 150 WETH (510,000 USD) is more
    # than the e-mode LTV allows (93%: 505,920 USD), though health stays above 1 (1.0133).
    before = fresh36.books()
    chain = _run(LEVER.format(flash=150), fresh36)
    failure = chain.report["failure"]
    assert chain.report["status"] == "failed"
    assert failure["code"] == "SP305" and failure["line"] == 9  # the borrow
    assert "CollateralCannotCoverNewBorrow" in failure["message"]
    assert "exceeds aave's LTV limit" in failure["message"]
    (tx,) = chain.report["chain"]["transactions"]
    assert tx["status"] == "reverted" and tx["gas_used"] > 21_000
    assert chain.report["chain"]["differences"][0]["difference"].startswith("gas:")
    # Nothing stayed on the chain but the gas; the ledger shows only the gas paid.
    after = fresh36.books()
    assert {k: v for k, v in after.items() if k[2] != "ETH"} == \
        {k: v for k, v in before.items() if k[2] != "ETH"}
    assert chain.report["balances"]["wallet"]["ETH"] == \
        str(Decimal(10) - Decimal(tx["gas_used"]) * Decimal("2E-8"))


def test_a_levered_entry_within_the_ltv_commits(fresh36: Any) -> None:
    chain = _run(LEVER.format(flash=90), fresh36)
    assert chain.report["status"] == "ok"
    # 10 ETH less the gas the model charges up front (666,000 at 20 gwei: 0.01332 ETH),
    # plus 90 unwrapped, staked at 1.05: 99.98668 / 1.05 = 95.2254095238095238095... weETH.
    assert chain.report["collateral"]["aave"]["weETH"] == "95.225409523809523809"
    assert chain.report["debt"]["aave"]["WETH"] == "90"
    # On the chain too: getUserAccountData's collateral is 95.2254...·3570 USD, in 8
    # decimals rounded down (339,954.712 USD exactly would be 33,995,471,200,000).
    data = fresh36.pools["aave"].account(fresh36.wallet)
    assert data[0] == 33_995_471_199_999
    assert data[1] == 30_600_000_000_000  # 90 · 3400
    assert fresh36.pools["aave"].emode_of(fresh36.wallet) == 1  # set by the executor


def test_v30_runs_the_same_entry(world30: Any) -> None:
    snapshot = world30.chain.snapshot()
    try:
        chain = _run((CONFORMANCE / "clean_atomic_flash.plan").read_text(), world30)
        assert chain.report["status"] == "ok"
        assert chain.report["collateral"]["aave"]["weETH"] == "59.987314285714285714"
    finally:
        world30.chain.revert(snapshot)
    snapshot = world30.chain.snapshot()
    try:
        failed = _run(LEVER.format(flash=150), world30)
        # v3.0 checks the LTV before the borrow and names the error by its number ('36').
        assert failed.report["failure"]["code"] == "SP305"
        assert "COLLATERAL_CANNOT_COVER_NEW_BORROW" in failed.report["failure"]["message"]
    finally:
        world30.chain.revert(snapshot)


def test_an_atomic_operation_outside_a_transaction_is_refused(world36: Any) -> None:
    from stratplan.executors.errors import ExecutionError
    from stratplan.executors.protocol import Order
    from stratplan.interpreter.monitor import PositionMonitor

    plan = parse("plan x\nholdings { wallet: 1 ETH }\nphase p {\n  wrap 1 ETH\n}\n").plan
    assert plan is not None
    op = plan.phases[0].body[0]
    executor = EvmExecutor(world36.aave, world=world36)
    try:
        executor.apply(Order(op, Decimal(1), in_transaction=True), PositionMonitor(),
                       world36.market)
    except ExecutionError as exc:
        assert exc.code == "SP206" and "--executor evm" in exc.message
    else:
        raise AssertionError("an operation of an atomic block ran alone")


def test_flash_loans_repaid_out_of_order_cannot_be_one_transaction(fresh36: Any) -> None:
    # The model lets a block repay its loans in any order; on chain each loan is repaid
    # when its own callback returns, so the Balancer loan cannot be repaid inside Aave's.
    text = """plan crossing
holdings { wallet: 1 ETH, 1 WETH }
phase p {
  atomic x via instadapp {
    flash borrow 10 WETH from balancer
    flash borrow 10 WETH from aave
    flash repay all WETH to balancer
    flash repay all WETH to aave
  }
}
"""
    plan = parse(text).plan
    assert plan is not None
    assert run_plan(plan, default_market()).report["status"] == "ok"  # the model allows it
    chain = _run(text, fresh36)
    failure = chain.report["failure"]
    assert failure["code"] == "SP206" and failure["line"] == 7
    assert "still open" in failure["message"]
    (tx,) = chain.report["chain"]["transactions"]
    assert tx["status"] == "not sent" and tx["gas_used"] == 0
    (difference,) = chain.report["chain"]["differences"]
    assert difference["difference"].startswith("verdict: operation 3 is one the model allows")


def test_nested_flash_loans_are_one_transaction(fresh36: Any) -> None:
    # Repaid innermost first, the same two loans are one transaction: Aave's premium on 10
    # WETH is 5 bps (0.005 WETH), Balancer's fee is 0.
    text = """plan nested
holdings { wallet: 1 ETH, 1 WETH }
phase p {
  atomic x via instadapp {
    flash borrow 10 WETH from balancer
    flash borrow 10 WETH from aave
    flash repay all WETH to aave
    flash repay all WETH to balancer
  }
}
"""
    chain = _run(text, fresh36)
    assert chain.report["status"] == "ok"
    assert chain.report["balances"]["wallet"]["WETH"] == "0.995"
    assert [d["difference"][:4] for d in chain.report["chain"]["differences"]] == ["gas:"]


def test_every_transaction_starts_cold(fresh36: Any) -> None:
    # The same transaction three times pays the same gas: each starts with every account
    # and slot cold (EIP-2929), as a block applies transactions. titanoboa keeps them warm
    # from one call to the next: without Chain._cool the second and third would pay 4,000
    # gas less here (two slots read warm at 100 instead of 2,100).
    weth = fresh36.tokens["WETH"]
    key = fresh36.chain.key("cold test")
    weth.call("mint", key.address, 10**19, sender=fresh36.admin)
    data = weth.calldata("withdraw", 10**18)
    receipts = [fresh36.chain.send(key, weth.address, data) for _ in range(3)]
    assert all(r.ok for r in receipts)
    assert receipts[0].gas_used == receipts[1].gas_used == receipts[2].gas_used > 21_000
    assert len({r.tx_hash for r in receipts}) == 3  # three transactions, three nonces
