"""The run report (LANGUAGE.md section 7) as plain data, ready for JSON or tables.

Every amount is a decimal string with every digit the run computed; the text report rounds
them for reading (stratplan/runview.py). The numbers come from `executors.accounts` and
`executors.rates`, the same functions the executors and the state functions use.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stratplan.dsl.decimals import json_number
from stratplan.dsl.models import Plan
from stratplan.executors.accounts import (
    collateral_liquidation_price,
    exposed_assets,
    exposure,
    lending_account,
    perp_positions,
    portfolio_value,
)
from stratplan.executors.ledger import Book
from stratplan.executors.market import LendingVenue, Market
from stratplan.executors.oracle import oracle_price
from stratplan.executors.rates import carry
from stratplan.interpreter.dag import Dag
from stratplan.interpreter.engine import Outcome
from stratplan.interpreter.monitor import PositionMonitor


def dec(value: Decimal) -> str:
    """A decimal string for JSON: no exponent, no trailing zeros, at most 40 significant
    digits (LANGUAGE.md section 9)."""
    return json_number(value)


def _books(monitor: PositionMonitor, book: Book) -> dict[str, dict[str, str]]:
    return {venue: {asset: dec(v) for asset, v in assets.items()}
            for venue, assets in monitor.by_venue(book).items()}


def _by_part(monitor: PositionMonitor, book: Book, part: int) -> dict[str, dict[str, str]]:
    """Perp books are keyed by BASE/QUOTE; the report groups by one side of the pair."""
    grouped: dict[str, dict[str, Decimal]] = {}
    for venue, pairs in monitor.by_venue(book).items():
        for pair, amount in pairs.items():
            key = pair.split("/")[part]
            grouped.setdefault(venue, {})
            grouped[venue][key] = grouped[venue].get(key, Decimal(0)) + amount
    return {venue: {k: dec(v) for k, v in sorted(items.items()) if v}
            for venue, items in sorted(grouped.items()) if any(items.values())}


def _optional(value: Decimal | None) -> str | None:
    return None if value is None else dec(value)


def _lending_venues(monitor: PositionMonitor, market: Market) -> list[str]:
    used = monitor.venues("collateral") | monitor.venues("debt")
    return [venue for venue in sorted(used) if isinstance(market.venues.get(venue), LendingVenue)]


def health_table(monitor: PositionMonitor, market: Market) -> dict[str, str | None]:
    """Health factor of every lending venue the run used (None: no debt, infinite)."""
    return {venue: _optional(lending_account(monitor, market, venue).health)
            for venue in _lending_venues(monitor, market)}


def lending_table(monitor: PositionMonitor, market: Market) -> dict[str, dict[str, Any]]:
    """Each lending account: e-mode in use, health, what it may still borrow (USD, under the
    e-mode in use), collateral and debt in USD at the venue's oracle prices, leverage
    (collateral / equity), the oracle price of each collateral asset, others fixed, at which
    health reaches 1, and (v3) each collateral's oracle and market price side by side."""
    table: dict[str, dict[str, Any]] = {}
    for venue in _lending_venues(monitor, market):
        account = lending_account(monitor, market, venue)
        held = sorted(monitor.items("collateral", venue))
        prices = {asset: collateral_liquidation_price(monitor, market, venue, asset)
                  for asset in held}
        table[venue] = {
            "emode": account.emode, "health": _optional(account.health),
            "borrow_capacity_usd": dec(account.borrow_room_usd),
            "collateral_usd": dec(account.collateral_usd), "debt_usd": dec(account.debt_usd),
            "leverage": _optional(account.leverage),
            "liquidation_price": {asset: dec(price) for asset, price in prices.items()
                                  if price is not None},
            "prices": {asset: {"oracle": dec(oracle_price(market, venue, asset)),
                               "market": dec(market.price(asset))} for asset in held}}
    return table


