"""The names the plan takes from the market (SP101-SP103): venues that exist, venue kinds
that can do what is asked of them, assets that are priced and listed where they are used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from stratplan.dsl.diagnostics import Diagnostic
from stratplan.dsl.models import CEXTradeInstruction, WalletTransferInstruction
from stratplan.dsl.spans import Span
from stratplan.executors.market import (
    CexVenue,
    ExecutorVenue,
    FlashLenderVenue,
    LendingVenue,
    Market,
    StakingVenue,
    WalletVenue,
)
from stratplan.interpreter.evaluate import FUNCTIONS, calls
from stratplan.interpreter.lint.rules.registry import RuleContext, diag, rule, suggest

LENDING_OPS = {"supply", "withdraw", "borrow", "repay"}


# --- venue references ---------------------------------------------------------------------


def venue_refs(ctx: RuleContext) -> Iterator[tuple[str, Span, str]]:
    """(venue, span, role) for every venue the plan names; role says what it is used for.

    The span is the statement's; `ctx.at` narrows it to the name only when reporting.
    Streamed, not kept: two rules read them, and a second walk costs less than a record
    per reference (issue 17)."""
    if ctx.plan.holdings:
        for entry in ctx.plan.holdings.entries:
            yield entry.venue, entry.span, "holdings"
    for stmt in ctx.statements:
        # `kind`, not isinstance: one string test per statement.
        kind = stmt.kind
        if kind == "wallet_transfer":
            yield stmt.source_venue, stmt.span, "transfer"
            yield stmt.target_venue, stmt.span, "transfer"
        elif kind == "cex_trade":
            yield stmt.venue, stmt.span, "cex"
        elif kind == "contract":
            if stmt.venue:
                yield stmt.venue, stmt.span, stmt.operation
        elif kind == "atomic" and stmt.via:
            yield stmt.via, stmt.span, "via"
    for expr, _ in ctx.expressions():
        for call in calls(expr):
            signature = FUNCTIONS.get(call.func, ())
            for arg, kind in zip(call.args, signature, strict=False):
                if kind == "venue" and arg.kind == "name":
                    yield arg.name, arg.span, f"fn:{call.func}"


@rule("SP101", needs_market=True)
def unknown_venue(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Every venue named must exist in the market."""
    assert ctx.market is not None
    known = ctx.market.venues
    for venue, span, _ in venue_refs(ctx):
        if venue not in known:
            yield diag("SP101", f"unknown venue `{venue}`", ctx.at(span, venue),
                       suggest(venue, known) or f"the market's venues: {', '.join(sorted(known))}")


_KINDS_FOR = {
    "holdings": ((WalletVenue, CexVenue), "hold starting balances"),
    "transfer": ((WalletVenue, CexVenue), "send or receive transfers (wallet or CEX only)"),
    "cex": ((CexVenue,), "trade spot or perps (not a CEX)"),
    "stake": ((StakingVenue,), "stake"), "unstake": ((StakingVenue,), "unstake"),
    "supply": ((LendingVenue,), "take collateral"), "withdraw": ((LendingVenue,), "hold collateral"),
    "borrow": ((LendingVenue,), "lend"), "repay": ((LendingVenue,), "take repayments"),
    "via": ((ExecutorVenue, WalletVenue), "execute atomic blocks (needs kind executor)"),
    "fn:collateral": ((LendingVenue,), "hold collateral"), "fn:debt": ((LendingVenue,), "lend"),
    "fn:health": ((LendingVenue,), "have a health factor"),
    "fn:funding": ((CexVenue,), "have perps with funding (not a CEX)"),
    "fn:entry_price": ((CexVenue,), "hold perps (not a CEX)"),
    "fn:supply_rate": ((LendingVenue,), "pay supply interest (not a lending venue)"),
    "fn:borrow_rate": ((LendingVenue,), "charge borrow interest (not a lending venue)"),
    "fn:oracle": ((LendingVenue,), "price collateral by an oracle (not a lending venue)"),
    "fn:liquidation_price": ((CexVenue, LendingVenue), "have a liquidation price (neither a "
                                                       "CEX nor a lending venue)"),
}


