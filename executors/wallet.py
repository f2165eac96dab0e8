"""Wallet transfers between the wallet and CEXs, with CEX withdrawal fees."""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from stratplan.dsl.models import WalletTransferInstruction
from stratplan.executors.errors import ExecutionError
from stratplan.executors.ledger import Ledger
from stratplan.executors.market import Market
from stratplan.executors.protocol import ExecutionResult, Immediate, Order
from stratplan.executors.resolve import drawn_from, fmt

ZERO = Decimal(0)


class WalletExecutor(Immediate):
    """`transfer A T from V1 to V2`; gas is charged by the caller before it runs."""

    families = frozenset({"wallet_transfer"})

    def apply(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        """Move the amount, less the source CEX's withdrawal fee."""
        # cast, not an isinstance assert: pydantic classes check instances through ABCMeta,
        # slow enough to show on a million transfers; the engine routes by `kind`.
        instr = cast(WalletTransferInstruction, order.instruction)
        source, target, token = instr.source_venue, instr.target_venue, instr.token
        amount = drawn_from(order, ledger, "balance", source, token)
        terms = market.venues.get(source)
        fee = ZERO
        if terms is not None and terms.kind == "cex":
            fee = terms.withdraw_fee.get(token, ZERO)
        if amount <= fee and fee > ZERO:
            raise ExecutionError("SP300", f"{fmt(amount)} {token} does not cover {source}'s "
                                 f"withdrawal fee of {fmt(fee)} {token}")
        ledger.add("balance", source, token, -amount)
        ledger.add("balance", target, token, amount - fee)
        if fee:
            ledger.record_cost("fee", fee * market.price(token))
        return ExecutionResult(amount=amount)
