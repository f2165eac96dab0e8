"""The backtest report (LANGUAGE.md sections 8 and 9): summary metrics, PnL attribution,
events, fills.

Every metric is a Decimal; ratios use step returns r_i = V_i / V_(i-1) - 1 over the
steps (zero returns counted), annualised by the number of steps in a 365-day year (the
mean step length). Drawdown, the returns' sums and the lowest health are gathered as the
steps are made (`running_metrics.RunningMetrics`), so no step need be kept for them.
Sharpe = mean / standard deviation * sqrt(steps a year); Sortino = mean / downside
deviation (root mean square of the negative returns) * sqrt(steps a year). Both are null
when undefined (fewer than two returns, or no deviation). v3: `cagr` = (end / start) ^
(year / span) - 1 (null when the end value is not positive or the span is 0), `benchmark`
the starting holdings held untouched (buy and hold), and `min_health` the lowest health
before any step's liquidations or after its firings. The metrics are worked out at the
project's precision (40 significant digits, stratplan.dsl.decimals.PRECISION); only the PnL
attribution keeps every digit, so that its parts add up exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, localcontext
from typing import Any

from stratplan.dsl.decimals import CONTEXT, json_number
from stratplan.interpreter.fills import Fill
from stratplan.interpreter.report import build_report, dec
from stratplan.interpreter.series.read import iso
from stratplan.interpreter.time.results import EXACT, PARTS, BacktestResult

YEAR_MS = Decimal(31_536_000_000)
ZERO = Decimal(0)
_LARGEST = Decimal("1e30")


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    return numerator / denominator if denominator else None


def summary(result: BacktestResult) -> dict[str, Any]:
    """The summary metrics, as Decimals of at most 40 significant digits (None where
    undefined)."""
    with localcontext(CONTEXT):
        return _summary(result)


def _summary(result: BacktestResult) -> dict[str, Any]:
    snaps = result.snapshots
    running, times = snaps.running, snaps.times
    start, end = result.value_start, result.value_end
    first_t, last_t = times[0], times[-1]
    ret = _ratio(end - start, start) if start > 0 else None
    span = Decimal(last_t - first_t)
    apr = ret * YEAR_MS / span if ret is not None and span else None
    bench = result.benchmark_end
    sharpe = sortino = None
    if running.returns >= 2 and span:
        count = Decimal(running.returns)
        mean = running.total / count
        variance = running.variance()
        per_year = (YEAR_MS / (span / count)).sqrt()
        if variance > 0:
            sharpe = mean / variance.sqrt() * per_year
        downside = running.downside / count
        if downside > 0:
            sortino = mean / downside.sqrt() * per_year
    return {"value_start": start, "value_end": end, "return": ret, "apr": apr,
            "cagr": cagr(start, end, span),
            "max_drawdown": running.worst, "max_drawdown_from": running.worst_from,
            "max_drawdown_to": running.worst_to,
            "sharpe": sharpe, "sortino": sortino,
            "min_health": {venue: {"value": value, "time": time}
                           for venue, (value, time) in running.health.items()},
            "liquidations": sum(1 for e in result.events if e.kind == "liquidation"),
            "firings": dict(result.firings),
            "benchmark": {"value_end": bench,
                          "return": _ratio(bench - start, start) if start > 0 else None}}


def cagr(start: Decimal, end: Decimal, span_ms: Decimal) -> Decimal | None:
    """(end / start) ^ (year / span) - 1, a year of 365 days; None when the end value is
    not positive, the start is not positive, or the span is 0. A span of hours compounds a
    small return into a huge one; past 1e30 (the range of plan values) it is None too."""
    if end <= 0 or start <= 0 or not span_ms:
        return None
    try:
        value = (end / start) ** (YEAR_MS / span_ms) - 1
    except ArithmeticError:  # Overflow: the context traps it
        return None
    return value if abs(value) <= _LARGEST else None


def _d(value: Decimal | None) -> str | None:
    return None if value is None else dec(value)


def _t(value: int | None) -> str | None:
    return None if value is None else iso(value)


def report(result: BacktestResult, steps: bool = False) -> dict[str, Any]:
    """The JSON report of section 8 (decimals as strings, every digit kept: the PnL parts
    as printed add up exactly to the total)."""
    with localcontext(EXACT):
        return _report(result, steps)


def _report(result: BacktestResult, steps: bool) -> dict[str, Any]:
    s = summary(result)
    snaps = result.snapshots
    data: dict[str, Any] = {
        "plan": result.plan.name,
        "status": "failed" if result.failed else "ok",
        "start": iso(snaps[0].time), "end": iso(snaps[-1].time), "steps": len(snaps),
        "summary": {
            "value_start": dec(s["value_start"]), "value_end": dec(s["value_end"]),
            "return": _d(s["return"]), "apr": _d(s["apr"]), "cagr": _d(s["cagr"]),
            "max_drawdown": dec(s["max_drawdown"]),
            "max_drawdown_from": _t(s["max_drawdown_from"]),
            "max_drawdown_to": _t(s["max_drawdown_to"]),
            "sharpe": _d(s["sharpe"]), "sortino": _d(s["sortino"]),
            "min_health": {v: {"value": dec(h["value"]), "time": iso(h["time"])}
                           for v, h in sorted(s["min_health"].items())},
            "liquidations": s["liquidations"], "firings": s["firings"],
            "benchmark": {"value_end": dec(s["benchmark"]["value_end"]),
                          "return": _d(s["benchmark"]["return"])}},
        "pnl": {name: json_number(result.pnl[name], None) for name in (*PARTS, "total")},
        "events": [event_row(e) for e in result.events],
        "fills": [fill_row(f) for f in result.fills],
        "final": build_report(result.plan, result.dag, result.phases, result.engine.monitor,
                              result.market, result.value_start),
    }
    if steps:
        data["step_list"] = [step_row(snap) for snap in snaps]
    return data


def event_row(event: Any) -> dict[str, Any]:
    """One event as plain data: a liquidation names its collateral, debt, repaid and seized
    amounts; a bad-debt write-off its `written_off_usd` (LANGUAGE.md section 9)."""
    at_venue = event.kind in ("liquidation", "bad_debt")
    row: dict[str, Any] = {"time": iso(event.time), "kind": event.kind,
                           ("venue" if at_venue else "trigger"): event.name,
                           "node": event.node, "line": event.line, "code": event.code,
                           "message": event.message, "loss_usd": _d(event.loss_usd)}
    if event.kind == "liquidation":
        row.update({"collateral": event.collateral, "debt": event.debt,
                    "repaid": _d(event.repaid), "seized": _d(event.seized)})
    elif event.kind == "bad_debt":
        row.update({"debt": event.debt, "written_off_usd": _d(event.written_off_usd)})
    return row


def fill_row(fill: Fill) -> dict[str, Any]:
    """One fill as plain data (interpreter/fills.py)."""
    return {"time": _t(fill.time), "node": fill.node, "trigger": fill.trigger,
            "venue": fill.venue, "kind": fill.kind, "side": fill.side, "asset": fill.asset,
            "amount": dec(fill.amount), "price": _d(fill.price), "fee_usd": _d(fill.fee_usd),
            "realised_pnl_usd": _d(fill.realised_pnl_usd)}


def step_columns(venues: Iterable[str], assets: Iterable[str]) -> list[str]:
    """The keys of `step_row` for a step with health at these venues and exposure to these
    assets, in its order (the CSV finds its columns from these without making every row)."""
    return ["time", "value", *(f"health.{venue}" for venue in sorted(venues)),
            *(f"exposure.{asset}" for asset in sorted(assets)),
            *(f"pnl.{name}" for name in PARTS)]


def step_row(snap: Any) -> dict[str, Any]:
    """One step as plain data (CSV rows and `--steps`), keyed by `step_columns`."""
    health, exposure = snap.health, snap.exposure
    values = [iso(snap.time), dec(snap.value),
              *(None if health[v] is None else dec(health[v]) for v in sorted(health)),
              *(dec(exposure[a]) for a in sorted(exposure)),
              *(json_number(snap.parts.get(name, ZERO), None) for name in PARTS)]
    return dict(zip(step_columns(health, exposure), values, strict=True))
