"""The backtest: a plan's phases, then its triggers, run step by step over a series.

LANGUAGE.md section 8. The phases run at the series' first time, as in v1. Then, for each
later time t (the seed's `_process_timestep`: snapshot -> exposure -> risk -> pnl ->
decision -> execute -> store, with the decisions written in the plan as triggers):
1. prices and rates of row t take effect: prices, exchange rates, oracle prices (v3:
   `oracle.ASSET`), and the funding and lending rates the state functions and the final
   carry read (the market's `rates:` only where the series has no value yet);
2. accrual over Δt at the previous row's APRs (executors/accrual.py), funding settlements;
3. liquidations (executors/liquidation.py: every call a liquidator makes, bad debt written
   off; time/liquidations.py turns them into events, fills and the PnL part), after
   reading each lending venue's health for `min_health`;
4. triggers in file order (interpreter/triggers.py), each firing a DAG of its own;
5. a snapshot: value, health per venue, exposure per asset, and the PnL parts.

Rows where nothing but prices can change (no settlement, rate, trigger time, `when` flip
or liquidation can happen there) are crossed without a step, their snapshots kept at once
(time/quiet.py): the same results, to the last digit, as stepping them.

Every operation that completes adds a fill to the trade log (interpreter/fills.py), stamped
here with its step's time and trigger.

PnL attribution: each step's value change is split into its parts (staking growth from
`rate`, supply and borrow interest, funding, liquidation losses, trading fees, gas,
slippage); the price part is what is left, so the parts add up exactly to end - start
(sums are taken at a precision that loses no digit).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
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
from stratplan.executors.accounts import cex_terms, exposure, health_factor, portfolio_value
from stratplan.executors.ledger import Book
from stratplan.executors.liquidation import Liquidation, liquidate
from stratplan.executors.market import (
    AssetInfo,
    CexVenue,
    LendingRates,
    LendingVenue,
    Market,
    Rates,
)
from stratplan.executors.protocol import Executor
from stratplan.executors.registry import discover
from stratplan.interpreter.dag import Dag, DagError, build_dag
from stratplan.interpreter.engine import Engine, Outcome, seed_holdings
from stratplan.interpreter.monitor import PositionMonitor
from stratplan.interpreter.series.columns import has_none
from stratplan.interpreter.series.read import Column, Series
from stratplan.interpreter.time.accruing import AccruingRows
from stratplan.interpreter.time.attribution import (
    add_parts,
    close_parts,
    final_pnl,
    staking_part,
    sum_parts,
)
from stratplan.interpreter.time.firing import cost_parts, fire, run_dag, stamp
from stratplan.interpreter.time.liquidations import record_liquidations
from stratplan.interpreter.time.quiet import QuietRows
from stratplan.interpreter.time.readings import Readings
from stratplan.interpreter.time.results import (
    EXACT,
    PARTS,
    ZERO,
    BacktestResult,
    Event,
    Notice,
    Snapshot,
    Snapshots,
)
from stratplan.interpreter.time.triggers import (
    TriggerState,
    compile_condition,
    due,
    names_read,
)


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


def _own_rates(rates: Rates) -> Rates:
    """A copy of the market's `rates:` whose tables a backtest may change in place."""
    return Rates.model_construct(
        funding={venue: dict(bases) for venue, bases in rates.funding.items()},
        lending={venue: LendingRates.model_construct(supply=dict(table.supply),
                                                     borrow=dict(table.borrow))
                 for venue, table in rates.lending.items()},
        staking=dict(rates.staking))


