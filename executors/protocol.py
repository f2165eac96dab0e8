"""The executor contract: a resolved order in, effects on the ledger, a result out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

from stratplan.dsl.models import AnyInstruction
from stratplan.executors.ledger import Ledger
from stratplan.executors.market import Market

Family = Literal["wallet_transfer", "cex_trade", "contract"]


@dataclass(frozen=True)
class Options:
    """Plan-wide options (`set`), with their defaults."""

    min_health: Decimal = Decimal("1.05")
    max_slippage: Decimal = Decimal("0.005")
    gas_price_gwei: Decimal | None = None


@dataclass(slots=True)
class Order:
    """An instruction with its expressions evaluated: what an executor carries out.

    Executors treat it as read-only (it is not frozen only because frozen dataclasses are
    several times slower to create, and one is made per operation).

    `amount` is a Decimal, or "all"/"max", which the executor resolves against the ledger
    because only it knows which balance an instruction draws from.
    """

    instruction: AnyInstruction
    amount: Decimal | Literal["all", "max"]
    limit: Decimal | None = None
    leverage: Decimal | None = None
    slippage: Decimal | None = None
    in_transaction: bool = False
    options: Options = field(default_factory=Options)


@dataclass(slots=True)
class ExecutionResult:
    """What an executor did: the amount it used, and warnings (code, message) to report."""

    amount: Decimal = Decimal(0)
    # A tuple by default: most results carry none, and one is made per operation.
    warnings: Sequence[tuple[str, str]] = ()


@runtime_checkable
class Executor(Protocol):
    """One family of instructions; found through the `stratplan.executors` entry points."""

    families: frozenset[str]

    async def execute(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        """Carry out one order; raise ExecutionError to fail it."""
        ...


@runtime_checkable
class ImmediateExecutor(Executor, Protocol):
    """An executor whose work never waits (a simulation): `apply` is `execute` without a
    coroutine. The engine calls `apply` directly, which saves the cost of an event-loop
    round per operation on large dry runs."""

    def apply(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        """Carry out one order at once; raise ExecutionError to fail it."""
        ...


class Immediate:
    """Base for executors that implement `apply`: `execute` runs it."""

    def apply(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        """Carry out one order at once; subclasses implement it."""
        raise NotImplementedError

    async def execute(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        """The protocol's coroutine: the same work as `apply`."""
        return self.apply(order, ledger, market)
