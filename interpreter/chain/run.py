"""`stratplan run --executor evm`: the phases with every on-chain node sent as one
transaction of a chain-backed executor (executors/evm/transaction.py).

A node that is a contract operation or an atomic block is one transaction: its gas is paid
up front at the model's estimate (as `run` pays it), each operation's amount is worked out
as `run` works it out (expressions against the ledger as the block has left it so far) and
handed to the executor, which runs it in the model and adds it to the transaction; then the
executor sends it and the ledger takes the chain's amounts. Once the receipt is in, the gas
paid becomes the receipt's (the unused part back, as Ethereum refunds it). Every other node
(asserts, CEX trades, wallet transfers) runs as `stratplan run` runs it.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.models import (
    INSTRUCTION_KINDS,
    AnyInstruction,
    AtomicBlock,
    Plan,
    SmartContractInstruction,
)
from stratplan.executors import gas
from stratplan.executors.accounts import portfolio_value
from stratplan.executors.errors import ExecutionError, MarketError
from stratplan.executors.evm.transaction import Transacting, TxOutcome
from stratplan.executors.market import Market
from stratplan.executors.registry import discover
from stratplan.interpreter.dag import Dag, PlanNode, build_dag
from stratplan.interpreter.engine import Engine, Failure, NodeFailed, Outcome, Step, run_sync
from stratplan.interpreter.evaluate import EvalError
from stratplan.interpreter.monitor import PositionMonitor
from stratplan.interpreter.report import build_report, dec


@dataclass
class Transaction:
    """One node sent to the chain: its step and how the transaction ended."""

    node: str
    line: int
    outcome: TxOutcome
    model_units: int


@dataclass
class ChainRun:
    """The result of a run against a chain: the report, and every transaction."""

    report: dict[str, Any]
    outcome: Outcome
    engine: Engine
    dag: Dag
    transactions: list[Transaction] = field(default_factory=list)


def on_chain_statement(stmt: Any) -> bool:
    """True for a node the chain carries out: a contract operation or an atomic block."""
    return stmt.kind in ("atomic", "contract")


class ChainEngine:
    """Runs a plan's nodes in order, on-chain ones through a Transacting executor."""

    def __init__(self, plan: Plan, market: Market, chain: Transacting,
                 monitor: PositionMonitor | None = None) -> None:
        executors = dict(discover())
        self.engine = Engine(plan, market, executors, monitor)
        self.market = market
        self.chain = chain
        self.transactions: list[Transaction] = []

    def run(self, dag: Dag) -> Outcome:
        """Every node in the DAG's order; stop at the first failure."""
        engine = self.engine
        outcome = Outcome(warnings=engine.warnings)
        for node in dag.nodes:
            try:
                if on_chain_statement(node.statement):
                    step = self.transact(node)
                else:
                    step = run_sync(engine.execute(node))
            except NodeFailed as failed:
                outcome.steps.append(Step(node.id, node.line, "failed", failed.gas_eth,
                                          failed.gas_units))
                outcome.failure = Failure(node.id, failed.code, failed.message, failed.span)
                break
            outcome.steps.append(step)
        return outcome

    def transact(self, node: PlanNode) -> Step:
        """One on-chain node as one transaction; NodeFailed (gas kept) when it fails."""
        engine, market, monitor = self.engine, self.market, self.engine.monitor
        stmt = node.statement
        atomic = stmt.kind == "atomic"
        ops = ([cast(AnyInstruction, op) for op in cast(AtomicBlock, stmt).body
                if op.kind in INSTRUCTION_KINDS] if atomic else [cast(AnyInstruction, stmt)])
        units = gas.transaction_units(ops, market)
        price_gwei = engine.options.gas_price_gwei
        eth, usd = gas.price(units, market, price_gwei)
        try:
            monitor.pay_gas(units, eth, usd)
        except ExecutionError as exc:  # nothing was paid, nothing sent
            raise NodeFailed(exc.code, exc.message, stmt.span) from None
        scope = engine.state_scope.with_loop(node.loop) if node.loop else engine.state_scope
        self.chain.open(monitor, market)
        monitor.begin(alone=True)
        failed: tuple[int, str, str] | None = None
        probe = True  # the failure is one a transaction would show (not an expression's)
        index = 0
        try:
            for index in range(len(ops)):
                op = ops[index]
                try:
                    order = engine.order(op, scope, atomic)
                except (EvalError, decimal.DecimalException):
                    probe = False
                    raise
                result = self.chain.apply(order, monitor, market)
                for code, message in result.warnings:
                    engine.warnings.append((code, message, op.span, node.id))
        except (EvalError, ExecutionError, MarketError, decimal.DecimalException) as exc:
            code = getattr(exc, "code", "SP110" if isinstance(exc, decimal.Overflow)
                           else "SP104")
            failed = (index, code, getattr(exc, "message", str(exc)))
        if failed is None and atomic:
            for venue in sorted(monitor.venues("flash")):
                for token, owed in monitor.items("flash", venue).items():
                    at = next((i for i, op in enumerate(ops)
                               if isinstance(op, SmartContractInstruction)
                               and op.operation == "flash_borrow" and op.token_in == token
                               and op.venue == venue), len(ops) - 1)
                    failed = failed or (at, "SP203", f"block `{cast(AtomicBlock, stmt).name}` "
                                        f"ends owing {owed.normalize():f} {token} to {venue} "
                                        "in flash loans")
        outcome = self.chain.close(monitor, market, failed_op=None if failed is None else
                                   failed[0], failed_code=None if failed is None else failed[1],
                                   failed_message=None if failed is None else failed[2],
                                   units=units, price_gwei=price_gwei, probe=probe)
        if outcome.committed:
            monitor.commit()
        else:
            monitor.rollback()
        self.transactions.append(Transaction(node.id, stmt.span.line, outcome, units))
        used = outcome.gas_used or units
        if used != units:  # the receipt's gas replaces the estimate paid up front
            delta_eth, delta_usd = gas.price(abs(used - units), market, price_gwei)
            sign = 1 if used > units else -1
            monitor.pay_gas(used - units, sign * delta_eth, sign * delta_usd)
        paid = gas.price(used, market, price_gwei)[0]
        if outcome.failure is not None:
            where = outcome.failure.op
            span = ops[where].span if 0 <= where < len(ops) else stmt.span
            error = NodeFailed(outcome.failure.code, outcome.failure.message, span)
            error.gas_eth, error.gas_units = paid, used
            raise error
        return Step(node.id, stmt.span.line, "ok", paid, used)