def _rate_cells(market: Market, series: Series) -> list[tuple[Column, dict[str, Decimal], str]]:
    """(column, table of `market.rates`, key) for each funding, supply and borrow column
    that names a rate the market can hold (a perp the CEX lists, an asset the lending venue
    takes or lends): step 1 writes the column's value in force into the table.

    A supply or borrow column is held, so its value is that of the last row with one; a
    funding column has values only at settlements, so the rate in force is that of the last
    settlement. Before a column's first value the market's constant stays (LANGUAGE.md
    section 8: what the series lacks comes from the market's `rates:`)."""
    rates = market.rates
    cells: list[tuple[Column, dict[str, Decimal], str]] = []
    for col in series.by_kind("funding"):
        venue, base = col.key
        if market.lists_perp(venue, base):
            cells.append((col, rates.funding.setdefault(venue, {}), base))
    for kind in ("supply", "borrow"):
        for col in series.by_kind(kind):
            venue, asset = col.key
            lender = market.venues.get(venue)
            terms = lender.assets.get(asset) if isinstance(lender, LendingVenue) else None
            if terms is None or (kind == "borrow" and not terms.borrowable):
                continue
            table = rates.lending.get(venue)
            if table is None:
                table = rates.lending[venue] = LendingRates.model_construct(supply={},
                                                                            borrow={})
            cells.append((col, table.supply if kind == "supply" else table.borrow, asset))
    return cells


@dataclass(frozen=True, slots=True)
class _Reads:
    """The columns and derived prices a step applies (`Backtest.apply_row`)."""

    rates: list[tuple[str, AssetInfo, Column | None, Decimal]]
    prices: list[tuple[str, Column]]
    cells: list[tuple[Column, dict[str, Decimal], str]]
    oracles: list[tuple[str, Column]]
    derived: list[tuple[str, str]]


