"""`stratplan backtest --executor evm`: a plan over a short series with its on-chain nodes
on the local chain (docs/evm.md, "Backtests").

The phases run at the series' first time, as `run --executor evm` runs them. Then, for each
later row (LANGUAGE.md section 8, with the chain as the venue):

1. time moves on the chain by the row's interval, and the row's prices, exchange rates and
   oracle feeds take effect in the market and on the chain's feeds, tokens and DEX;
2. interest accrues on the chain — Aave's indexes, at the APRs in force during the interval
   (the previous row's) — and the row's APRs are set on its reserves from now on; the
   ledger's collateral and debt become the chain's; funding settles on the CEXs' perps as
   in `backtest` (simulated venues);
3. while an account's health is below 1, a liquidator account calls Aave's
   `liquidationCall` on it, for the debt and collateral the model's liquidator chooses
   (executors/liquidation.py) and the amount it repays, or all Aave allows when that call
   takes a whole debt or a whole collateral; Aave burns bad debt itself; a perp below its
   maintenance margin is closed as in `backtest`;
4. triggers fire as in `backtest`, each firing's on-chain nodes one transaction each;
5. a snapshot: value, health (the model's formula on the chain's amounts, and Aave's).

The report is the run report at the last row (`final`) with a summary, every event, each
step's value and health, and the chain section (every transaction, every difference).
It does not attribute PnL: `backtest` without `--executor` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.models import Plan
from stratplan.executors.accounts import lending_account, portfolio_value
from stratplan.executors.liquidation import liquidate_perp, next_call
from stratplan.executors.market import LendingVenue, Market
from stratplan.interpreter.chain.run import ChainEngine, Transaction, chain_section
from stratplan.interpreter.dag import build_dag
from stratplan.interpreter.report import build_report, dec
from stratplan.interpreter.series.read import Series, iso
from stratplan.interpreter.time.backtest import Backtest
from stratplan.interpreter.time.metrics import event_row
from stratplan.interpreter.time.results import PARTS, Event, firing_event
from stratplan.interpreter.time.triggers import TriggerState, due, trigger_phase

MAX_CALLS = 50  # liquidation calls at one venue in one step (the model's guard is 1000)
ZERO = Decimal(0)


@dataclass
class ChainLiquidation:
    """One liquidation call on the chain, and what the model's liquidator expected."""

    time: int
    venue: str
    debt: str
    collateral: str
    repaid: Decimal
    seized: Decimal
    model_repaid: Decimal
    model_seized: Decimal
    gas_used: int
    tx_hash: str


@dataclass
class ChainBacktest:
    """The result: the report, the transactions and the liquidation calls."""

    report: dict[str, Any]
    transactions: list[Transaction] = field(default_factory=list)
    liquidations: list[ChainLiquidation] = field(default_factory=list)


def backtest_on_chain(plan: Plan, market: Market, series: Series, executor: Any) -> ChainBacktest:
    """Run the plan over the series with `executor` (an EvmExecutor) as its chain."""
    with arithmetic():
        return _backtest(plan, market, series, executor)


