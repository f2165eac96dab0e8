"""What a backtest produces: its events, snapshots and result, and the attribution parts.

Kept apart from the loop (time/backtest.py) so that triggers, metrics and reports read
these types without importing the loop that makes them.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from decimal import Decimal

from stratplan.dsl.models import Plan
from stratplan.dsl.spans import Span
from stratplan.executors.market import Market
from stratplan.interpreter.dag import Dag
from stratplan.interpreter.engine import Engine, Outcome
from stratplan.interpreter.fills import Fill
from stratplan.interpreter.series.read import Series

ZERO = Decimal(0)
PARTS = ("price", "funding", "supply_interest", "borrow_interest", "staking", "fees", "gas",
         "slippage", "liquidations")
# Attribution sums: exact for any number of 40-digit terms of the range plans allow.
EXACT = decimal.Context(prec=400, Emax=999_999, Emin=-999_999)


@dataclass
class Event:
    """A firing, a failed firing, a liquidation call or a bad-debt write-off, at a time.

    A lending liquidation names the `collateral` seized and the `debt` repaid, with the
    amounts `repaid` and `seized` (units of each); a perp's names the pair as `debt` and
    the size closed as `repaid`; a `bad_debt` write-off says `written_off_usd`."""

    time: int
    kind: str                       # firing, failure, liquidation, bad_debt
    name: str                       # the trigger, or the venue
    node: str | None = None
    line: int | None = None
    code: str | None = None
    message: str = ""
    loss_usd: Decimal | None = None
    span: Span | None = None
    collateral: str | None = None
    debt: str | None = None
    repaid: Decimal | None = None
    seized: Decimal | None = None
    written_off_usd: Decimal | None = None


@dataclass(slots=True)
class Snapshot:
    """Step 5: the state after a step; `health_before` is each lending venue's health
    before the step's liquidations (step 3), for `min_health` (LANGUAGE.md section 9)."""

    time: int
    value: Decimal
    health: dict[str, Decimal | None]
    exposure: dict[str, Decimal]
    parts: dict[str, Decimal]
    health_before: dict[str, Decimal | None] | None = None


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
    fills: list[Fill] = field(default_factory=list)
    # The plan's starting holdings valued at the last step's prices (buy and hold).
    benchmark_end: Decimal = ZERO

    @property
    def failed(self) -> bool:
        """True when the phases or a firing failed."""
        return self.phases.failure is not None or any(e.kind == "failure" for e in self.events)
