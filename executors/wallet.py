"""Wallet transfers between the wallet and CEXs, with CEX withdrawal fees."""

from __future__ import annotations

from decimal import Decimal

from dsl.models import WalletTransferInstruction
from executors.errors import ExecutionError
from executors.ledger import Ledger
from executors.market import CexVenue, Market
from executors.protocol import ExecutionResult, Immediate, Order
from executors.resolve import drawn, fmt


class WalletExecutor(Immediate):
    """`transfer A T from V1 to V2`; gas is charged by the caller before it runs."""

    families = frozenset({"wallet_transfer"})

    def apply(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        """Move the amount, less the source CEX's withdrawal fee."""
        instr = order.instruction
        assert isinstance(instr, WalletTransferInstruction)
        source, target, token = instr.source_venue, instr.target_venue, instr.token
        amount = drawn(order, ledger.get("balance", source, token))
        source_terms = market.venues.get(source)
        fee = Decimal(0)
        if isinstance(source_terms, CexVenue):
            fee = source_terms.withdraw_fee.get(token, Decimal(0))
        if amount <= fee and fee > 0:
            raise ExecutionError("SP300", f"{fmt(amount)} {token} does not cover {source}'s "
                                 f"withdrawal fee of {fmt(fee)} {token}")
        ledger.add("balance", source, token, -amount)
        ledger.add("balance", target, token, amount - fee)
        if fee:
            ledger.record_cost("fee", fee * market.price(token))
        return ExecutionResult(amount=amount)