def _backtest(plan: Plan, market: Market, series: Series, executor: Any) -> ChainBacktest:
    bt = Backtest(plan, market, series, executors={})
    bt.apply_row(0)
    market, monitor = bt.market, bt.monitor
    world = executor.world_for(market)
    runner = ChainEngine(plan, market, executor, monitor)
    scope = runner.engine.state_scope
    start_value = portfolio_value(monitor, market)
    dag = build_dag(plan, runner.engine.scope)
    phases = runner.run(dag)
    result = SimpleNamespace(events=[], firings={t.name: 0 for t in plan.triggers})
    liquidations: list[ChainLiquidation] = []
    steps = [_step(series.times[0], monitor, market, executor)]
    differences: list[dict[str, Any]] = []
    if phases.failure is None:
        states = [TriggerState(t, series.times[0]) for t in plan.triggers]
        dags: dict[str, Any] = {}
        for row in range(1, len(series.times)):
            now = series.times[row]
            world.chain.advance((now - series.times[row - 1]) // 1000)
            bt.apply_row(row)
            # The model's step 2 settles funding on the CEXs' perps (and accrues the lending
            # books, which the chain's amounts then replace).
            bt.accrue(row, dict.fromkeys(PARTS, ZERO))
            world.set_prices(market)
            world.set_lending_rates(market, {(venue, asset) for book in ("collateral", "debt")
                                             for venue in monitor.venues(book)
                                             for asset in monitor.items(book, venue)})
            executor.sync_positions(monitor)
            step = _step(now, monitor, market, executor)  # min_health reads it
            calls, events = len(liquidations), len(result.events)
            for venue, terms in market.venues.items():
                if isinstance(terms, LendingVenue) and venue in world.pools:
                    liquidations += _liquidate(world, executor, monitor, market, venue, now,
                                               result.events, differences)
            for venue in sorted(monitor.venues("position")):  # the CEXs' own, simulated
                for pair in sorted(monitor.items("position", venue)):
                    closed = liquidate_perp(monitor, market, venue, pair)
                    if closed is not None:
                        result.events.append(Event(now, "liquidation", venue, None, None, None,
                                                   closed.message, closed.loss_usd))
            for state in states:
                if due(state, now, scope, result):
                    _fire(runner, plan, state.trigger, now, dags, result)
            if len(liquidations) != calls or len(result.events) != events:
                step = {**_step(now, monitor, market, executor),
                        "health_before": step["health"]}
            steps.append(step)
    final = build_report(plan, dag, phases, monitor, market, start_value)
    chain = chain_section(runner.transactions)
    chain["differences"] = differences + chain["differences"]
    chain["liquidations"] = [{"time": iso(c.time), "venue": c.venue, "debt": c.debt,
                              "collateral": c.collateral, "repaid": dec(c.repaid),
                              "seized": dec(c.seized), "model_repaid": dec(c.model_repaid),
                              "model_seized": dec(c.model_seized), "gas_used": c.gas_used,
                              "hash": c.tx_hash} for c in liquidations]
    end_value = steps[-1]["value"]
    failed = phases.failure is not None or any(e.kind == "failure" for e in result.events)
    healths = [h["model"] for s in steps for table in (s["health"], s.get("health_before", {}))
               for h in table.values() if h["model"] is not None]
    report = {
        "plan": plan.name, "status": "failed" if failed else "ok",
        "start": iso(series.times[0]), "end": iso(series.times[-1]), "steps": len(steps),
        "summary": {"value_start": dec(start_value), "value_end": end_value,
                    "return": dec(Decimal(end_value) / start_value - 1) if start_value else None,
                    "min_health": min(healths, key=Decimal) if healths else None,
                    "liquidations": len(liquidations), "firings": result.firings},
        "events": [event_row(e) for e in result.events],
        "snapshots": steps, "final": final, "chain": chain}
    return ChainBacktest(report, runner.transactions, liquidations)


def _step(now: int, monitor: Any, market: Market, executor: Any) -> dict[str, Any]:
    """A snapshot: value at market prices, and each lending venue's health (the model's
    formula on the chain's amounts, and Aave's getUserAccountData)."""
    world = executor.world
    health = {}
    for venue in world.pools:
        account = lending_account(monitor, market, venue)
        chain = executor.health(venue)
        health[venue] = {"model": None if account.health is None else dec(account.health),
                         "chain": None if chain is None else dec(chain)}
    return {"time": iso(now), "value": dec(portfolio_value(monitor, market)), "health": health}


def _liquidate(world: Any, executor: Any, monitor: Any, market: Market, venue: str, now: int,
               events: list[Any], differences: list[dict[str, Any]]) -> list[ChainLiquidation]:
    """Step 3 on the chain: the model's liquidator's calls, made by a liquidator account."""
    from stratplan.executors.evm.world import from_wei, liquidation_call

    done: list[ChainLiquidation] = []
    for _ in range(MAX_CALLS):
        call = next_call(monitor, market, venue)
        if call is None:
            break
        owed = monitor.get("debt", venue, call.debt)
        held = monitor.get("collateral", venue, call.collateral)
        whole = call.repaid >= owed or call.seized >= held
        sent = liquidation_call(world, venue, call.collateral, call.debt,
                                None if whole else call.repaid)
        if not sent.ok:
            differences.append({"node": None, "line": None, "difference":
                                f"liquidation: at {iso(now)} the model's liquidator repays "
                                f"{call.repaid} {call.debt}; Aave refuses: {sent.error}"})
            break
        repaid, seized = from_wei(sent.repaid), from_wei(sent.seized)
        done.append(ChainLiquidation(now, venue, call.debt, call.collateral, repaid, seized,
                                     call.repaid, call.seized, sent.gas_used, sent.tx_hash))
        before = portfolio_value(monitor, market)
        executor.sync_positions(monitor)
        loss = before - portfolio_value(monitor, market)
        events.append(Event(now, "liquidation", venue, None, None, None,
                            f"{venue} liquidated on chain: {repaid} {call.debt} repaid, "
                            f"{seized} {call.collateral} seized", loss, None,
                            call.collateral, call.debt, repaid, seized))
    return done


def _fire(runner: ChainEngine, plan: Plan, trigger: Any, now: int, dags: dict[str, Any],
          result: Any) -> None:
    """One firing: the trigger's nodes, each on-chain one a transaction."""
    result.firings[trigger.name] += 1
    sub = dags.get(trigger.name)
    if sub is None:
        sub = dags[trigger.name] = build_dag(trigger_phase(plan, trigger), runner.engine.scope)
    outcome = runner.run(sub)
    result.events.append(firing_event(trigger, now, outcome, iso(now)))