def perps_table(monitor: PositionMonitor, market: Market) -> dict[str, dict[str, Any]]:
    """Each open perp by venue and BASE (BASE/QUOTE when a venue has two quotes for one
    BASE): size, entry and mark price, unrealised PnL and margin (in the quote asset),
    liquidation price (None: no price liquidates it) and leverage (notional / equity)."""
    table: dict[str, dict[str, Any]] = {}
    positions = perp_positions(monitor, market)
    for perp in positions:
        twin = sum(1 for p in positions if p.venue == perp.venue and p.base == perp.base) > 1
        table.setdefault(perp.venue, {})[perp.pair if twin else perp.base] = {
            "size": dec(perp.size), "quote": perp.quote, "entry_price": dec(perp.entry_price),
            "mark_price": dec(perp.mark_price), "unrealised_pnl": dec(perp.unrealised_pnl),
            "margin": dec(perp.margin), "liquidation_price": _optional(perp.liquidation_price),
            "leverage": _optional(perp.leverage)}
    return table


def carry_table(monitor: PositionMonitor, market: Market, end_value: Decimal) -> dict[str, Any]:
    """Projected yearly income at the market's rates, in USD, and as APR of the end value
    (after a backtest, the market of the last step: the series' rates in force there)."""
    income = carry(monitor, market)
    return {"funding_usd": dec(income.funding_usd), "supply_usd": dec(income.supply_usd),
            "borrow_usd": dec(income.borrow_usd), "staking_usd": dec(income.staking_usd),
            "total_usd": dec(income.total_usd), "apr": _optional(income.apr(end_value))}


def exposures(monitor: PositionMonitor, market: Market) -> dict[str, str]:
    """Net exposure per underlying asset held anywhere (posted margin included)."""
    return {asset: dec(exposure(monitor, market, asset))
            for asset in sorted(exposed_assets(monitor, market))}


def build_report(plan: Plan, dag: Dag, outcome: Outcome, monitor: PositionMonitor,
                 market: Market, start_value: Decimal) -> dict[str, Any]:
    """The JSON report of a run."""
    failure = outcome.failure
    not_run: list[str] = []
    if len(outcome.steps) < len(dag.nodes):  # every node has a step when the run got through
        done = {step.node for step in outcome.steps}
        not_run = [node.id for node in dag.nodes if node.id not in done]
    # Steps of one statement share its gas Decimal: format each distinct value once.
    gas_texts: dict[Decimal, str] = {}

    def gas_text(value: Decimal) -> str:
        text = gas_texts.get(value)
        if text is None:
            text = gas_texts[value] = dec(value)
        return text

    eth_price = market.prices.get("ETH", Decimal(0))
    end_value = portfolio_value(monitor, market)
    return {
        "plan": plan.name,
        "status": "failed" if failure else "ok",
        "failed_node": failure.node if failure else None,
        "failure": None if failure is None else {
            "node": failure.node, "line": failure.span.line, "column": failure.span.column,
            "code": failure.code, "message": failure.message},
        "steps": [{"node": s.node, "line": s.line, "status": s.status,
                   "gas_eth": gas_text(s.gas_eth)} for s in outcome.steps],
        "completed": outcome.completed,
        "not_run": not_run,
        "warnings": [{"code": c, "message": m, "line": span.line, "node": n}
                     for c, m, span, n in outcome.warnings],
        "balances": _books(monitor, "balance"),
        "collateral": _books(monitor, "collateral"),
        "debt": _books(monitor, "debt"),
        "positions": _by_part(monitor, "position", 0),
        "margin": _by_part(monitor, "margin", 1),
        "health": health_table(monitor, market),
        "perps": perps_table(monitor, market),
        "lending": lending_table(monitor, market),
        "exposure": exposures(monitor, market),
        "gas": {"units": monitor.gas_units, "eth": dec(monitor.gas_eth),
                "usd": dec(monitor.gas_eth * eth_price)},
        "fees_usd": dec(monitor.cost("fee")),
        "slippage_usd": dec(monitor.cost("slippage")),
        "value_usd": {"start": dec(start_value), "end": dec(end_value)},
        "carry": carry_table(monitor, market, end_value),
    }
