"""Dispatching the DAG to executors: the dry run of `lint` and the run of `stratplan run`.

Every node is a transaction of its own: gas is paid up front, then the node's effects are
applied under an undo log, and any failure restores the state as it was (gas stays paid).
"""

from __future__ import annotations

import dataclasses
import decimal
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, NamedTuple, cast

from stratplan.dsl.formatter import format_expr
from stratplan.dsl.models import (
    INSTRUCTION_KINDS,
    AnyInstruction,
    Assert,
    AtomicBlock,
    CEXTradeInstruction,
    Plan,
    SmartContractInstruction,
)
from stratplan.dsl.spans import Span
from stratplan.executors import gas
from stratplan.executors.errors import ExecutionError, MarketError
from stratplan.executors.ledger import Ledger
from stratplan.executors.market import Market
from stratplan.executors.protocol import (
    Effect,
    ExecutionResult,
    Executor,
    Options,
    Order,
    Recorder,
    Rejection,
)
from stratplan.interpreter.dag import Dag, PlanNode
from stratplan.interpreter.evaluate import EvalError, Scope, amount, constant, holds, why_false
from stratplan.interpreter.fills import Fill, fill_of
from stratplan.interpreter.monitor import PositionMonitor

Status = Literal["ok", "failed"]
ZERO = Decimal(0)


class Step(NamedTuple):
    """One dispatched node: how it ended and the gas it paid (a tuple: one per node)."""

    node: str
    line: int
    status: Status
    gas_eth: Decimal = Decimal(0)
    gas_units: int = 0


_new_step = tuple.__new__


@dataclass
class Failure:
    """Why a run stopped: code, message, and where (node and the span of the statement)."""

    node: str
    code: str
    message: str
    span: Span


@dataclass
class Outcome:
    """The result of a run or dry run."""

    # repr=False: asyncio may format a coroutine's result, and a run can have a million steps.
    steps: list[Step] = field(default_factory=list, repr=False)
    failure: Failure | None = None
    warnings: list[tuple[str, str, Span, str]] = field(default_factory=list, repr=False)

    @property
    def completed(self) -> list[str]:
        """Ids of the nodes that ran to completion."""
        return [s.node for s in self.steps if s.status == "ok"]


Apply = Callable[[Order, Ledger, Market], ExecutionResult]


@dataclass(slots=True)
class _Prepared:
    """What a statement needs on every pass, worked out once (repeats share statements)."""

    ops: list[AnyInstruction]
    atomic: bool
    on_chain: bool
    units: int
    eth: Decimal
    usd: Decimal
    orders: list[Order | None]
    line: int
    # (operation, fixed order or None, its executor's `apply`) when every executor of the
    # statement has `apply`; None when some executor must be awaited.
    immediate: list[tuple[AnyInstruction, Order | None, Apply]] | None
    check: Assert | None  # the statement, when it is an assert


def _literal(op: AnyInstruction) -> bool:
    """True when every amount of the operation is a literal (or all/max)."""
    if op.amount.kind not in ("number", "all", "max"):
        return False
    kind = op.kind
    extra = (cast(CEXTradeInstruction, op).limit if kind == "cex_trade" else
             cast(SmartContractInstruction, op).slippage if kind == "contract" else None)
    return extra is None or extra.kind == "number"


class NodeFailed(Exception):
    """A node failed; carries the code, message and span to report, and the gas the node
    paid before it failed (a failed transaction's gas stays paid)."""

    def __init__(self, code: str, message: str, span: Span) -> None:
        super().__init__(message)
        self.code, self.message, self.span = code, message, span
        self.gas_eth, self.gas_units = Decimal(0), 0


# What an operation may raise: the executors' errors, an expression's, and a decimal signal
# from arithmetic on extreme values (LANGUAGE.md: a diagnostic, never an internal error).
OperationError = (EvalError, ExecutionError, MarketError, decimal.DecimalException)


