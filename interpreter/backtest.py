"""The backtest: a plan's phases, then its triggers, run step by step over a series.

LANGUAGE.md section 8. The phases run at the series' first time, as in v1. Then, for each
later time t (the seed's `_process_timestep`: snapshot -> exposure -> risk -> pnl ->
decision -> execute -> store, with the decisions written in the plan as triggers):
1. prices and rates of row t take effect;
2. accrual over Δt at the previous row's APRs (executors/accrual.py), funding settlements;
3. liquidations (executors/liquidation.py);
4. triggers in file order (interpreter/triggers.py), each firing a DAG of its own;
5. a snapshot: value, health per venue, exposure per asset, and the PnL parts.

PnL attribution: each step's value change is split into its parts (staking growth from
`rate`, supply and borrow interest, funding, liquidation losses, trading fees, gas,
slippage); the price part is what is left, so the parts add up exactly to end - start
(sums are taken at a precision that loses no digit).
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.models import (
    AtomicBlock,
    CEXTradeInstruction,
    Phase,
    Plan,
    SmartContractInstruction,
)
from stratplan.dsl.performance import paused_gc
from stratplan.dsl.spans import Span
from stratplan.executors import accrual
from stratplan.executors.accounts import exposure, health_factor, portfolio_value
from stratplan.executors.ledger import Book
from stratplan.executors.liquidation import Liquidation, liquidate
from stratplan.executors.market import AssetInfo, CexVenue, Market
from stratplan.executors.protocol import Executor
from stratplan.executors.registry import discover
from stratplan.interpreter.dag import Dag, DagError, build_dag
from stratplan.interpreter.engine import Engine, Outcome, run_sync
from stratplan.interpreter.series import Column, Series, iso
from stratplan.interpreter.triggers import TriggerState, due, trigger_phase

ZERO = Decimal(0)
PARTS = ("price", "funding", "supply_interest", "borrow_interest", "staking", "fees", "gas",
         "slippage", "liquidations")
# Attribution sums: exact for any number of 40-digit terms of the range plans allow.
_EXACT = decimal.Context(prec=400, Emax=999_999, Emin=-999_999)
HOUR_MS = 3_600_000


@dataclass
class Event:
    """A firing, a failed firing or a liquidation, at a time."""

    time: int
    kind: str                       # firing, failure, liquidation
    name: str                       # the trigger, or the venue
    node: str | None = None
    line: int | None = None
    code: str | None = None
    message: str = ""
    loss_usd: Decimal | None = None
    span: Span | None = None


@dataclass
class Snapshot:
    """Step 5: the state after a step."""

    time: int
    value: Decimal
    health: dict[str, Decimal | None]
    exposure: dict[str, Decimal]
    parts: dict[str, Decimal]


@dataclass
class Notice:
    """A diagnostic the backtest found for lint: code, message, where."""

    code: str
    message: str
    span: Span


@dataclass
class BacktestResult:
    """Everything a backtest report needs."""

    plan: Plan
    series: Series
    market: Market
    engine: Engine
    phases: Outcome
    dag: Dag
    snapshots: list[Snapshot] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    firings: dict[str, int] = field(default_factory=dict)
    pnl: dict[str, Decimal] = field(default_factory=dict)
    value_start: Decimal = ZERO
    value_end: Decimal = ZERO

    @property
    def failed(self) -> bool:
        """True when the phases or a firing failed."""
        return self.phases.failure is not None or any(e.kind == "failure" for e in self.events)


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def market_rate(market: Market, kind: str, venue: str, asset: str) -> Decimal | None:
    """The market's constant rate (`rates:` of the market v2): funding per interval,
    supply or borrow APR, or staking APR (venue ignored); None when it has none."""
    rates = getattr(market, "rates", None)
    if rates is None:
        return None
    if kind == "funding":
        value = _get(_get(_get(rates, "funding"), venue), asset)
    elif kind == "staking":
        value = _get(_get(rates, "staking"), asset)
    else:
        value = _get(_get(_get(_get(rates, "lending"), venue), kind), asset)
    return Decimal(value) if value is not None else None


def funding_interval_ms(market: Market, venue: str) -> int:
    """The venue's funding interval in milliseconds (8 hours when the market does not say)."""
    value = getattr(market.venues.get(venue), "funding_interval", None)
    if value is None:
        return 8 * HOUR_MS
    if isinstance(value, (int, Decimal)):
        return int(Decimal(value) * 1000)  # seconds
    text = str(value).strip()
    units = {"s": 1000, "m": 60_000, "h": HOUR_MS, "d": 24 * HOUR_MS, "w": 168 * HOUR_MS}
    if text and text[-1] in units:
        return int(Decimal(text[:-1]) * units[text[-1]])
    return int(Decimal(text) * 1000)


