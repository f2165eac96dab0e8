"""A third-party style executor used to test plugin discovery."""

from __future__ import annotations

from decimal import Decimal

from stratplan.executors.protocol import ExecutionResult, Order


class RecordingCexExecutor:
    """Fills every CEX trade at zero cost and records what it was asked to do."""

    families = frozenset({"cex_trade"})
    calls: list[str] = []

    async def execute(self, order: Order, ledger, market) -> ExecutionResult:
        """Record the order and credit the bought asset."""
        instr = order.instruction
        RecordingCexExecutor.calls.append(f"{instr.side} {order.amount} {instr.pair}")
        ledger.add("balance", instr.venue, instr.base, Decimal(order.amount))
        return ExecutionResult(amount=Decimal(order.amount))
