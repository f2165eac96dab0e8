"""Gas: which instructions are on-chain transactions and how many units each costs."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import cast

from stratplan.dsl.models import AnyInstruction, SmartContractInstruction, WalletTransferInstruction
from stratplan.executors.errors import ExecutionError
from stratplan.executors.ledger import WALLET, Ledger
from stratplan.executors.market import Market


def op_units(instr: AnyInstruction, market: Market) -> int:
    """Gas units of one operation inside a transaction (0 for off-chain instructions)."""
    # `kind`, not isinstance: pydantic classes check instances through ABCMeta.
    kind = instr.kind
    if kind == "contract":
        return market.gas.ops.get(cast(SmartContractInstruction, instr).operation, 0)
    if kind == "wallet_transfer" and cast(WalletTransferInstruction, instr).source_venue == WALLET:
        return market.gas.ops.get("transfer", 0)
    return 0


def is_on_chain(instr: AnyInstruction) -> bool:
    """True for instructions that are wallet transactions (they pay gas)."""
    kind = instr.kind
    return kind == "contract" or (
        kind == "wallet_transfer"
        and cast(WalletTransferInstruction, instr).source_venue == WALLET)


def transaction_units(instrs: Iterable[AnyInstruction], market: Market) -> int:
    """Units of one transaction holding these operations: base plus each operation."""
    return market.gas.base_tx + sum(op_units(i, market) for i in instrs)


def price(units: int, market: Market, price_gwei: Decimal | None) -> tuple[Decimal, Decimal]:
    """(ETH, USD) of `units` of gas at the market's gas price (or `price_gwei`)."""
    eth = market.gas_eth(units, price_gwei)
    return eth, eth * market.price("ETH") if market.knows("ETH") else Decimal(0)


def shortfall(ledger: Ledger, eth: Decimal) -> ExecutionError:
    """The error for a wallet that cannot pay `eth` of gas up front."""
    have = ledger.get("balance", WALLET, "ETH")
    return ExecutionError("SP300", f"the wallet holds {have.normalize():f} ETH, the "
                          f"transaction needs {eth.normalize():f} ETH of gas")