def _instruction_spans(plan: Plan) -> dict[tuple[str, str, str], Span]:
    """(book, venue, asset) -> the first instruction in the file that opens it: a perp
    position, a supply, a borrow (for SP503 and SP501)."""
    found: dict[tuple[str, str, str], Span] = {}
    bodies = [p.body for p in plan.phases] + [t.body for t in getattr(plan, "triggers", ())]
    stack: list[Any] = [s for body in bodies for s in body]
    stack.reverse()
    while stack:
        stmt = stack.pop()
        inner = getattr(stmt, "body", None)
        if inner is not None:
            stack.extend(reversed(inner))
            continue
        key = _opens(stmt)
        if key is not None and key not in found:
            found[key] = stmt.span
    return found


def _opens(stmt: Any) -> tuple[str, str, str] | None:
    if isinstance(stmt, CEXTradeInstruction) and stmt.market == "perp":
        return ("position", stmt.venue, stmt.pair)
    if isinstance(stmt, SmartContractInstruction) and stmt.venue is not None:
        if stmt.operation == "supply":
            return ("collateral", stmt.venue, stmt.token_in)
        if stmt.operation == "borrow":
            return ("debt", stmt.venue, stmt.token_in)
    return None


class Backtest:
    """One backtest run: the state, the series cursor and the report being built."""

    def __init__(self, plan: Plan, market: Market, series: Series,
                 executors: Mapping[str, Executor] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.plan, self.series, self.progress = plan, series, progress
        # A market of our own whose prices and rates change step by step; the engine and
        # every scope hold it, so they see each step's prices without being rebuilt.
        self.base = market
        self.market = market.model_copy(update={"prices": dict(market.prices),
                                                "assets": dict(market.assets)})
        self.engine = Engine(plan, self.market, executors if executors is not None else discover())
        self.monitor = self.engine.monitor
        self.spans = _instruction_spans(plan)
        self.last_opened: dict[tuple[str, str, str], Span] = {}
        self.insolvent: set[str] = set()
        self.missing_reported: set[tuple[str, str, str]] = set()
        self.notices: list[Notice] = []
        self.start_ms = series.times[0]
        self.price_cols = {c.key[0]: c for c in series.by_kind("price")}
        self.rate_cols = {c.key[0]: c for c in series.by_kind("rate")}
        self.base_rates = {asset: info.rate for asset, info in market.assets.items()}

    # --- step 1: prices and rates ---------------------------------------------------------
    def apply_row(self, row: int) -> None:
        """Prices and asset rates of the row take effect."""
        market, prices, assets = self.market, self.market.prices, self.market.assets
        elapsed = accrual.years(self.series.times[row] - self.start_ms)
        for asset, info in self.base.assets.items():
            col = self.rate_cols.get(asset)
            value = col.value(row) if col is not None else None
            if value is None:
                apr = market_rate(self.base, "staking", "", asset)
                value = self.base_rates[asset] * (1 + apr * elapsed) if apr else info.rate
            if value != assets[asset].rate:
                assets[asset] = AssetInfo(underlying=info.underlying, rate=value)
        for asset, col in self.price_cols.items():
            value = col.value(row)
            if value is not None:
                prices[asset] = value
        for asset, info in assets.items():
            if asset not in self.price_cols and info.underlying in prices \
                    and asset in prices and asset in self.base.prices:
                # Derived: price(underlying) * rate, once the underlying moved or the rate grew.
                if info.underlying in self.price_cols or info.rate != self.base_rates[asset]:
                    prices[asset] = prices[info.underlying] * info.rate
        del market

    # --- step 2: accrual --------------------------------------------------------------------
    def _apr(self, kind: str, venue: str, asset: str, row: int) -> Decimal:
        col = self.series.column(kind, venue, asset)
        value = col.value(row) if col is not None else None
        if value is not None:
            return value
        book = "collateral" if kind == "supply" else "debt"
        return self._fallback(kind, (book, venue, asset))

    def _fallback(self, kind: str, key: tuple[str, str, str]) -> Decimal:
        _, venue, asset = key
        base = asset.split("/")[0]
        constant = market_rate(self.base, kind, venue, base)
        if key not in self.missing_reported:
            self.missing_reported.add(key)
            what = {"supply": f"supply APR of {asset} at {venue}",
                    "borrow": f"borrow APR of {asset} at {venue}",
                    "funding": f"funding rate of the {asset} perp at {venue}"}[kind]
            column = f"{kind}.{venue}.{base}"
            used = (f"the market's constant {constant.normalize():f}" if constant is not None
                    else "zero (the market has no rate for it either)")
            span = self.spans.get(key) or self.plan.span
            self.notices.append(Notice("SP503", f"the series has no `{column}` column: the "
                                       f"{what} is {used}", span))
        return constant or ZERO

    def accrue(self, row: int, parts: dict[str, Decimal]) -> None:
        """Interest over the interval before `row` at the previous row's APRs; funding."""
        monitor, market = self.monitor, self.market
        dt = accrual.years(self.series.times[row] - self.series.times[row - 1])
        for venue in sorted(monitor.venues("collateral")):
            for asset in sorted(monitor.items("collateral", venue)):
                apr = self._apr("supply", venue, asset, row - 1)
                units = accrual.accrue_supply(monitor, venue, asset, apr, dt)
                parts["supply_interest"] += units * market.price(asset)
        for venue in sorted(monitor.venues("debt")):
            for asset in sorted(monitor.items("debt", venue)):
                apr = self._apr("borrow", venue, asset, row - 1)
                units = accrual.accrue_borrow(monitor, venue, asset, apr, dt)
                parts["borrow_interest"] -= units * market.price(asset)
        for venue in sorted(monitor.venues("position")):
            for pair in sorted(monitor.items("position", venue)):
                base, quote = pair.split("/")
                col = self.series.column("funding", venue, base)
                settlements: list[Decimal] = []
                if col is not None:
                    value = col.value(row)
                    if value is not None:
                        settlements.append(value)
                else:
                    rate = self._fallback("funding", ("position", venue, pair))
                    interval = funding_interval_ms(self.base, venue)
                    crossed = (self.series.times[row] // interval
                               - self.series.times[row - 1] // interval)
                    if rate and crossed > 0:
                        settlements = [rate] * int(crossed)
                mark = market.price(base) / market.price(quote)
                for rate in settlements:
                    received = accrual.settle_funding(monitor, venue, pair, rate, mark)
                    parts["funding"] += received * market.price(quote)

    def note_missing(self) -> None:
        """SP503 for what the plan now holds that the series has no rate for."""
        monitor = self.monitor
        pairs: tuple[tuple[Book, str], ...] = (("collateral", "supply"), ("debt", "borrow"))
        for book, kind in pairs:
            for venue in monitor.venues(book):
                for asset in monitor.items(book, venue):
                    if self.series.column(kind, venue, asset) is None:
                        self._fallback(kind, (book, venue, asset))
        for venue in monitor.venues("position"):
            for pair in monitor.items("position", venue):
                if self.series.column("funding", venue, pair.split("/")[0]) is None:
                    self._fallback("funding", ("position", venue, pair))

    # --- firing ------------------------------------------------------------------------------
    def track(self, dag: Dag, outcome: Outcome) -> None:
        """Remember the instruction that last increased each debt or position (SP501)."""
        done = set(outcome.completed)
        for node in dag.nodes:
            if node.id not in done:
                continue
            stmt = node.statement
            ops = stmt.body if isinstance(stmt, AtomicBlock) else (stmt,)
            for op in ops:
                key = _opens(op)
                if key is not None and key[0] != "collateral":
                    self.last_opened[key] = op.span

    def liquidation_span(self, event: Liquidation) -> Span:
        """Where SP501 is reported: the instruction that last increased the debt or position."""
        book = "position" if event.kind == "perp" else "debt"
        key = (book, event.venue, event.asset)
        return self.last_opened.get(key) or self.spans.get(key) or self.plan.span


def _cost_parts(backtest: Backtest) -> tuple[Decimal, Decimal, Decimal]:
    monitor = backtest.monitor
    return monitor.cost("fee"), monitor.cost("slippage"), monitor.gas_eth


def _run_dag(engine: Engine, dag: Dag) -> Outcome:
    """Dispatch a DAG; without an event loop when no executor must be awaited."""
    prepare = engine._prepare
    if all(prepare(node.statement).immediate is not None for node in dag.nodes):
        coroutine = engine.run_concurrent(dag)
        try:
            coroutine.send(None)
        except StopIteration as done:
            result: Outcome = done.value
            return result
        coroutine.close()  # pragma: no cover - immediate nodes never await
        raise RuntimeError("an immediate DAG awaited")
    result = run_sync(engine.run_concurrent(dag))
    return result


def start_market(plan: Plan, market: Market, series: Series) -> Market:
    """The market at the series' first time (step 1 of row 0): what the phases see, for
    `stratplan run --series` (LANGUAGE.md section 8: the phases run at the first time)."""
    with arithmetic():
        bt = Backtest(plan, market, series, executors={})
        bt.apply_row(0)
        return bt.market


def run_backtest(plan: Plan, market: Market, series: Series,
                 executors: Mapping[str, Executor] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> BacktestResult:
    """Run the plan over the series (LANGUAGE.md section 8); DagError when the plan cannot
    be turned into a DAG (the static rules say why)."""
    with paused_gc(), arithmetic():
        return _run(plan, market, series, executors, progress)


def _snapshot(bt: Backtest, time: int, parts: dict[str, Decimal]) -> Snapshot:
    monitor, market = bt.monitor, bt.market
    value = portfolio_value(monitor, market)
    health = {venue: health_factor(monitor, market, venue)
              for venue in sorted(monitor.venues("debt") | monitor.venues("collateral"))
              if venue in market.venues and market.venues[venue].kind == "lending"}
    bases = sorted({market.underlying(a) for book in ("balance", "collateral", "debt")
                    for venue in monitor.venues(book)
                    for a in monitor.items(book, venue)}
                   | {pair.split("/")[0] for venue in monitor.venues("position")
                      for pair in monitor.items("position", venue)})
    exposures = {base: exposure(monitor, market, base) for base in bases
                 if base not in ("USD", "USDT", "USDC")}
    return Snapshot(time, value, health, exposures, parts)


def _run(plan: Plan, market: Market, series: Series,
         executors: Mapping[str, Executor] | None,
         progress: Callable[[int, int], None] | None) -> BacktestResult:
    bt = Backtest(plan, market, series, executors, progress)
    engine, monitor = bt.engine, bt.monitor
    bt.apply_row(0)
    start_value = portfolio_value(monitor, bt.market)
    fees0, slip0, gas0 = _cost_parts(bt)
    dag = build_dag(plan, engine.scope)
    phases = _run_dag(engine, dag)
    result = BacktestResult(plan, series, bt.market, engine, phases, dag, notices=bt.notices)
    result.value_start = start_value
    triggers = list(getattr(plan, "triggers", ()))
    result.firings = {t.name: 0 for t in triggers}
    totals = dict.fromkeys(PARTS, ZERO)
    fees1, slip1, gas1 = _cost_parts(bt)
    first = dict.fromkeys(PARTS, ZERO)
    first["fees"], first["slippage"] = -(fees1 - fees0), -(slip1 - slip0)
    first["gas"] = -(gas1 - gas0) * bt.market.price("ETH") if gas1 != gas0 else ZERO
    snap = _snapshot(bt, series.times[0], first)
    first["price"] = _EXACT.subtract(_EXACT.subtract(snap.value, start_value),
                                     _sum(first, skip="price"))
    result.snapshots.append(snap)
    _add(totals, first)
    bt.track(dag, phases)
    if phases.failure is not None:
        result.value_end = snap.value
        result.pnl = _final_pnl(totals, result.value_end - start_value)
        return result
    bt.note_missing()
    states = [TriggerState(t, bt.start_ms) for t in triggers]
    dags: dict[str, Dag] = {}
    times = series.times
    total = len(times)
    previous = snap.value
    for row in range(1, total):
        now = times[row]
        parts = dict.fromkeys(PARTS, ZERO)
        old_rates = {a: i.rate for a, i in bt.market.assets.items()}
        old_underlying = {a: bt.market.prices.get(i.underlying) for a, i in bt.market.assets.items()}
        bt.apply_row(row)
        _staking(bt, old_rates, old_underlying, parts)
        bt.accrue(row, parts)
        for event in liquidate(monitor, bt.market, bt.insolvent):
            span = bt.liquidation_span(event)
            parts["liquidations"] -= event.loss_usd
            result.events.append(Event(now, "liquidation", event.venue, None, span.line,
                                       "SP501", event.message, event.loss_usd, span))
        for state in states:
            if not due(state, now, engine.state_scope, result, bt):
                continue
            trigger = state.trigger
            result.firings[trigger.name] += 1
            sub = dags.get(trigger.name)
            if sub is None:
                sub = dags[trigger.name] = build_dag(trigger_phase(plan, trigger), engine.scope)
            fees0, slip0, gas0 = _cost_parts(bt)
            outcome = _run_dag(engine, sub)
            fees1, slip1, gas1 = _cost_parts(bt)
            parts["fees"] -= fees1 - fees0
            parts["slippage"] -= slip1 - slip0
            if gas1 != gas0:
                parts["gas"] -= (gas1 - gas0) * bt.market.price("ETH")
            bt.track(sub, outcome)
            stamp = iso(now)
            if outcome.failure is None:
                result.events.append(Event(now, "firing", trigger.name, f"{trigger.name}@{stamp}",
                                           trigger.span.line, None,
                                           f"{len(outcome.steps)} node(s) ran"))
            else:
                failure = outcome.failure
                result.events.append(Event(now, "failure", trigger.name,
                                           f"{failure.node}@{stamp}", failure.span.line,
                                           failure.code, failure.message, None, failure.span))
            bt.note_missing()
        snap = _snapshot(bt, now, parts)
        parts["price"] = _EXACT.subtract(_EXACT.subtract(snap.value, previous),
                                         _sum(parts, skip="price"))
        previous = snap.value
        result.snapshots.append(snap)
        _add(totals, parts)
        if progress is not None:
            progress(row, total)
    result.value_end = previous
    result.pnl = _final_pnl(totals, _EXACT.subtract(result.value_end, start_value))
    return result


def _staking(bt: Backtest, old_rates: dict[str, Decimal],
             old_underlying: dict[str, Decimal | None], parts: dict[str, Decimal]) -> None:
    """Growth of rate-bearing assets' rates: net units * price(underlying) * Δrate."""
    market, monitor = bt.market, bt.monitor
    for asset, info in market.assets.items():
        delta = info.rate - old_rates.get(asset, info.rate)
        if not delta or info.underlying not in market.prices:
            continue
        net = ZERO
        for book, sign in (("balance", 1), ("collateral", 1), ("debt", -1), ("flash", -1)):
            for venue in monitor.venues(book):  # type: ignore[arg-type]
                net += sign * monitor.get(book, venue, asset)  # type: ignore[arg-type]
        if net:
            parts["staking"] += net * market.prices[info.underlying] * delta


def _sum(parts: Mapping[str, Decimal], skip: str) -> Decimal:
    total = ZERO
    for name, value in parts.items():
        if name != skip:
            total = _EXACT.add(total, value)
    return total


def _add(totals: dict[str, Decimal], parts: Mapping[str, Decimal]) -> None:
    for name, value in parts.items():
        totals[name] = _EXACT.add(totals[name], value)


def _final_pnl(totals: dict[str, Decimal], change: Decimal) -> dict[str, Decimal]:
    """The attribution with `price` as the remainder, so the parts sum exactly to `change`."""
    pnl = dict(totals)
    pnl["price"] = _EXACT.subtract(change, _sum(totals, skip="price"))
    pnl["total"] = change
    return pnl


def cex_venues(market: Market) -> list[str]:
    """CEX venue names (for reports)."""
    return [name for name, venue in market.venues.items() if isinstance(venue, CexVenue)]


__all__ = ["BacktestResult", "Event", "Notice", "Snapshot", "run_backtest", "market_rate",
           "start_market",
           "DagError", "Phase", "Column"]