def run_on_chain(plan: Plan, market: Market, chain: Transacting, *,
                 dag: Dag | None = None) -> ChainRun:
    """Run a sound plan's phases with its on-chain nodes on the chain (DagError if the plan
    is not sound)."""
    with arithmetic():
        runner = ChainEngine(plan, market, chain)
        engine = runner.engine
        if dag is None:
            dag = build_dag(plan, engine.scope)
        start = portfolio_value(engine.monitor, market)
        outcome = runner.run(dag)
        report = build_report(plan, dag, outcome, engine.monitor, market, start)
    report["chain"] = chain_section(runner.transactions)
    return ChainRun(report, outcome, engine, dag, runner.transactions)


def _number(value: Decimal | None) -> str | None:
    return None if value is None else dec(value)


def chain_section(transactions: list[Transaction]) -> dict[str, Any]:
    """The report's `chain` part: each transaction's node, hash, gas and verdicts, and the
    model-vs-chain differences."""
    rows: list[dict[str, Any]] = []
    differences: list[dict[str, Any]] = []
    for tx in transactions:
        out = tx.outcome
        rows.append({"node": tx.node, "line": tx.line, "hash": out.tx_hash,
                     "status": "ok" if out.committed else "reverted" if out.chain_reverted
                     else "not sent", "gas_used": out.gas_used, "model_gas": tx.model_units,
                     "seconds": round(out.seconds, 4),
                     "health": {venue: {"chain": _number(value),
                                        "model": _number(out.model_health.get(venue))}
                                for venue, value in out.health.items()},
                     "error": None if out.failure is None else out.failure.message})
        differences.extend({"node": tx.node, "line": tx.line, "difference": text}
                           for text in out.differences)
    return {"transactions": rows, "differences": differences}