def _failure(exc: Exception, span: Span) -> NodeFailed:
    """The NodeFailed an operation's error becomes, reported at the operation."""
    if isinstance(exc, MarketError):
        return NodeFailed("SP103", str(exc), span)
    if isinstance(exc, decimal.DecimalException):
        code = "SP110" if isinstance(exc, decimal.Overflow) else "SP104"
        return NodeFailed(code, "an amount computed by this operation is out of range or not "
                          "a finite number", span)
    assert isinstance(exc, (EvalError, ExecutionError))
    return NodeFailed(exc.code, exc.message, span)


def plan_options(plan: Plan, scope: Scope) -> Options:
    """The `set` options as values (invalid ones were reported by the static rules)."""
    values: dict[str, Decimal] = {}
    for setting in plan.sets:
        try:
            value = constant(setting.value, scope)
        except EvalError:
            value = None
        if value is not None:
            values[setting.name] = value
    defaults = Options()
    return Options(min_health=values.get("min_health", defaults.min_health),
                   max_slippage=values.get("max_slippage", defaults.max_slippage),
                   gas_price_gwei=values.get("gas_price_gwei"))


def seed_holdings(plan: Plan, monitor: PositionMonitor) -> None:
    """Load the plan's starting balances into the monitor."""
    if plan.holdings is None:
        return
    for entry in plan.holdings.entries:
        for held in entry.amounts:
            if held.amount.value > 0:
                monitor.seed(entry.venue, held.asset, held.amount.value)


