"""Atomic blocks (SP200-SP207): what one transaction can hold, and flash loans inside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from stratplan.dsl.diagnostics import Diagnostic
from stratplan.dsl.models import AllAmount, MaxAmount, SmartContractInstruction
from stratplan.dsl.spans import Span
from stratplan.executors.market import StakingVenue, WalletVenue
from stratplan.interpreter.evaluate import EvalError, constant
from stratplan.interpreter.lint.rules.registry import RuleContext, diag, rule


@rule("SP200")
def transfer_in_atomic(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Wallet transfers cannot be bundled into a contract transaction."""
    for stmt, place in ctx.instructions():
        if place.atomic and stmt.kind == "wallet_transfer":
            yield diag("SP200", f"wallet transfer inside atomic block `{place.atomic.name}`",
                       stmt.span, "move the transfer before or after the block")


@rule("SP201")
def trade_in_atomic(ctx: RuleContext) -> Iterator[Diagnostic]:
    """CEX trades are off-chain and cannot be part of a transaction."""
    for stmt, place in ctx.instructions():
        if place.atomic and stmt.kind == "cex_trade":
            yield diag("SP201", f"CEX trade inside atomic block `{place.atomic.name}`",
                       stmt.span, "move the trade before or after the block")


def _is_flash(stmt: Any) -> bool:
    return isinstance(stmt, SmartContractInstruction) and stmt.operation.startswith("flash_")


@rule("SP202")
def flash_outside(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Flash loans only exist inside one transaction."""
    for stmt, place in ctx.instructions():
        if _is_flash(stmt) and place.atomic is None:
            word = stmt.operation.replace("_", " ")
            yield diag("SP202", f"{word} outside an atomic block", stmt.span,
                       "put the flash borrow, its use and its repay in one atomic block")


@rule("SP203")
def flash_unpaid(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Each flash borrow needs repays to the same lender, in full with fee, in its block."""
    for block in ctx.statements:
        if block.kind != "atomic":
            continue
        ops = [s for s in block.body if isinstance(s, SmartContractInstruction)]
        borrowed: dict[tuple[str, str], list[Any]] = {}
        for op in ops:
            if op.operation == "flash_borrow":
                borrowed.setdefault((op.token_in, op.venue or ""), []).append(op)
        for (token, venue), borrows in borrowed.items():
            first = borrows[0]
            after = ops[ops.index(first) + 1:]
            repays = [op for op in after if op.operation == "flash_repay"
                      and op.token_in == token and op.venue == venue]
            if not repays:
                yield diag("SP203", f"flash loan of {token} from {venue} is never repaid in "
                           f"block `{block.name}`", first.span,
                           f"add `flash repay all {token} to {venue}` at the end of the block")
                continue
            if any(isinstance(r.amount, AllAmount) for r in repays):
                continue
            owed = _constant_total(ctx, borrows)
            paid = _constant_total(ctx, repays)
            if owed is None or paid is None:
                continue
            fee = (ctx.market.flash_fee(venue, token) if ctx.market else None) or Decimal(0)
            if paid < owed * (1 + fee):
                yield diag("SP203", f"flash loan of {owed.normalize():f} {token} from {venue} "
                           f"needs {(owed * (1 + fee)).normalize():f} {token} back (with fee); "
                           f"the block repays {paid.normalize():f}", first.span,
                           f"repay with `flash repay all {token} to {venue}`")


def _constant_total(ctx: RuleContext, ops: list[Any]) -> Decimal | None:
    total = Decimal(0)
    for op in ops:
        if isinstance(op.amount, (AllAmount, MaxAmount)):
            return None
        try:
            value = constant(op.amount, ctx.scope)
        except EvalError:
            return None
        if value is None:
            return None
        total += value
    return total


@rule("SP204")
def empty_atomic(ctx: RuleContext) -> Iterator[Diagnostic]:
    """An atomic block with nothing in it still costs a transaction."""
    for stmt in ctx.statements:
        if stmt.kind == "atomic" and not stmt.body:
            yield diag("SP204", f"atomic block `{stmt.name}` is empty", stmt.span,
                       "remove it")


@rule("SP205")
def nested_in_atomic(ctx: RuleContext) -> Iterator[Diagnostic]:
    """An atomic block holds instructions only."""
    for stmt, place in ctx.visits():
        if place.atomic is None:
            continue
        if stmt.kind in ("atomic", "repeat", "assert"):
            what = {"atomic": "atomic block", "repeat": "repeat", "assert": "assert"}[stmt.kind]
            yield diag("SP205", f"{what} inside atomic block `{place.atomic.name}`", stmt.span,
                       "atomic blocks hold instructions only; write the operations out")


@rule("SP206", needs_market=True)
def not_one_transaction(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Operations that wait (an unstake queue) cannot complete in one transaction."""
    assert ctx.market is not None
    for stmt, place in ctx.instructions():
        if place.atomic and stmt.kind == "contract" and \
                stmt.operation == "unstake":
            terms = ctx.market.venues.get(stmt.venue or "")
            if isinstance(terms, StakingVenue) and not terms.unstake_atomic:
                yield diag("SP206", f"unstaking at {stmt.venue} waits in a withdrawal queue and "
                           "cannot complete inside one transaction", stmt.span,
                           "unstake outside the atomic block, or swap instead")


@rule("SP207")
def flash_without_executor(ctx: RuleContext) -> Iterator[Diagnostic]:
    """A flash loan calls back into contract code: the block needs a `via` executor."""
    for block, place in ctx.visits():
        # The outermost blocks only: a nested one is SP205's.
        if block.kind != "atomic" or place.atomic is not None:
            continue
        if not any(isinstance(op, SmartContractInstruction) and op.operation == "flash_borrow"
                   for op in block.body):
            continue
        terms = ctx.market.venues.get(block.via) if ctx.market and block.via else None
        if block.via is None or isinstance(terms, WalletVenue):
            where = Span(line=block.span.line, column=block.span.column,
                         end_line=block.span.line, end_column=block.span.column + len("atomic"))
            yield diag("SP207", f"atomic block `{block.name}` takes a flash loan without a `via` "
                       "executor contract: the lender calls back into contract code, which a "
                       "plain wallet does not have", where,
                       f"name the executor: `atomic {block.name} via instadapp {{`")
