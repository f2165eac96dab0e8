"""A stateful test of the position monitor and executors against a simple reference model:
random sequences of operations and atomic blocks, with all-or-nothing checked each step."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from stratplan.dsl import parse
from stratplan.executors.market import default_market
from stratplan.executors.registry import discover
from stratplan.interpreter.dag import PlanNode
from stratplan.interpreter.engine import Engine, NodeFailed

MARKET = default_market()
GAS_PRICE = MARKET.gas.price_gwei / Decimal(10**9)
amounts = st.integers(1, 40_000).map(lambda n: Decimal(n) / 1000)


class MonitorMachine(RuleBasedStateMachine):
    """Wallet and CEX balances of ETH, WETH and USDT, tracked by hand beside the engine."""

    def __init__(self) -> None:
        super().__init__()
        plan = parse("plan m\nholdings { wallet: 20 ETH, 50_000 USDT }\nphase p { }").plan
        assert plan is not None
        self.engine = Engine(plan, MARKET, discover())
        self.model: dict[tuple[str, str], Decimal] = {
            ("wallet", "ETH"): Decimal(20), ("wallet", "USDT"): Decimal(50_000)}
        self.count = 0

    def _run(self, source: str) -> bool:
        plan = parse(f"plan m\nphase p {{\n{source}\n}}").plan
        assert plan is not None, source
        statement = plan.phases[0].body[0]
        self.count += 1
        try:
            asyncio.run(self.engine.execute(PlanNode(f"p/{self.count}", "p", self.count,
                                                     statement)))
        except NodeFailed:
            return False
        return True

    def _get(self, venue: str, asset: str) -> Decimal:
        return self.model.get((venue, asset), Decimal(0))

    def _move(self, venue: str, asset: str, delta: Decimal) -> None:
        self.model[(venue, asset)] = self._get(venue, asset) + delta

    def _gas(self, *ops: str) -> Decimal:
        units = MARKET.gas.base_tx + sum(MARKET.gas.ops[op] for op in ops)
        return Decimal(units) * GAS_PRICE

    @rule(amount=amounts, venue=st.sampled_from(["binance", "okx"]))
    def transfer_usdt(self, amount: Decimal, venue: str) -> None:
        amount *= 100
        gas = self._gas("transfer")
        ok = self._run(f"transfer {amount} USDT from wallet to {venue}")
        can_pay = self._get("wallet", "ETH") >= gas
        assert ok == (can_pay and self._get("wallet", "USDT") >= amount)
        if can_pay:
            self._move("wallet", "ETH", -gas)
        if ok:
            self._move("wallet", "USDT", -amount)
            self._move(venue, "USDT", amount)

    @rule(amount=amounts, operation=st.sampled_from(["wrap", "unwrap"]))
    def wrap_or_unwrap(self, amount: Decimal, operation: str) -> None:
        source, target = ("ETH", "WETH") if operation == "wrap" else ("WETH", "ETH")
        gas = self._gas(operation)
        ok = self._run(f"{operation} {amount} {source}")
        can_pay = self._get("wallet", "ETH") >= gas
        if can_pay:
            self._move("wallet", "ETH", -gas)
        assert ok == (can_pay and self._get("wallet", source) >= amount)
        if ok:
            self._move("wallet", source, -amount)
            self._move("wallet", target, amount)

    @rule(first=amounts, second=amounts)
    def atomic_wrap_then_unwrap(self, first: Decimal, second: Decimal) -> None:
        gas = self._gas("wrap", "unwrap")
        before = dict(self.engine.monitor.books["balance"])
        ok = self._run(f"atomic a {{\n wrap {first} ETH\n unwrap {second} WETH\n}}")
        can_pay = self._get("wallet", "ETH") >= gas
        if can_pay:
            self._move("wallet", "ETH", -gas)
        eth, weth = self._get("wallet", "ETH"), self._get("wallet", "WETH")
        expected = can_pay and eth >= first and weth + first >= second
        assert ok == expected
        if ok:
            self._move("wallet", "ETH", second - first)
            self._move("wallet", "WETH", first - second)
        else:
            # All or nothing: only the gas may have left the wallet.
            after = dict(self.engine.monitor.books["balance"])
            before.pop(("wallet", "ETH"), None)
            after.pop(("wallet", "ETH"), None)
            assert after == before

    @rule(amount=amounts, venue=st.sampled_from(["binance", "okx"]))
    def spot_buy_eth(self, amount: Decimal, venue: str) -> None:
        # The default market's CEXs take a buy's fee from the ETH received (LANGUAGE.md v2).
        cost = amount * 3400
        ok = self._run(f"spot buy {amount} ETH/USDT on {venue}")
        assert ok == (self._get(venue, "USDT") >= cost)
        if ok:
            self._move(venue, "USDT", -cost)
            self._move(venue, "ETH", amount * (1 - MARKET.venues[venue].taker_fee))  # type: ignore[union-attr]

    @invariant()
    def matches_the_reference_model(self) -> None:
        actual = {k: v for k, v in self.engine.monitor.books["balance"].items()}
        expected = {k: v for k, v in self.model.items() if v != 0}
        assert actual == expected

    @invariant()
    def never_negative(self) -> None:
        assert all(v > 0 for v in self.engine.monitor.books["balance"].values())


TestMonitorMachine = MonitorMachine.TestCase
