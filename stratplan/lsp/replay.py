"""The dry run replayed statement by statement, for hovers: the state each one left.

The dry run is `stratplan lint`'s (the same nodes, the same engine); here it also records,
after each statement's (last) pass, the balances it touched before and after, the health
of every lending venue in use and the gas spent so far, and where it stopped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal

from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.models import Plan
from stratplan.executors.accounts import health_factor
from stratplan.executors.market import LendingVenue, Market
from stratplan.executors.registry import discover
from stratplan.interpreter.dag import DagError, dry_run_nodes, statement_venues
from stratplan.interpreter.engine import Engine, NodeFailed
from stratplan.interpreter.monitor import BOOKS, PositionMonitor


@dataclass
class StateAfter:
    """The simulated state right after a statement's (last) pass in the dry run."""

    node: str
    passes: int
    changes: list[tuple[str, str, str, Decimal, Decimal]]  # book, venue, asset, before, after
    health: dict[str, Decimal | None]
    gas_units: int
    gas_eth: Decimal
    gas_usd: Decimal
    failure: tuple[str, str] | None = None  # code, message


@dataclass
class Replay:
    """The dry run, statement by statement: what each left behind, and where it stopped."""

    states: dict[int, StateAfter] = field(default_factory=dict)
    stopped: tuple[str, str, int] | None = None  # code, message, line
    unavailable: str | None = None  # why there is no dry run


def _view(monitor: PositionMonitor, venues: frozenset[str]) -> dict[tuple[str, str, str], Decimal]:
    every = "*" in venues
    return {(book, venue, asset): value for book in BOOKS
            for (venue, asset), value in monitor.books[book].items() if every or venue in venues}


def _health(monitor: PositionMonitor, market: Market) -> dict[str, Decimal | None]:
    used = monitor.venues("collateral") | monitor.venues("debt")
    return {venue: health_factor(monitor, market, venue) for venue in sorted(used)
            if isinstance(market.venues.get(venue), LendingVenue)}


async def _replay_nodes(engine: Engine, plan: Plan, replay: Replay) -> None:
    monitor = engine.monitor
    for node in dry_run_nodes(plan, engine.scope):
        stmt = node.statement
        venues = statement_venues(stmt) if stmt.kind != "assert" else frozenset()
        before = _view(monitor, venues)
        failure: NodeFailed | None = None
        try:
            await engine.execute(node)
        except NodeFailed as failed:
            failure = failed
        after = _view(monitor, venues)
        changes = [(book, venue, asset, before.get(key, Decimal(0)), after.get(key, Decimal(0)))
                   for key in sorted(set(before) | set(after))
                   for book, venue, asset in [key] if before.get(key) != after.get(key)]
        previous = replay.states.get(id(stmt))
        replay.states[id(stmt)] = StateAfter(
            node.id, (previous.passes if previous else 0) + 1, changes,
            _health(monitor, engine.market), monitor.gas_units, monitor.gas_eth,
            monitor.gas_usd, (failure.code, failure.message) if failure else None)
        if failure is not None:
            replay.stopped = (failure.code, failure.message, failure.span.line)
            return


def replay_plan(plan: Plan, market: Market) -> Replay:
    """Run the plan's dry run node by node, keeping the state after each statement."""
    replay = Replay()
    with arithmetic():
        engine = Engine(plan, market, discover())
        try:
            asyncio.run(_replay_nodes(engine, plan, replay))
        except DagError as exc:
            replay.unavailable = f"the plan cannot be unrolled: {exc}"
        except Exception as exc:  # a hover must never take the server down
            replay.unavailable = f"the dry run failed: {type(exc).__name__}: {exc}"
    return replay