class Engine:
    """Runs DAG nodes against a position monitor through the executors."""

    def __init__(self, plan: Plan, market: Market, executors: Mapping[str, Executor],
                 monitor: PositionMonitor | None = None) -> None:
        self.plan = plan
        self.market = market
        self.executors = executors
        self.scope = Scope({let.name: let for let in plan.lets}, {}, market)
        self.options = plan_options(plan, self.scope)
        self.monitor = monitor or PositionMonitor()
        if monitor is None:
            seed_holdings(plan, self.monitor)
        self.warnings: list[tuple[str, str, Span, str]] = []
        self.state_scope = Scope(self.scope.lets, {}, market, self.monitor)
        self._prepared: dict[int, tuple[Any, _Prepared]] = {}
        # Worked out once per run rather than once per statement: each executor's `apply`
        # (None when it must be awaited) and the price of each transaction size.
        self._appliers: dict[str, Apply | None] = {}
        for kind, executor in executors.items():
            apply = getattr(executor, "apply", None)
            self._appliers[kind] = apply if callable(apply) else None
        self._gas_prices: dict[int, tuple[Decimal, Decimal]] = {}
        # The trade log (interpreter/fills.py): None records nothing (run, lint); a backtest
        # sets a list, and every committed operation adds its fill.
        self.fills: list[Fill] | None = None

    # --- one node ------------------------------------------------------------------------
    def _prepare(self, stmt: AnyInstruction | AtomicBlock | Assert, keep: bool = True) -> _Prepared:
        # Repeats share statement objects, so what depends only on the statement is
        # worked out once: its operations and the gas of its transaction. Without `keep`
        # (a statement the caller knows runs once) the result is not cached.
        cached = self._prepared.get(id(stmt))
        if cached is not None and cached[0] is stmt:
            return cached[1]
        # `kind`, not isinstance: pydantic classes check instances through ABCMeta.
        kind = stmt.kind
        atomic = kind == "atomic"
        ops: list[AnyInstruction]
        if atomic:
            ops = [cast(AnyInstruction, op) for op in cast(AtomicBlock, stmt).body
                   if op.kind in INSTRUCTION_KINDS]
            on_chain = True
        elif kind == "assert":
            ops, on_chain = [], False
        else:
            ops = [cast(AnyInstruction, stmt)]
            on_chain = gas.is_on_chain(ops[0])
        units = gas.transaction_units(ops, self.market) if on_chain else 0
        priced = self._gas_prices.get(units)
        if priced is None:
            priced = self._gas_prices[units] = gas.price(units, self.market,
                                                         self.options.gas_price_gwei)
        eth, usd = priced
        # An operation whose amounts are literals gets the same order on every pass.
        orders = [self._fixed_order(op, atomic) for op in ops]
        found = [self._appliers.get(op.kind) for op in ops]
        appliers = [apply for apply in found if apply is not None]
        immediate = (list(zip(ops, orders, appliers, strict=True))
                     if len(appliers) == len(ops) else None)
        prepared = _Prepared(ops, atomic, on_chain, units, eth, usd, orders, stmt.span.line,
                             immediate, cast(Assert, stmt) if kind == "assert" else None)
        if keep:
            # Keeping the statement alive beside its entry stops its id from being reused.
            self._prepared[id(stmt)] = (stmt, prepared)
        return prepared

    def execute_now(self, node: PlanNode, prepared: _Prepared | None = None) -> Step:
        """`execute` for an immediate node, without a coroutine; raises NodeFailed."""
        stmt = node.statement
        prepared = prepared or self._prepare(stmt)
        work = prepared.immediate
        if work is None:
            raise ValueError(f"node {node.id} has an executor that must be awaited (no `apply`)")
        if prepared.check is not None:
            self._assert(prepared.check, self._scope(node))
            return Step(node.id, prepared.line, "ok")
        if prepared.on_chain:
            self._pay_gas(prepared, stmt.span)
        monitor, market = self.monitor, self.market
        monitor.begin(alone=True)  # apply never awaits
        scope: Scope | None = None
        fills = self.fills
        pending: list[Fill] = []
        try:
            for op, order, apply in work:
                try:
                    if order is None:
                        scope = scope or self._scope(node)
                        order = self.order(op, scope, prepared.atomic)
                    fees = monitor.cost("fee") if fills is not None else ZERO
                    result = apply(order, monitor, market)
                except OperationError as exc:
                    raise _failure(exc, op.span) from None
                if result.warnings:
                    self._warn(result, op, node)
                if fills is not None:
                    self._fill(pending, op, node, result, monitor.cost("fee") - fees)
            if prepared.atomic:
                self._flash_settled(stmt)  # type: ignore[arg-type]
        except NodeFailed as failed:
            monitor.rollback()
            failed.gas_eth, failed.gas_units = prepared.eth, prepared.units
            raise
        monitor.commit()
        if pending and fills is not None:
            fills.extend(pending)
        # tuple.__new__ skips the named tuple's Python-level __new__ (one step per node).
        return _new_step(Step, (node.id, prepared.line, "ok", prepared.eth, prepared.units))

    async def execute(self, node: PlanNode, prepared: _Prepared | None = None) -> Step:
        """Run one node; raises NodeFailed (state restored, gas kept) when it fails."""
        stmt = node.statement
        prepared = prepared or self._prepare(stmt)
        if prepared.immediate is not None:
            return self.execute_now(node, prepared)
        if prepared.on_chain:
            self._pay_gas(prepared, stmt.span)
        scope = self._scope(node)
        fills = self.fills
        pending: list[Fill] = []
        self.monitor.begin()
        try:
            for op, order in zip(prepared.ops, prepared.orders, strict=True):
                fees = self.monitor.cost("fee")
                result = await self._operation(op, scope, node, prepared.atomic, order)
                if fills is not None:
                    self._fill(pending, op, node, result, self.monitor.cost("fee") - fees)
            if prepared.atomic:
                self._flash_settled(stmt)  # type: ignore[arg-type]
        except NodeFailed as failed:
            self.monitor.rollback()
            failed.gas_eth, failed.gas_units = prepared.eth, prepared.units
            raise
        self.monitor.commit()
        if pending and fills is not None:
            fills.extend(pending)
        return Step(node.id, prepared.line, "ok", prepared.eth, prepared.units)

    def _fill(self, pending: list[Fill], op: AnyInstruction, node: PlanNode,
              result: ExecutionResult, fee_usd: Decimal) -> None:
        """Add the operation's fill (interpreter/fills.py) to its transaction's list."""
        fill = fill_of(op, node.id, result, self.market, fee_usd)
        if fill is not None:
            pending.append(fill)

    async def transact(self, node: PlanNode, key: str) -> tuple[Step | NodeFailed, Effect]:
        """Run one node as the keyed transaction of a journaled run.

        As `execute`, except that every order carries `key` (one key for a whole atomic
        block) and its place in the transaction, the executors act through a Recorder, and
        the result says what the node did (its Effect) as well as how it ended. A failed
        node is returned, not raised: its effect keeps the gas it paid and its warnings.
        """
        stmt = node.statement
        prepared = self._prepare(stmt)
        if prepared.check is not None:
            try:
                self._assert(prepared.check, self._scope(node))
            except NodeFailed as failed:
                return failed, Effect(error=Rejection(failed.code, failed.message, None,
                                                      failed.span))
            return Step(node.id, prepared.line, "ok"), Effect()
        recorder = Recorder(self.monitor)
        if prepared.on_chain:
            try:
                recorder.pay_gas(prepared.units, prepared.eth, prepared.usd)
            except ExecutionError as error:  # pay_gas changed nothing
                return (NodeFailed(error.code, error.message, stmt.span),
                        Effect(error=Rejection(error.code, error.message, None, stmt.span)))
        scope = self._scope(node)
        warnings: list[tuple[int, str, str]] = []
        part: int | None = None
        self.monitor.begin()
        try:
            for part, (op, order) in enumerate(zip(prepared.ops, prepared.orders, strict=True)):
                result = await self._operation(op, scope, node, prepared.atomic, order,
                                               recorder, key, part)
                warnings.extend((part, code, message) for code, message in result.warnings)
            part = None
            if prepared.atomic:
                self._flash_settled(stmt)  # type: ignore[arg-type]
        except NodeFailed as failed:
            self.monitor.rollback()
            failed.gas_eth, failed.gas_units = prepared.eth, prepared.units
            return failed, recorder.effect(warnings, Rejection(failed.code, failed.message,
                                                               part, failed.span))
        self.monitor.commit()
        return (Step(node.id, prepared.line, "ok", prepared.eth, prepared.units),
                recorder.effect(warnings))

    def executor_of(self, node: PlanNode) -> Executor | None:
        """The executor that carries out a node's transaction (None for an assert)."""
        ops = self._prepare(node.statement).ops
        return self.executors.get(ops[0].kind) if ops else None

    def replay(self, node: PlanNode, effect: Effect) -> Step | NodeFailed:
        """Apply a node's recorded effect (from a journal, or a venue's `lookup`) as if the
        node had just run: the ledger, the warnings, and the step or failure it ended with."""
        prepared = self._prepare(node.statement)
        effect.replay(self.monitor)
        for part, code, message in effect.warnings:
            op = prepared.ops[part] if 0 <= part < len(prepared.ops) else node.statement
            self.warnings.append((code, message, op.span, node.id))
        gas_eth, gas_units = (effect.gas[1], effect.gas[0]) if effect.gas else (Decimal(0), 0)
        error = effect.error
        if error is None:
            return Step(node.id, prepared.line, "ok", gas_eth, gas_units)
        span = error.span
        if span is None:
            where = error.part
            span = (prepared.ops[where].span
                    if where is not None and 0 <= where < len(prepared.ops)
                    else node.statement.span)
        failed = NodeFailed(error.code, error.message, span)
        failed.gas_eth, failed.gas_units = gas_eth, gas_units
        return failed

    def _scope(self, node: PlanNode) -> Scope:
        return self.state_scope.with_loop(node.loop) if node.loop else self.state_scope

    def _pay_gas(self, prepared: _Prepared, span: Span) -> None:
        # Gas is paid up front, outside the transaction: it stays paid if the node fails.
        try:
            self.monitor.pay_gas(prepared.units, prepared.eth, prepared.usd)
        except ExecutionError as error:  # pay_gas changed nothing
            raise NodeFailed(error.code, error.message, span) from None

    def _warn(self, result: ExecutionResult, op: AnyInstruction, node: PlanNode) -> None:
        for code, message in result.warnings:
            self.warnings.append((code, message, op.span, node.id))

    def _assert(self, stmt: Assert, scope: Scope) -> None:
        try:
            ok = holds(stmt.condition, scope)
        except EvalError as exc:
            raise NodeFailed(exc.code, exc.message, exc.span) from None
        except decimal.DecimalException as exc:
            raise _failure(exc, stmt.span) from None
        except (MarketError, ExecutionError) as exc:
            raise NodeFailed("SP304", f"assertion could not be evaluated: {exc}", stmt.span) from None
        if not ok:
            try:
                why = why_false(stmt.condition, scope)
            except (EvalError, decimal.DecimalException):
                why = format_expr(stmt.condition)
            message = f"assertion failed: {stmt.message}: {why}" if stmt.message else \
                f"assertion failed: {why}"
            raise NodeFailed("SP304", message, stmt.span)

    async def _operation(self, op: AnyInstruction, scope: Scope, node: PlanNode,
                         atomic: bool, order: Order | None = None, ledger: Ledger | None = None,
                         key: str | None = None, part: int = 0) -> ExecutionResult:
        executor = self.executors.get(op.kind)
        if executor is None:
            raise NodeFailed("SP102", f"no executor handles {op.kind} instructions", op.span)
        try:
            if order is None:
                order = self.order(op, scope, atomic)
            if key is not None:  # fixed orders are shared by every pass: a keyed copy
                order = dataclasses.replace(order, key=key, part=part)
            result = await executor.execute(order, self.monitor if ledger is None else ledger,
                                            self.market)
        except OperationError as exc:
            raise _failure(exc, op.span) from None
        self._warn(result, op, node)
        return result

    def _fixed_order(self, op: AnyInstruction, atomic: bool) -> Order | None:
        """The order of an operation with literal amounts, or None to build it each pass."""
        if not _literal(op):
            return None
        try:
            return self.order(op, self.scope, atomic)
        except EvalError:
            return None  # reported when the node runs, with its node id

    def order(self, op: AnyInstruction, scope: Scope, atomic: bool) -> Order:
        """The order an executor is handed for `op` now: its amount evaluated (`all` and
        `max` as words), limit, leverage and slippage; SP104 for an amount that is not
        positive. The chain's engine hands its transactions the same orders."""
        quantity: Decimal | Literal["all", "max"]
        # `kind`, not isinstance: pydantic classes check instances through ABCMeta.
        kind = op.amount.kind
        if kind == "all":
            quantity = "all"
        elif kind == "max":
            quantity = "max"
        else:
            value = amount(op.amount, scope)
            if value <= 0:
                raise EvalError("SP104", f"the amount evaluates to {value.normalize():f}; "
                                "it must be positive", op.amount.span)
            quantity = value
        limit = leverage = slippage = None
        if isinstance(op, CEXTradeInstruction):
            limit = amount(op.limit, scope, "limit price") if op.limit is not None else None
            leverage = op.leverage.value if op.leverage is not None else None
        if isinstance(op, SmartContractInstruction) and op.slippage is not None:
            slippage = amount(op.slippage, scope, "slippage")
        return Order(op, quantity, limit, leverage, slippage, atomic, self.options)

    def _flash_settled(self, block: AtomicBlock) -> None:
        for venue in sorted(self.monitor.venues("flash")):
            for token, owed in self.monitor.items("flash", venue).items():
                borrow = next((op for op in block.body if isinstance(op, SmartContractInstruction)
                               and op.operation == "flash_borrow" and op.token_in == token
                               and op.venue == venue), block)
                raise NodeFailed("SP203", f"block `{block.name}` ends owing {owed.normalize():f} "
                                 f"{token} to {venue} in flash loans", borrow.span)

    # --- whole runs ----------------------------------------------------------------------
    async def run_sequential(self, nodes: Iterable[PlanNode], *, steps: bool = True) -> Outcome:
        """Run nodes one after another in the given order; stop at the first failure.

        Without `steps` (lint's dry run, which reads only the warnings and the failure) the
        outcome records no steps, and a node outside every repeat, whose statement runs
        once, is prepared without being cached: a flat plan would otherwise keep every
        node's preparation to the end (issue 17). The warnings and the failure are the
        same either way (tests compare them)."""
        return await self._run_waves(nodes, steps)

    async def run_concurrent(self, dag: Dag) -> Outcome:
        """Dispatch nodes that are ready together concurrently; stop after a failure."""
        nodes = dag.nodes
        return await self._run_waves(nodes[wave[0]] if len(wave) == 1 else
                                     [nodes[index] for index in wave] for wave in dag.waves)

    async def _run_waves(self, waves: Iterable[PlanNode | list[PlanNode]],
                         record: bool = True) -> Outcome:
        """Run each wave (a node ready alone, or a list of nodes ready together) in turn;
        stop after a wave with a failure. Without `record`, see `run_sequential`."""
        outcome = Outcome(warnings=self.warnings)
        steps, prepare = outcome.steps, self._prepare
        for wave in waves:
            if not isinstance(wave, list):
                # Most nodes share the wallet and are ready alone: no batch, no task.
                node = wave
                # An id has `#` exactly when the node is inside a repeat (`iteration`).
                lone = prepare(node.statement, record or "#" in node.id)
                try:
                    if lone.immediate is not None:
                        step = self.execute_now(node, lone)
                    else:
                        await _needs_loop()
                        step = await self.execute(node, lone)
                except NodeFailed as failed:
                    self._record_failure(outcome, node, failed, record)
                    break
                if record:
                    steps.append(step)
                continue
            for node, result in zip(wave, await self._attempt_batch(wave), strict=True):
                if isinstance(result, Step):
                    steps.append(result)
                else:
                    self._record_failure(outcome, node, result)
            if outcome.failure is not None:
                break
        return outcome

    async def _attempt_batch(self, batch: list[PlanNode]) -> list[Step | NodeFailed]:
        """Run nodes that are ready together; their results in the same order."""
        prepared = [self._prepare(node.statement) for node in batch]
        if all(p.immediate is not None for p in prepared):
            # Nothing here waits, so tasks would run one after another anyway: run them in
            # place, each in its own transaction, exactly as gather would.
            return [self._attempt_now(node, p) for node, p in zip(batch, prepared, strict=True)]
        await _needs_loop()
        import asyncio
        return list(await asyncio.gather(*(self._attempt(node) for node in batch)))

    @staticmethod
    def _record_failure(outcome: Outcome, node: PlanNode, failed: NodeFailed,
                        record: bool = True) -> None:
        """A failed step, with the gas it paid; the run's failure is the first one."""
        if record:
            outcome.steps.append(Step(node.id, node.line, "failed", failed.gas_eth,
                                      failed.gas_units))
        if outcome.failure is None:
            outcome.failure = Failure(node.id, failed.code, failed.message, failed.span)

    def _attempt_now(self, node: PlanNode, prepared: _Prepared) -> Step | NodeFailed:
        try:
            return self.execute_now(node, prepared)
        except NodeFailed as failed:
            return failed

    async def _attempt(self, node: PlanNode) -> Step | NodeFailed:
        try:
            return await self.execute(node)
        except NodeFailed as failed:
            return failed


