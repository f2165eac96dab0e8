"""What a chain-backed executor offers the interpreter: transactions of several operations.

This module imports nothing of the chain (no titanoboa), so the interpreter and the command
line can name these types without loading an EVM.

A transaction is `open`, then one `apply` per operation in order (each runs the model on
the ledger and adds the operation's calls to the transaction), then `close`, which sends it
(or, when the model already failed, only tries it and undoes it) and says how it ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol, runtime_checkable

from stratplan.executors.ledger import Ledger
from stratplan.executors.market import Market
from stratplan.executors.protocol import ExecutionResult, Order


@dataclass(frozen=True)
class Verdict:
    """Why a transaction failed: the operation (index in the transaction), the code, the
    message, and the chain's error by name (None when the chain was not asked)."""

    op: int
    code: str
    message: str
    chain_error: str | None = None


@dataclass
class TxOutcome:
    """How a transaction ended, on the chain and in the model.

    `committed`: the chain kept it and the ledger now holds the chain's amounts.
    `model_failed` / `chain_reverted`: each side's verdict (they should agree); `asked`:
    the chain was asked at all (not when the plan failed before an operation could be
    sent: an expression that cannot be evaluated).
    `differences`: model-vs-chain differences, one line each (beyond a wei or 1e-18 of the
    amount: `amount` differences; any other disagreement: `verdict` or `gas` lines)."""

    committed: bool
    model_failed: bool
    chain_reverted: bool
    failure: Verdict | None = None
    gas_used: int = 0
    tx_hash: str | None = None
    seconds: float = 0.0
    differences: list[str] = field(default_factory=list)
    largest_relative: Decimal = Decimal(0)
    health: dict[str, Decimal | None] = field(default_factory=dict)
    model_health: dict[str, Decimal | None] = field(default_factory=dict)
    asked: bool = True


@runtime_checkable
class Transacting(Protocol):
    """An executor that carries out several operations as one transaction."""

    families: frozenset[str]

    def open(self, ledger: Ledger, market: Market) -> None:
        """Start a transaction against the ledger as it is now."""
        ...

    def apply(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        """Carry out one operation of the open transaction in the model (raising its
        ExecutionError) and add it to the transaction."""
        ...

    def close(self, ledger: Ledger, market: Market, *, failed_op: int | None,
              failed_code: str | None, failed_message: str | None, units: int,
              price_gwei: Decimal | None, probe: bool = True) -> TxOutcome:
        """Send the transaction, or try it when the model failed at `failed_op` (unless
        not `probe`: a failure no transaction could show); on success make the ledger hold
        the chain's amounts. `units` is the gas the model charged."""
        ...