class Backtest:
    """One backtest run: the state, the series cursor and the report being built."""

    def __init__(self, plan: Plan, market: Market, series: Series,
                 executors: Mapping[str, Executor] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.plan, self.series, self.progress = plan, series, progress
        # A market of our own whose prices and rates change step by step; the engine and
        # every scope hold it, so they see each step's prices without being rebuilt. Its
        # `rates` are a copy too: `funding`, `supply_rate`, `borrow_rate` and the final
        # carry read the values in force at the step (LANGUAGE.md section 9), the market's
        # constants only where the series has no value (yet).
        self.base = market
        self.market = market.model_copy(update={"prices": dict(market.prices),
                                                "assets": dict(market.assets),
                                                "rates": _own_rates(market.rates)})
        self.engine = Engine(plan, self.market, executors if executors is not None else discover())
        self.engine.fills = []
        self.monitor = self.engine.monitor
        self.spans = _instruction_spans(plan)
        self.last_opened: dict[tuple[str, str, str], Span] = {}
        self.missing_reported: set[tuple[str, str, str]] = set()
        self.notices: list[Notice] = []
        self.start_ms = series.times[0]
        self.price_cols = [(c.key[0], c) for c in series.by_kind("price")]
        priced = {asset for asset, _ in self.price_cols}
        rate_cols = {c.key[0]: c for c in series.by_kind("rate")}
        self.base_rates = {asset: info.rate for asset, info in market.assets.items()}
        # Rates that can move: a `rate.X` column, or the market's staking APR (any other
        # asset keeps the market's rate, which the copy above already holds).
        self.moving_rates = [(asset, info, rate_cols.get(asset), market.staking_rate(asset))
                             for asset, info in market.assets.items()
                             if asset in rate_cols or market.staking_rate(asset)]
        # Prices derived as price(underlying) * rate: rate-bearing assets the market prices
        # and the series does not, an underlying derived too before the assets on it.
        self.derived = [(asset, market.underlying(asset)) for asset in market.underlyings_first(
            asset for asset in market.assets if asset not in priced and asset in market.prices)]
        self.priced = priced
        self.rate_cells = _rate_cells(self.market, series)
        # v3: `oracle.ASSET` sets every lending venue's oracle price of ASSET from its
        # first value on (held), overriding the venue's rule.
        self.oracle_cols = [(c.key[0], c) for c in series.by_kind("oracle")
                            if c.key[0] in market.prices]
        self.columns: dict[tuple[str, str, str], Column | None] = {}
        self.intervals: dict[int, Decimal] = {}  # milliseconds -> years
        self.factors: dict[tuple[str, str, str], tuple[Decimal, Decimal, Decimal]] = {}
        self.sources: dict[tuple[str, str, str], tuple[Column | None, Decimal]] = {}
        self._all_reads = _Reads(self.moving_rates, self.price_cols, self.rate_cells,
                                 self.oracle_cols, self.derived)
        self._live_reads: tuple[Container[str], _Reads] | None = None

    def column(self, kind: str, venue: str, asset: str) -> Column | None:
        """The series column `kind.venue.asset` (looked up once)."""
        key = (kind, venue, asset)
        if key not in self.columns:
            self.columns[key] = self.series.column(kind, venue, asset)
        return self.columns[key]

    # --- step 1: prices and rates ---------------------------------------------------------
    def apply_row(self, row: int, live: Container[str] | None = None
                  ) -> list[tuple[str, Decimal]]:
        """Prices and asset rates of the row take effect; returns the rates that changed,
        as (asset, previous rate).

        With `live`, the rates and prices of assets not in it (nor the underlying of one in
        it), and the lending rates of a venue or asset not in it, are left as they are: the
        caller knows nothing reads them before it calls `apply_row(row)` again without
        `live` (every one is a function of its row alone: a held column carries its value
        forward, so that call brings them all to the row's values; funding is not held, so
        its settlements are always kept)."""
        prices, assets = self.market.prices, self.market.assets
        read = self.reads(live)
        changed: list[tuple[str, Decimal]] = []
        for asset, info, col, apr in read.rates:
            rate = self.rate_at(row, asset, info, col, apr)
            old = assets[asset].rate
            if rate != old:
                # Not validated again: the series' reader checked the value is positive.
                assets[asset] = AssetInfo.model_construct(underlying=info.underlying,
                                                          rate=rate)
                changed.append((asset, old))
        for asset, col in read.prices:
            value = col.value(row)
            if value is not None:
                prices[asset] = value
        for col, table, key in read.cells:
            # A funding table holds the last settlement, which a later row cannot tell:
            # every settlement is kept (an empty cell, 479 rows in 480, is none). Supply and
            # borrow columns are held, a function of the row.
            if col.kind == "funding" and col.starts[row] == col.ends[row]:
                continue
            value = col.value(row)
            if value is not None:  # held (supply, borrow) or the last settlement (funding)
                table[key] = value
        market = self.market
        for asset, col in read.oracles:
            value = col.value(row)
            if value is not None and market.oracle_feed().get(asset) != value:
                market.set_oracle_feed(asset, value)
        for asset, underlying in read.derived:
            if underlying in prices:
                # Derived once the underlying moved or the rate grew.
                rate = assets[asset].rate
                if underlying in self.priced or rate != self.base_rates[asset]:
                    prices[asset] = prices[underlying] * rate
        return changed

    def rate_at(self, row: int, asset: str, info: AssetInfo, col: Column | None,
                apr: Decimal) -> Decimal:
        """A rate-bearing asset's rate at `row`: its column's value in force, else its
        growth at the market's staking APR since the start, else the market's rate."""
        value = col.value(row) if col is not None else None
        if value is None:
            if apr:
                elapsed = accrual.years(self.series.times[row] - self.start_ms)
                value = self.base_rates[asset] * (1 + apr * elapsed)
            else:
                value = info.rate
        return value

    def reads(self, live: Container[str] | None) -> _Reads:
        """What `apply_row(row, live)` reads: every column and derived price, or (with
        `live`) those of the assets in it and their underlyings (and theirs), worked out
        once per `live` (the loop keeps one object while the books keep their layout)."""
        if live is None:
            return self._all_reads
        known = self._live_reads
        if known is not None and known[0] is live:
            return known[1]
        names = set(self.market.prices)
        priced = {asset for asset in names if asset in live}
        added = priced
        while added:  # underlyings of underlyings too: aWETH on WETH on ETH
            added = {self.market.underlying(asset) for asset in added} - priced
            priced |= added
        every = self._all_reads
        reads = _Reads(
            # An underlying's rate and derived price too: an asset's derived price is the
            # underlying's of the same row.
            rates=[entry for entry in every.rates if entry[0] in priced],
            prices=[entry for entry in every.prices if entry[0] in priced],
            # Funding settlements are always kept; a lending-rate table only when its venue
            # and asset are live.
            cells=[entry for entry in every.cells if entry[0].kind == "funding"
                   or (entry[0].key[0] in live and entry[2] in live)],
            oracles=[entry for entry in every.oracles if entry[0] in priced],
            derived=[entry for entry in every.derived if entry[0] in priced])
        self._live_reads = (live, reads)
        return reads

    # --- step 2: accrual --------------------------------------------------------------------
    def apr(self, kind: str, venue: str, asset: str, row: int) -> Decimal:
        """The APR in force at `row`: the series' column, else the market's (SP503)."""
        key = (kind, venue, asset)
        source = self.sources.get(key)
        if source is None:
            source = self.sources[key] = self._source(kind, venue, asset)
        col, constant = source
        if col is None:
            return constant
        value = col.value(row)
        if value is not None:
            return value
        book = "collateral" if kind == "supply" else "debt"
        return self._fallback(kind, (book, venue, asset))

    def aprs(self, kind: str, venue: str, asset: str, start: int, stop: int) -> list[Decimal]:
        """`apr(kind, venue, asset, row)` for each row in [start, stop), in one pass."""
        self.apr(kind, venue, asset, start)  # the source, found (and SP503 noted) once
        col, constant = self.sources[kind, venue, asset]
        if col is None:
            return [constant] * (stop - start)
        found = col.values(start, stop)
        if has_none(found):
            return [self.apr(kind, venue, asset, start + at) if value is None else value
                    for at, value in enumerate(found)]
        return found  # type: ignore[return-value]  # no None in it

    def _source(self, kind: str, venue: str, asset: str) -> tuple[Column | None, Decimal]:
        """Where an APR comes from: the series' column, or (none) the market's constant."""
        col = self.column(kind, venue, asset)
        if col is not None:
            return col, ZERO
        book = "collateral" if kind == "supply" else "debt"
        return None, self._fallback(kind, (book, venue, asset))

    def _market_rate(self, kind: str, venue: str, base: str) -> Decimal | None:
        """The market's constant rate (its `rates:` section), None when it lists none."""
        market, rates = self.base, self.base.rates
        if kind == "funding":
            listed = base in rates.funding.get(venue, {})
            return market.funding_rate(venue, base) if listed else None
        lending = rates.lending.get(venue)
        if kind == "supply":
            listed = lending is not None and base in lending.supply
            return market.supply_rate(venue, base) if listed else None
        listed = lending is not None and base in lending.borrow
        return market.borrow_rate(venue, base) if listed else None

    def _fallback(self, kind: str, key: tuple[str, str, str]) -> Decimal:
        _, venue, asset = key
        base = asset.split("/")[0]
        constant = self._market_rate(kind, venue, base)
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

    def accrue(self, row: int, parts: dict[str, Decimal],
               order: Mapping[str, list[tuple[str, str]]] | None = None) -> None:
        """Interest over the interval before `row` at the previous row's APRs; funding.
        Books in (venue, asset) order: `order` gives each book's keys sorted (Readings
        keeps them with its layout), else they are sorted here."""
        monitor, prices, books = self.monitor, self.market.prices, self.monitor.books
        if order is None:
            order = {book: sorted(books[book]) for book in ("collateral", "debt", "position")}
        elif not (order["collateral"] or order["debt"] or order["position"]):
            return
        dt = self.years_before(row)
        for venue, asset in order["collateral"]:
            apr = self.apr("supply", venue, asset, row - 1)
            if apr:
                factor = self.factor("supply", venue, asset, apr, dt)
                units = accrual.grow(monitor, "collateral", venue, asset, factor)
                parts["supply_interest"] += units * prices[asset]
        for venue, asset in order["debt"]:
            apr = self.apr("borrow", venue, asset, row - 1)
            if apr:
                factor = self.factor("borrow", venue, asset, apr, dt)
                units = accrual.grow(monitor, "debt", venue, asset, factor)
                parts["borrow_interest"] -= units * prices[asset]
        for venue, pair in order["position"]:
            self._funding(row, venue, pair, parts)

    def years_before(self, row: int) -> Decimal:
        """The interval before `row` in years."""
        times = self.series.times
        interval = times[row] - times[row - 1]
        dt = self.intervals.get(interval)
        if dt is None:  # rows are usually evenly spaced: one division per spacing
            dt = self.intervals[interval] = accrual.years(interval)
        return dt

    def factor(self, kind: str, venue: str, asset: str, apr: Decimal, dt: Decimal) -> Decimal:
        """The index's growth over the interval (`accrual.supply_factor`/`borrow_factor`),
        worked out again only when the APR or the interval is not the very one of the step
        before: a series holds its APRs for an hour (60 rows of minutes), and the borrow
        factor's three powers were 1 us a step (docs/performance.md, item 43)."""
        key = (kind, venue, asset)
        known = self.factors.get(key)
        if known is not None and known[0] is apr and known[1] is dt:
            return known[2]
        grows = accrual.supply_factor if kind == "supply" else accrual.borrow_factor
        factor = grows(apr, dt)
        self.factors[key] = (apr, dt, factor)
        return factor

    def _funding(self, row: int, venue: str, pair: str, parts: dict[str, Decimal]) -> None:
        """Settlements on one perp during the interval before `row`: the series' funding
        cell at `row`, or the market's constant rate once per funding interval crossed."""
        base, quote = pair.split("/")
        col = self.column("funding", venue, base)
        if col is not None and col.starts[row] == col.ends[row]:
            return  # an empty cell: no settlement in this row (1 row in 480 has one)
        settlements: list[Decimal] = []
        times = self.series.times
        if col is not None:
            value = col.value(row)
            if value is not None:
                settlements.append(value)
        else:
            rate = self._fallback("funding", ("position", venue, pair))
            interval = int(cex_terms(self.base, venue).funding_interval * 1000)
            crossed = times[row] // interval - times[row - 1] // interval
            if rate and crossed > 0:
                settlements = [rate] * int(crossed)
        market = self.market
        for rate in settlements:
            received = accrual.settle_funding(self.monitor, market, venue, pair, rate)
            parts["funding"] += received * market.price(quote)

    def note_missing(self) -> None:
        """SP503 for what the plan now holds that the series has no rate for."""
        books = self.monitor.books
        pairs: tuple[tuple[Book, str], ...] = (("collateral", "supply"), ("debt", "borrow"))
        for book, kind in pairs:
            for venue, asset in sorted(books[book]):
                if self.column(kind, venue, asset) is None:
                    self._fallback(kind, (book, venue, asset))
        for venue, pair in sorted(books["position"]):
            if self.column("funding", venue, pair.split("/")[0]) is None:
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
        """Where SP501 is reported: the instruction that last increased the debt or position
        (for a write-off, the largest debt written off)."""
        book = "position" if event.kind == "perp" else "debt"
        key = (book, event.venue, event.asset)
        return self.last_opened.get(key) or self.spans.get(key) or self.plan.span


def start_market(plan: Plan, market: Market, series: Series) -> Market:
    """The market at the series' first time (step 1 of row 0): what the phases see, for
    `stratplan run --series` (LANGUAGE.md section 8: the phases run at the first time)."""
    with arithmetic():
        bt = Backtest(plan, market, series, executors={})
        bt.apply_row(0)
        return bt.market


def run_backtest(plan: Plan, market: Market, series: Series,
                 executors: Mapping[str, Executor] | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 reference: bool = False, keep_steps: bool = True) -> BacktestResult:
    """Run the plan over the series (LANGUAGE.md section 8); DagError when the plan cannot
    be turned into a DAG (the static rules say why).

    `reference=True` reads value, health and exposure through `executors/accounts.py`,
    checks every venue for liquidation and evaluates `when` conditions with the evaluator at
    each step: the plain definitions, slow. The default reads them through
    `interpreter/readings.py` and compiled conditions (docs/performance.md); the two give
    equal results (tests/interpreter/test_backtest_fast.py).

    `keep_steps=False` keeps only the first and last steps (`results.Snapshots`): the
    summary, the PnL and the events are the same, and a year of minutes holds no step (for
    reports that show none, and sweeps)."""
    with paused_gc(), arithmetic():
        return _run(plan, market, series, executors, progress, reference, keep_steps)


def _health(bt: Backtest) -> dict[str, Decimal | None]:
    """Health of every lending venue the books use, by the plain definitions."""
    monitor, market = bt.monitor, bt.market
    return {venue: health_factor(monitor, market, venue)
            for venue in sorted(monitor.venues("debt") | monitor.venues("collateral"))
            if venue in market.venues and market.venues[venue].kind == "lending"}


def _snapshot(bt: Backtest, time: int, parts: dict[str, Decimal]) -> Snapshot:
    """Step 5 by the plain definitions (executors/accounts.py)."""
    monitor, market = bt.monitor, bt.market
    value = portfolio_value(monitor, market)
    health = _health(bt)
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
         progress: Callable[[int, int], None] | None, reference: bool,
         keep_steps: bool = True) -> BacktestResult:
    bt = Backtest(plan, market, series, executors, progress)
    engine, monitor = bt.engine, bt.monitor
    bt.apply_row(0)
    start_value = portfolio_value(monitor, bt.market)
    fees0, slip0, gas0 = cost_parts(bt)
    dag = build_dag(plan, engine.scope)
    phases = run_dag(engine, dag)
    result = BacktestResult(plan, series, bt.market, engine, phases, dag, notices=bt.notices)
    result.value_start = start_value
    result.snapshots = Snapshots(keep=keep_steps, start=start_value)
    fills = result.fills = engine.fills if engine.fills is not None else []
    stamp(fills, 0, series.times[0], None, None)
    triggers = list(getattr(plan, "triggers", ()))
    result.firings = {t.name: 0 for t in triggers}
    totals = dict.fromkeys(PARTS, ZERO)
    fees1, slip1, gas1 = cost_parts(bt)
    first = dict.fromkeys(PARTS, ZERO)
    first["fees"], first["slippage"] = -(fees1 - fees0), -(slip1 - slip0)
    first["gas"] = -(gas1 - gas0) * bt.market.price("ETH") if gas1 != gas0 else ZERO
    snap = _snapshot(bt, series.times[0], first)
    first["price"] = EXACT.subtract(EXACT.subtract(snap.value, start_value),
                                     sum_parts(first, skip="price"))
    result.snapshots.append(snap)
    add_parts(totals, first)
    bt.track(dag, phases)
    if phases.failure is not None:
        result.value_end = snap.value
        result.pnl = final_pnl(totals, result.value_end - start_value)
        result.benchmark_end = _benchmark(plan, bt.market)
        return result
    bt.note_missing()
    scope = engine.state_scope
    states = [TriggerState(t, bt.start_ms) for t in triggers]
    readings = Readings(monitor, bt.market)
    readings.refresh()
    health: Callable[[], Mapping[str, Decimal | None]] | None = None
    # Rate-bearing assets whose rate and derived price a step must keep up to date: those
    # the books hold and those a `when` condition names (None: all of them, when some
    # condition goes through the evaluator). Firings and the end bring the rest up to date.
    watched: set[str] | None = None
    if not reference:
        health = readings.health
        watched = set()
        for state in states:
            condition = getattr(state.trigger, "when", None)
            if condition is not None:
                state.compiled = compile_condition(condition, scope)
                if state.compiled is None:
                    watched = None
                elif watched is not None:
                    watched |= names_read(condition, scope)
    live: set[str] | None = None
    held: frozenset[str] | None = None
    dags: dict[str, Dag] = {}
    times = series.times
    total = len(times)
    previous = snap.value
    snapshots, subtract = result.snapshots, EXACT.subtract
    quiet = None if reference else QuietRows(bt, readings, states, scope)
    accruing = None if reference else AccruingRows(bt, readings, states, scope)
    # Step the next row in full (no stretch from it): after a stretch, after a firing
    # (a trigger evaluated before it saw the books as they were before it: its `held` need
    # not be what its condition says of the books now) and after a condition that could not
    # be evaluated (it is recorded at every step it fails). The first step is always
    # stepped (`QuietRows.stretch`).
    row, step_next = 0, False
    while row + 1 < total:
        row += 1
        if watched is not None and readings.held is not held:
            held = readings.held
            live = watched | held
        if quiet is not None and accruing is not None and not step_next:
            stop = quiet.stretch(row, live)
            if stop > row:  # rows where only prices move (time/quiet.py)
                quiet.cross(row, stop, snapshots)
                previous = snapshots.values[-1]
                if progress is not None:
                    progress(stop - 1, total)
                row, step_next = stop - 1, True
                continue
            stop = accruing.cross(row, live, snapshots, totals, progress)
            if stop > row:  # rows where only interest, rates and prices move (accruing.py)
                previous = snapshots.values[-1]
                row, step_next = stop - 1, True  # it stopped where something can happen
                continue
        step_next = False
        now = times[row]
        parts = dict.fromkeys(PARTS, ZERO)
        changed = bt.apply_row(row, live)
        if changed:
            staking_part(bt, changed, parts, None if reference else readings)
        bt.accrue(row, parts, None if reference else readings.accrual_order)
        readings.refresh()
        before = _health(bt) if reference else readings.health()
        if reference or readings.below_one() or not readings.perps_safe():
            found = liquidate(monitor, bt.market)
            if found:
                record_liquidations(found, now, bt.liquidation_span, result.events, fills,
                                    parts)
                readings.refresh()
        events = len(result.events)
        for state in states:
            if due(state, now, scope, result, health):
                fire(bt, result, state.trigger, row, dags, parts)
                readings.refresh()
        if len(result.events) != events:  # a firing, or a condition that failed
            step_next = True
        if reference:
            snap = _snapshot(bt, now, parts)
        else:
            snap = Snapshot(now, readings.value(), readings.health(), readings.exposures(),
                            parts)
        snap.health_before = before
        close_parts(parts, totals, subtract(snap.value, previous))
        previous = snap.value
        snapshots.append(snap)
        if progress is not None:
            progress(row, total)
    if live is not None and total > 1:
        bt.apply_row(total - 1)  # every rate and derived price at the last row
    result.value_end = previous
    result.pnl = final_pnl(totals, EXACT.subtract(result.value_end, start_value))
    result.benchmark_end = _benchmark(plan, bt.market)
    return result


def _benchmark(plan: Plan, market: Market) -> Decimal:
    """The plan's starting holdings, untouched, valued at `market`'s prices: buy and hold."""
    held = PositionMonitor()
    seed_holdings(plan, held)
    return portfolio_value(held, market)


def cex_venues(market: Market) -> list[str]:
    """CEX venue names (for reports)."""
    return [name for name, venue in market.venues.items() if isinstance(venue, CexVenue)]


__all__ = ["BacktestResult", "Event", "Notice", "Snapshot", "run_backtest",
           "start_market",
           "DagError", "Phase", "Column"]