@rule("SP102", needs_market=True)
def venue_cannot(ctx: RuleContext) -> Iterator[Diagnostic]:
    """The venue's kind must support the operation."""
    assert ctx.market is not None
    for venue, span, role in venue_refs(ctx):
        terms = ctx.market.venues.get(venue)
        if terms is None:
            continue
        if role == "swap":
            ok, what = terms.kind == "dex", "swap (not a DEX)"
        elif role in ("flash_borrow", "flash_repay"):
            ok = isinstance(terms, FlashLenderVenue) or (
                isinstance(terms, LendingVenue) and terms.flash_fee is not None)
            what = "flash-lend"
        elif role in _KINDS_FOR:
            kinds, what = _KINDS_FOR[role]
            ok = isinstance(terms, kinds)
        else:
            continue
        if not ok:
            yield diag("SP102", f"{venue} ({terms.kind}) cannot {what}", ctx.at(span, venue))


def _asset_refs(ctx: RuleContext) -> Iterator[tuple[str, Span]]:
    if ctx.plan.holdings:
        for entry in ctx.plan.holdings.entries:
            for amount in entry.amounts:
                yield amount.asset, amount.span
    for stmt, _ in ctx.instructions():
        kind = stmt.kind
        if kind == "wallet_transfer":
            yield stmt.token, stmt.span
        elif kind == "cex_trade":
            yield stmt.base, stmt.span
            yield stmt.quote, stmt.span
        else:
            yield stmt.token_in, stmt.span
            if stmt.token_out:
                yield stmt.token_out, stmt.span
    for expr, _ in ctx.expressions():
        for call in calls(expr):
            for arg in call.args:
                if arg.kind == "asset":
                    yield arg.symbol, arg.span


def _listing_problem(market: Market, stmt: Any) -> str | None:
    """Why the venue does not list the asset or market of an instruction, or None."""
    if isinstance(stmt, WalletTransferInstruction):
        for venue in (stmt.source_venue, stmt.target_venue):
            terms = market.venues.get(venue)
            if isinstance(terms, CexVenue) and stmt.token not in terms.assets:
                return f"{venue} does not list {stmt.token}"
        return None
    if isinstance(stmt, CEXTradeInstruction):
        terms = market.venues.get(stmt.venue)
        if isinstance(terms, CexVenue):
            listed = terms.markets.spot if stmt.market == "spot" else terms.markets.perp
            if stmt.pair not in listed:
                return f"{stmt.venue} has no {stmt.market} market {stmt.pair}"
        return None
    op, token, venue = stmt.operation, stmt.token_in, stmt.venue or ""
    terms = market.venues.get(venue)
    if op in ("stake", "unstake") and isinstance(terms, StakingVenue):
        pairs = terms.stake if op == "stake" else {v: k for k, v in terms.stake.items()}
        if pairs.get(token) != stmt.token_out:
            return f"{venue} does not {op} {token} into {stmt.token_out}"
    elif op in LENDING_OPS and isinstance(terms, LendingVenue):
        asset = terms.assets.get(token)
        if asset is None:
            return f"{venue} does not list {token}"
        if op in ("borrow", "repay") and not asset.borrowable:
            return f"{venue} does not lend {token}"
    elif op in ("flash_borrow", "flash_repay") and terms is not None:
        if market.flash_fee(venue, token) is None and (
                isinstance(terms, FlashLenderVenue) or
                (isinstance(terms, LendingVenue) and terms.flash_fee is not None)):
            return f"{venue} does not flash-lend {token}"
    elif op == "wrap" and token != "ETH":
        return f"wrap takes ETH, not {token}"
    elif op == "unwrap" and token != "WETH":
        return f"unwrap takes WETH, not {token}"
    elif op == "swap" and token == stmt.token_out:
        return f"swap from {token} to itself"
    return None


@rule("SP103", needs_market=True)
def unknown_asset(ctx: RuleContext) -> Iterator[Diagnostic]:
    """Assets must be priced, and venues must list the assets and markets used there."""
    market = ctx.market
    assert market is not None
    flagged: set[int] = set()
    for asset, span in _asset_refs(ctx):
        if not market.knows(asset):
            flagged.add(span.line)
            yield diag("SP103", f"unknown asset {asset}", ctx.at(span, asset),
                       suggest(asset, market.prices) or "the market has no price for it")
    if ctx.plan.holdings:
        for entry in ctx.plan.holdings.entries:
            terms = market.venues.get(entry.venue)
            for amount in entry.amounts:
                if isinstance(terms, CexVenue) and market.knows(amount.asset) and \
                        amount.asset not in terms.assets:
                    yield diag("SP103", f"{entry.venue} does not list {amount.asset}",
                               ctx.at(amount.span, amount.asset))
    for stmt, _ in ctx.instructions():
        if stmt.span.line in flagged:
            continue
        problem = _listing_problem(market, stmt)
        if problem:
            yield diag("SP103", problem, stmt.span)