# --- driving a run from synchronous code ---------------------------------------------------
# A run whose nodes are all immediate (every executor has `apply`, as the built-in ones do)
# never suspends, so `run_sync` drives it without an event loop: asyncio costs about 10 ms
# to import, a fifth of a small `lint` (issue 17). Before the first node that must be
# awaited, the run yields `_LOOP`, and `run_sync` finishes it under `asyncio.run`.
_LOOP = object()


@types.coroutine
def _needs_loop() -> Any:
    """Ask `run_sync` for an event loop (at once resumed); a no-op under a running loop."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None or asyncio._get_running_loop() is None:
        yield _LOOP


def run_sync(coro: Any) -> Any:
    """Run a run's coroutine to completion from synchronous code: without an event loop
    while it never suspends, then (from the first node that must be awaited) under one."""
    try:
        cue = coro.send(None)
    except StopIteration as done:
        return done.value
    if cue is not _LOOP:
        coro.close()
        raise RuntimeError("a run awaited outside an event loop; only `_needs_loop` may "
                           "suspend it before the loop starts")
    import asyncio
    return asyncio.run(_resumed(coro))


async def _resumed(coro: Any) -> Any:
    """Finish a coroutine `run_sync` started, under the event loop."""
    return await _Started(coro)


class _Started:
    """A started coroutine as an awaitable: awaiting it resumes it where it suspended."""

    def __init__(self, coro: Any) -> None:
        self.coro = coro

    def __await__(self) -> Any:
        return (yield from self.coro.__await__())
