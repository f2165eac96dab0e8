"""The `evm` executor: contract operations on a local chain with the real Aave and Balancer.

Each operation runs twice: in the model (executors/contract.py, on the ledger), which
also resolves what the plan's expressions and `max` mean at that point, and on the chain,
as calls of the transaction's program (executors/evm/program.py). A transaction is sent
when the model finished it; when the model failed, it is tried on the chain and undone,
to see whether the chain refuses it too. The chain is right: its revert fails the node with
the code the model gives for that failure and Aave's error name, and after a transaction
the ledger holds the chain's amounts (each difference from the model is reported).

CEX trades and wallet transfers stay simulated; their effects on the wallet reach the chain
when the next transaction opens (the account is given what the ledger says it holds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from stratplan.dsl.models import SmartContractInstruction
from stratplan.executors import gas
from stratplan.executors.accounts import lending_account
from stratplan.executors.contract import ContractExecutor
from stratplan.executors.errors import ExecutionError
from stratplan.executors.evm import setup
from stratplan.executors.evm.abi import MAX_UINT
from stratplan.executors.evm.errors import ChainError, read_revert
from stratplan.executors.evm.program import Program
from stratplan.executors.evm.transaction import TxOutcome, Verdict
from stratplan.executors.evm.world import ETH, World, build_world, to_wei
from stratplan.executors.ledger import WALLET, Ledger
from stratplan.executors.market import Market
from stratplan.executors.protocol import ExecutionResult, Immediate, Order
from stratplan.executors.resolve import fmt

WAD = Decimal(10**18)
BOOKS = ("balance", "collateral", "debt")


@dataclass
class _Open:
    program: Program
    operations: list[str] = field(default_factory=list)
    failed: int | None = None
    unbuildable: tuple[int, ExecutionError] | None = None


class EvmExecutor(Immediate):
    """Contract operations on a local chain (built from the first market it is given)."""

    families = frozenset({"contract"})

    def __init__(self, aave: str = setup.DEFAULT_AAVE, world: World | None = None) -> None:
        self.aave = aave
        self.world = world
        self.model = ContractExecutor()
        self._tx: _Open | None = None
        self.transactions: list[TxOutcome] = []

    # --- the chain ----------------------------------------------------------------------------
    def world_for(self, market: Market) -> World:
        """The chain of this market (deployed on first use; prices moved when the market is
        another one, as a backtest's step is)."""
        if self.world is None:
            self.world = build_world(market, self.aave)
        elif self.world.market is not market:
            self.world.set_prices(market)
        return self.world

    def health(self, venue: str) -> Decimal | None:
        """The account's health factor at a lending venue as Aave computes it (None: no
        debt)."""
        assert self.world is not None
        factor = self.world.pools[venue].account(self.world.wallet)[5]
        return None if factor == MAX_UINT else Decimal(factor) / WAD

    # --- one operation outside any transaction: its own transaction --------------------------
    def apply(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        """Carry out one operation: inside an open transaction, add it; alone, as a
        transaction of its own. An operation of an atomic block needs the block's
        transaction (`stratplan run --executor evm` opens it)."""
        if self._tx is not None:
            return self._add(order, ledger, market)
        if order.in_transaction:
            raise ExecutionError("SP206", "the evm executor sends an atomic block as one "
                                 "transaction: run the plan with `--executor evm`")
        self.open(ledger, market)
        try:
            result = self._add(order, ledger, market)
        except ExecutionError as exc:
            self.close(ledger, market, failed_op=0, failed_code=exc.code,
                       failed_message=exc.message, units=0, price_gwei=None)
            raise
        outcome = self.close(ledger, market, failed_op=None, failed_code=None,
                             failed_message=None, units=0, price_gwei=None)
        if outcome.failure is not None:
            raise ExecutionError(outcome.failure.code, outcome.failure.message)
        return result

    def sync_positions(self, ledger: Ledger) -> None:
        """Make the ledger's collateral and debt at every lending venue the chain's (after
        interest accrued or a liquidation, which happen on the chain between transactions)."""
        world = self.world
        assert world is not None
        chain = world.positions()
        for venue in world.pools:
            for book in ("collateral", "debt"):
                held = ledger.items(book, venue)
                for asset in sorted(set(held) | {a for (b, v, a) in chain
                                                 if b == book and v == venue}):
                    delta = chain.get((book, venue, asset), Decimal(0)) - \
                        held.get(asset, Decimal(0))
                    if delta:
                        ledger.add(book, venue, asset, delta)

    # --- transactions ---------------------------------------------------------------------------
    def open(self, ledger: Ledger, market: Market) -> None:
        """Start a transaction. The wallet's balances are the ledger's (the simulated venues
        move them): the account is given what the ledger says. Lending positions are the
        chain's (interest, liquidations): the ledger is given what the chain says."""
        world = self.world_for(market)
        held = dict(ledger.items("balance", WALLET))
        for asset in {ETH, *world.tokens}:
            amount = held.get(asset, Decimal(0))
            if to_wei(amount) != world.wallet_balance(asset):
                world.set_wallet_balance(asset, amount)
        self.sync_positions(ledger)
        emodes = {venue: pool.emode_of(world.wallet) for venue, pool in world.pools.items()}
        self._tx = _Open(Program(world, emodes))

    def _add(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        tx = self._tx
        assert tx is not None and self.world is not None
        instr = cast(SmartContractInstruction, order.instruction)
        index = len(tx.operations)
        tx.operations.append(instr.operation)
        program, kind, venue = tx.program, instr.operation, instr.venue or ""
        try:
            if kind == "borrow" and venue in self.world.pools:
                wanted = lending_account(ledger, market, venue, borrowing=instr.token_in).emode
                program.set_emode(index, venue, self._emode_id(venue, wanted))
            try:
                result = self.model.apply(order, ledger, market)
            except ExecutionError:
                tx.failed = index
                self._build(index, order, None, ledger)
                raise
            self._build(index, order, result.amount, ledger)
            if kind == "repay" and venue in self.world.pools and ledger.items("debt", venue):
                wanted = lending_account(ledger, market, venue).emode
                program.set_emode(index, venue, self._emode_id(venue, wanted))
        except ExecutionError as exc:
            if tx.failed is None:  # the model did it; the chain cannot be asked to
                tx.unbuildable = (index, exc)
            raise
        return result

    def _emode_id(self, venue: str, name: str | None) -> int:
        assert self.world is not None
        return 0 if name is None else self.world.pools[venue].emode_ids[name]

    def _build(self, index: int, order: Order, amount: Decimal | None, ledger: Ledger) -> None:
        tx = self._tx
        assert tx is not None
        instr = cast(SmartContractInstruction, order.instruction)
        if instr.operation == "swap":
            slippage = order.slippage if order.slippage is not None else \
                order.options.max_slippage
            tx.program.swap(index, order, amount, slippage)
        elif instr.operation == "flash_repay":
            owed = ledger.get("flash", instr.venue or "", instr.token_in)
            tx.program.flash_repay(index, order, amount if amount is not None else
                                   Decimal(0), owed if amount is not None else Decimal(1))
        else:
            tx.program.operation(index, order, amount)

    def close(self, ledger: Ledger, market: Market, *, failed_op: int | None,
              failed_code: str | None, failed_message: str | None, units: int,
              price_gwei: Decimal | None, probe: bool = True) -> TxOutcome:
        """Send the transaction (or try it, when the model failed) and say how it ended."""
        tx, world = self._tx, self.world
        assert tx is not None and world is not None
        self._tx = None
        if failed_op is not None and not probe:  # nothing the chain could be asked
            outcome = TxOutcome(False, True, False, Verdict(failed_op, failed_code or "SP104",
                                                            failed_message or ""), asked=False)
            self.transactions.append(outcome)
            return outcome
        if tx.unbuildable is not None:
            index, exc = tx.unbuildable
            outcome = TxOutcome(False, False, False, Verdict(index, exc.code, exc.message),
                                differences=[f"verdict: operation {index + 1} is one the model "
                                             f"allows but the chain cannot do: {exc.message}"])
            self.transactions.append(outcome)
            return outcome
        model_failed = failed_op is not None
        steps = tx.program.finish()
        account = world.account
        assert account is not None
        data = account.calldata("run", [s.as_tuple() for s in steps])
        before = world.chain.snapshot()
        receipt = world.chain.send(world.owner, account.address, data)
        reverted = not receipt.ok
        error = read_revert(receipt.output, world.errors, world.codes) if reverted else None
        outcome = TxOutcome(False, model_failed, reverted, gas_used=receipt.gas_used,
                            tx_hash=receipt.tx_hash, seconds=receipt.seconds)
        if model_failed or reverted:
            world.chain.revert(before)  # a probe, or a revert: nothing stays but the gas
            assert not model_failed or failed_op is not None
            outcome.failure = self._verdict(tx, outcome, error, failed_op, failed_code,
                                            failed_message)
        else:
            outcome.model_health = {venue: lending_account(ledger, market, venue).health
                                    for venue in world.pools}
            self._reconcile(ledger, outcome)
            extra = receipt.gas_used - units
            if extra > 0 and units:
                eth, _ = gas.price(extra, market, price_gwei)
                if eth > ledger.get("balance", WALLET, "ETH"):
                    world.chain.revert(before)
                    outcome.failure = Verdict(len(tx.operations) - 1, "SP300",
                                              f"the transaction used {receipt.gas_used} gas, "
                                              f"the plan paid for {units}: the wallet cannot "
                                              f"pay the other {extra}")
                    outcome.differences.append(f"gas: the chain used {receipt.gas_used}, the "
                                               f"model {units}")
                    self.transactions.append(outcome)
                    return outcome
            outcome.committed = True
            outcome.health = {venue: self.health(venue) for venue in world.pools}
        if units and receipt.gas_used != units:
            outcome.differences.append(f"gas: the chain used {receipt.gas_used}, the model "
                                       f"{units}")
        self.transactions.append(outcome)
        return outcome

    def _verdict(self, tx: _Open, outcome: TxOutcome, error: ChainError | None,
                 failed_op: int | None, failed_code: str | None,
                 failed_message: str | None) -> Verdict:
        """The failure to report: the chain's, named by Aave's error, in the model's code;
        each disagreement between the two is a `verdict` difference."""
        last = len(tx.operations) - 1
        name = None if error is None else error.describe()
        version = self.world.aave if self.world else ""
        if error is None:  # only the model refused
            assert failed_op is not None
            outcome.differences.append(
                f"verdict: the model refuses operation {failed_op + 1} ({failed_code}) but the "
                "chain accepts it")
            return Verdict(failed_op, failed_code or "SP300",
                           f"{failed_message} (the chain accepts it: model and chain differ)")
        op = error.op if error.op is not None else last
        operation = tx.operations[op] if 0 <= op <= last else "transaction"
        code = error.code(operation)
        onchain = f"on chain (Aave {version}): {name}"
        if failed_op is None:
            outcome.differences.append(
                f"verdict: the chain reverts at operation {op + 1} ({name}) but the model "
                "allows it")
            return Verdict(op, code, f"{operation} fails {onchain}; the model allowed it")
        if op != failed_op:
            outcome.differences.append(
                f"verdict: the chain reverts at operation {op + 1} ({name}), the model fails "
                f"at operation {failed_op + 1} ({failed_code})")
            if op > failed_op:
                return Verdict(failed_op, failed_code or code, f"{failed_message} ({onchain}, "
                               f"at operation {op + 1})")
            return Verdict(op, code, f"{operation} fails {onchain}")
        if failed_code is not None and code != failed_code:
            outcome.differences.append(
                f"code: the model says {failed_code}, the chain's {name} means {code}")
        return Verdict(op, code if failed_code is None else failed_code,
                       f"{failed_message} ({onchain})")

    def _reconcile(self, ledger: Ledger, outcome: TxOutcome) -> None:
        """Make the ledger hold the chain's amounts; report what the model had otherwise."""
        assert self.world is not None
        chain = self.world.books()
        model: dict[tuple[str, str, str], Decimal] = {}
        for book in BOOKS:
            for venue in ledger.venues(book):  # type: ignore[arg-type]
                for asset, amount in ledger.items(book, venue).items():  # type: ignore[arg-type]
                    if book != "balance" or venue == WALLET:
                        model[(book, venue, asset)] = amount
        for key in sorted(set(chain) | set(model)):
            book, venue, asset = key
            if book == "balance" and venue == WALLET and asset not in self.world.tokens \
                    and asset != ETH:
                continue  # an asset the chain does not hold
            have, want = model.get(key, Decimal(0)), chain.get(key, Decimal(0))
            if have == want:
                continue
            delta = want - have
            relative = abs(delta) / abs(want) if want else Decimal(1)
            if abs(to_wei(have) - to_wei(want)) > 1 and relative > Decimal("1e-18"):
                outcome.largest_relative = max(outcome.largest_relative, relative)
                outcome.differences.append(f"amount: {book} {venue} {asset}: model {fmt(have)}, "
                                           f"chain {fmt(want)} (difference {delta:.3E})")
            ledger.add(book, venue, asset, delta)  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        """What the chain is, for reports: Aave's version and the deploy time."""
        world = self.world
        return {"aave": self.aave, "deploy_s": world.seconds.get("deploy_s") if world else None}
