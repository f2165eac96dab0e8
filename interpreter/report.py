"""The run report (LANGUAGE.md section 7) as plain data, ready for JSON or tables."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stratplan.dsl.models import Plan
from stratplan.executors.accounts import exposure, health_factor, portfolio_value
from stratplan.executors.ledger import Book
from stratplan.executors.market import LendingVenue, Market
from stratplan.interpreter.dag import Dag
from stratplan.interpreter.engine import Outcome
from stratplan.interpreter.monitor import PositionMonitor


def dec(value: Decimal) -> str:
    """A decimal string without exponent or trailing zeros."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


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


def health_table(monitor: PositionMonitor, market: Market) -> dict[str, str | None]:
    """Health factor of every lending venue the run used (None: no debt, infinite)."""
    result: dict[str, str | None] = {}
    used = monitor.venues("collateral") | monitor.venues("debt")
    for venue in sorted(used):
        if isinstance(market.venues.get(venue), LendingVenue):
            health = health_factor(monitor, market, venue)
            result[venue] = None if health is None else dec(health)
    return result


def exposures(monitor: PositionMonitor, market: Market) -> dict[str, str]:
    """Net exposure per underlying asset held anywhere."""
    assets: set[str] = set()
    books: tuple[Book, ...] = ("balance", "collateral", "debt", "position")
    for book in books:
        for venue in monitor.venues(book):
            for key in monitor.items(book, venue):
                assets.add(market.underlying(key.split("/")[0]))
    return {asset: dec(exposure(monitor, market, asset)) for asset in sorted(assets)}


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
        "exposure": exposures(monitor, market),
        "gas": {"units": monitor.gas_units, "eth": dec(monitor.gas_eth),
                "usd": dec(monitor.gas_eth * eth_price)},
        "fees_usd": dec(monitor.cost("fee")),
        "slippage_usd": dec(monitor.cost("slippage")),
        "value_usd": {"start": dec(start_value), "end": dec(portfolio_value(monitor, market))},
    }
