"""The differential harness: one scenario run by the model alone and by the chain.

A scenario is a list of actions: a phase of plan text (its nodes run by the model on one
ledger, and by `--executor evm` on the chain), a price or exchange-rate move, time passing,
or liquidations. After each action the model's books are compared with the chain's:

- every transaction: the model, on the ledger the chain had, fails exactly when the chain
  reverts (the executor records a `verdict` difference otherwise), and leaves the same
  amounts (an `amount` difference beyond a wei or 1e-18 of the amount);
- the scenario: the model's own ledger (its own rounding, accrual and liquidations) against
  the chain's balances, collateral and debt, within `tolerance` wei per amount;
- health: the model's formula against Aave's `getUserAccountData`, within what Aave's
  8-decimal base currency can hold (`health_bound`), and Aave's integer formula recomputed
  here from the chain's balances and prices, to the wei of its 18 decimals.

Gas costs nothing in scenarios (the market's gas price is 0), so the wallet's ETH compares
too; gas itself is compared by the CLI tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.parser import parse
from stratplan.executors import accrual
from stratplan.executors.accounts import lending_account
from stratplan.executors.evm.executor import EvmExecutor
from stratplan.executors.evm.world import World, from_wei, liquidation_call, to_wei
from stratplan.executors.liquidation import Liquidation, liquidate_lending
from stratplan.executors.market import AssetInfo, Market
from stratplan.executors.oracle import oracle_price
from stratplan.executors.registry import discover
from stratplan.interpreter.chain.run import ChainEngine
from stratplan.interpreter.dag import build_dag
from stratplan.interpreter.engine import Engine, Outcome, run_sync, seed_holdings
from stratplan.interpreter.monitor import PositionMonitor

WAD = 10**18
VENUE = "aave"


def scenario_market(base: Market) -> Market:
    """A market of the scenario's own (prices, rates and assets copied: they move), with
    gas at no cost."""
    market = base.model_copy(update={"prices": dict(base.prices), "assets": dict(base.assets),
                                     "gas": base.gas.model_copy(update={"price_gwei":
                                                                        Decimal(0)})})
    return market


@dataclass
class Disagreement:
    """One model-vs-chain difference, with where it happened."""

    action: int
    kind: str
    text: str


@dataclass(repr=False)
class Scenario:
    """A scenario in progress: the model's ledger, the chain's, and what differed."""

    world: World
    market: Market
    holdings: str
    model: PositionMonitor = field(default_factory=PositionMonitor)
    ledger: PositionMonitor = field(default_factory=PositionMonitor)  # the chain's
    executor: EvmExecutor | None = None
    disagreements: list[Disagreement] = field(default_factory=list)
    actions: int = 0
    failures: list[tuple[str | None, str | None]] = field(default_factory=list)
    liquidations: list[tuple[Liquidation, dict[str, int]]] = field(default_factory=list)
    health_checks: list[tuple[Decimal, Decimal, Decimal]] = field(default_factory=list)
    transactions: int = 0
    roundings: int = 0  # operations on the books so far, each rounding on the chain
    owed: dict[str, Decimal] = field(default_factory=dict)
    held: dict[str, Decimal] = field(default_factory=dict)
    liquidation_wei: list[int] = field(default_factory=list)  # |model - chain| of each amount

    def __post_init__(self) -> None:
        self.executor = EvmExecutor(self.world.aave, world=self.world)
        plan = parse(f"plan s\nholdings {{ {self.holdings} }}\nphase p {{ }}\n").plan
        assert plan is not None
        seed_holdings(plan, self.model)
        seed_holdings(plan, self.ledger)
        for asset, amount in self.ledger.items("balance", "wallet").items():
            self.world.set_wallet_balance(asset, amount)  # as a transaction's start would

    # --- actions -----------------------------------------------------------------------------
    def phase(self, body: str) -> tuple[str | None, str | None]:
        """Run one phase of plan text on both sides; (model failure, chain failure) codes."""
        self.actions += 1
        text = f"plan s\nphase p {{\n{body}\n}}\n"
        parsed = parse(text)
        assert parsed.plan is not None, (text, parsed.diagnostics)
        plan = parsed.plan
        with arithmetic():
            engine = Engine(plan, self.market, dict(discover()), self.model)
            dag = build_dag(plan, engine.scope)
            model = run_sync(engine.run_sequential(dag.nodes))
            chain_engine = ChainEngine(plan, self.market, self.executor, self.ledger)
            chain = chain_engine.run(dag)
        self.transactions += len(chain_engine.transactions)
        self.roundings += len(plan.phases[0].body) * 6  # an atomic block: up to six operations
        for tx in chain_engine.transactions:
            for text_line in tx.outcome.differences:
                kind = text_line.split(":", 1)[0]
                if kind != "gas":
                    self.note(kind, f"{tx.node}: {text_line}")
            if tx.outcome.asked and tx.outcome.model_failed != tx.outcome.chain_reverted:
                self.note("verdict", f"{tx.node}: model failed {tx.outcome.model_failed}, "
                          f"chain reverted {tx.outcome.chain_reverted}")
        codes = (_code(model), _code(chain))
        self.failures.append(codes)
        if (model.failure is None) != (chain.failure is None) or (
                model.failure and chain.failure and model.failure.node != chain.failure.node):
            self.note("verdict", f"the model's run {_say(model)}, the chain's {_say(chain)}")
        self.compare()
        return codes

    def move(self, prices: dict[str, Decimal] | None = None,
             rates: dict[str, Decimal] | None = None) -> None:
        """New prices and exchange rates, on both sides (a rate-bearing asset's price is its
        underlying's times its rate, as a backtest derives it)."""
        self.actions += 1
        market = self.market
        for asset, price in (prices or {}).items():
            market.prices[asset] = price
        for asset, rate in (rates or {}).items():
            info = market.assets[asset]
            market.assets[asset] = AssetInfo.model_construct(underlying=info.underlying,
                                                             rate=rate)
        for asset, info in market.assets.items():
            if asset in market.prices and info.underlying in market.prices:
                market.prices[asset] = market.prices[info.underlying] * info.rate
        self.world.set_prices(market)
        self.compare()

    def wait(self, seconds: int) -> None:
        """Time passes: interest accrues on both sides."""
        self.actions += 1
        dt = accrual.years(seconds * 1000)
        with arithmetic():
            for venue, asset in sorted(self.model.books["collateral"]):
                accrual.accrue_supply(self.model, venue, asset,
                                      self.market.supply_rate(venue, asset), dt)
            for venue, asset in sorted(self.model.books["debt"]):
                accrual.accrue_borrow(self.model, venue, asset,
                                      self.market.borrow_rate(venue, asset), dt)
        self.world.chain.advance(seconds)
        self.roundings += 2
        self.world.set_lending_rates(self.market)  # a step touches every reserve
        self.compare()

    def liquidate(self) -> list[Liquidation]:
        """The model's liquidator, then the same calls on the chain by a liquidator account:
        each call's repaid and seized compared to the wei."""
        self.actions += 1
        self.owed = dict(self.model.items("debt", VENUE))
        self.held = dict(self.model.items("collateral", VENUE))
        with arithmetic():
            events = liquidate_lending(self.model, self.market, VENUE)
        for event in events:
            if event.kind != "lending":
                continue
            assert event.collateral is not None and event.repaid is not None
            # A call that takes the whole debt, or the whole collateral, is asked of Aave as
            # "all you allow" (it caps the amount itself): the model's amount, rounded to the
            # wei, could leave a wei of dust, which Aave refuses.
            whole = event.repaid >= self.owed.get(event.asset, Decimal(0)) or \
                event.seized == self.held.get(event.collateral, Decimal(0))
            chain = self.world_liquidation(event.collateral, event.asset,
                                           None if whole else event.repaid)
            self.owed[event.asset] = self.owed.get(event.asset, Decimal(0)) - event.repaid
            assert event.seized is not None
            self.held[event.collateral] = self.held.get(event.collateral, Decimal(0)) - \
                event.seized
            self.liquidations.append((event, chain))
            self.roundings += 2
            if "error" in chain:
                self.note("liquidation", f"the model repays {event.repaid} {event.asset} for "
                          f"{event.seized} {event.collateral}; the chain refuses: "
                          f"{chain['error']}")
                continue
            for what, asset, model_amount in (("repaid", event.asset, event.repaid),
                                              ("seized", event.collateral, event.seized)):
                assert model_amount is not None
                # As the books: the model's collateral carries digits below a wei, and a wei
                # of a dear collateral is many wei of a cheap debt (harness.tolerance).
                self.liquidation_wei.append(abs(to_wei(model_amount) - chain[what]))
                if abs(to_wei(model_amount) - chain[what]) > tolerance(
                        self.market, asset, from_wei(chain[what]), 2):
                    self.note("liquidation", f"{what}: model {model_amount}, chain "
                              f"{from_wei(chain[what])} ({chain[what] - to_wei(model_amount)} "
                              "wei)")
        self.compare()
        return events

    def world_liquidation(self, collateral: str, debt: str,
                          repaid: Decimal | None) -> dict[str, Any]:
        """One liquidationCall on the chain for `repaid` of `debt` (as the model's liquidator
        chose it; None: as much as Aave allows): what the liquidator paid and what the
        account lost, in wei."""
        call = liquidation_call(self.world, VENUE, collateral, debt, repaid)
        if not call.ok:
            return {"error": call.error}
        return {"repaid": call.repaid, "seized": call.seized, "gas": call.gas_used}

    # --- comparisons -------------------------------------------------------------------------
    def note(self, kind: str, text: str) -> None:
        """Record a disagreement."""
        self.disagreements.append(Disagreement(self.actions, kind, text))

    def compare(self) -> None:
        """The model's ledger against the chain's books, and health against Aave's."""
        chain = self.world.books()
        model: dict[tuple[str, str, str], Decimal] = {}
        for book in ("balance", "collateral", "debt"):
            for (venue, asset), amount in self.model.books[book].items():
                if book != "balance" or venue == "wallet":
                    model[(book, venue, asset)] = amount
        for key in sorted(set(chain) | set(model)):
            have, want = model.get(key, Decimal(0)), chain.get(key, Decimal(0))
            if abs(to_wei(have) - to_wei(want)) > tolerance(self.market, key[2], want,
                                                             self.roundings):
                self.note("amount", f"{' '.join(key)}: model {have}, chain {want}")
        if VENUE in self.world.pools:
            self.check_health()

    def check_health(self) -> None:
        """Model health vs Aave's, and Aave's integer formula recomputed from the chain."""
        pool = self.world.pools[VENUE]
        data = pool.account(self.world.wallet)
        chain_hf = data[5]
        expected = aave_health(self.world)
        if expected is not None and chain_hf != expected:
            self.note("health", f"Aave's health {chain_hf} is not its formula's {expected}")
        with arithmetic():
            account = lending_account(self.model, self.market, VENUE)
        if account.health is None:
            if chain_hf != 2**256 - 1 and data[1] != 0:
                self.note("health", f"the model has no debt, the chain {data[1]} (8 decimals)")
            return
        if chain_hf == 2**256 - 1:
            self.note("health", f"the model's health is {account.health}, the chain has no debt")
            return
        chain_health = Decimal(chain_hf) / WAD
        bound = health_bound(self.model, self.market)
        relative = abs(account.health - chain_health) / chain_health
        self.health_checks.append((account.health, chain_health, relative))
        if relative > bound:
            self.note("health", f"model {account.health}, chain {chain_health}: relative "
                      f"{relative:.3E} > the base currency's {bound:.3E}")


def tolerance(market: Market, asset: str, amount: Decimal, roundings: int) -> int:
    """Wei of `asset` an amount may differ by after `roundings` operations: each rounds to
    the wei on the chain and not in the model, and an amount worked out from another asset's
    (a borrow of `f * collateral(...) * oracle(...)`) carries that asset's wei at its price:
    two wei of the dearest asset for each operation, in this asset's wei, or 1e-18 of it."""
    dearest = max(market.prices[a] for a in ("ETH", "WETH", "weETH", asset))
    worth = 2 * max(roundings, 1) * dearest / market.prices[asset]
    # `borrow max` is decided in Aave's base currency: a wei less of collateral (Aave v3.6
    # credits a supply rounded down once the liquidity index is off 1) can be a unit
    # (1e-8 USD) less of room, in this asset.
    worth += max(roundings, 1) * Decimal("1e-8") * WAD / market.prices[asset]
    return max(int(worth) + 1, int(abs(amount) * Decimal("1e-18") * WAD))


def health_bound(ledger: PositionMonitor, market: Market) -> Decimal:
    """How far Aave's health can be from the exact formula: each collateral's and debt's
    value is rounded to 1e-8 USD (its base currency), the quotient to 1e-18."""
    account = lending_account(ledger, market, VENUE)
    count = len(ledger.items("collateral", VENUE)) + len(ledger.items("debt", VENUE))
    unit = Decimal("1e-8") * count
    return unit / account.threshold_usd + unit / account.debt_usd + Decimal("1e-17")


def aave_health(world: World) -> int | None:
    """Aave v3.6's health factor recomputed from the chain's balances and oracle prices
    (GenericLogic.calculateUserAccountData): collateral values floored, debt values
    ceiled, in 8-decimal USD; Σ value·threshold·WAD / debt / 10⁴. None for v3.0."""
    if world.aave != "v3.6":
        return None
    pool = world.pools[VENUE]
    emode = pool.emode_of(world.wallet)
    terms = world.market.venues[VENUE]
    category = None
    if emode:
        name = next(n for n, i in pool.emode_ids.items() if i == emode)
        category = terms.emode[name]  # type: ignore[union-attr]
    weighted = debt = 0
    for asset, a_token in pool.a_tokens.items():
        price = int(pool.oracle.view("getAssetPrice", world.tokens[asset].address))
        held = int(a_token.view("balanceOf", world.wallet))
        if held:
            own = terms.assets[asset]  # type: ignore[union-attr]
            lt = own.liquidation_threshold
            if category is not None and asset in category.assets:
                lt = category.liquidation_threshold
            weighted += (held * price // WAD) * int(lt * 10_000)
        owed = int(pool.debt_tokens[asset].view("balanceOf", world.wallet))
        if owed:
            debt += -(-owed * price // WAD)
    if not debt:
        return 2**256 - 1
    return (weighted * WAD + debt // 2) // debt // 10_000


def _code(outcome: Outcome) -> str | None:
    return None if outcome.failure is None else outcome.failure.code


def _say(outcome: Outcome) -> str:
    failure = outcome.failure
    return "completes" if failure is None else f"fails at {failure.node} ({failure.code})"


def floor_to(value: Decimal, places: int) -> Decimal:
    """`value` rounded down to `places` decimals."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_FLOOR)


def ceil_to(value: Decimal, places: int) -> Decimal:
    """`value` rounded up to `places` decimals."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING)


def model_price(market: Market, asset: str) -> Decimal:
    """The oracle price the model uses for `asset` at the scenario's venue."""
    return oracle_price(market, VENUE, asset)
