"""The backtest report (`stratplan backtest`): the summary, PnL attribution and events as
text, every step as CSV, and value, health and exposure over time as a PNG. The JSON report
is `stratplan.interpreter.time.metrics.report` as it is."""

from __future__ import annotations

import csv
import io
from decimal import Decimal, localcontext
from typing import Any


def readable(value: str | None) -> str:
    """For reading: 8 significant digits at most, and no digit below 1e-12 (rounding dust
    such as 9.2E-35 reads `≈0`); never an exponent; `≈` when rounded."""
    if value is None:
        return "n/a"
    number = Decimal(value)
    if number == 0:
        return "0"
    with localcontext() as context:
        context.prec = max(60, number.adjusted() + 10)  # room for every digit quantize keeps
        shown = number.quantize(Decimal(1).scaleb(max(number.adjusted() - 7, -12)))
        text = "0" if shown == 0 else f"{shown.normalize():f}"
        return text if shown == number else f"≈{text}"


def _percent(value: str | None) -> str:
    return "n/a" if value is None else f"{readable(str(Decimal(value) * 100))}%"


def render_csv(result: Any) -> str:
    """Every step as a CSV row: the columns are every step's keys, in the order first seen."""
    from stratplan.interpreter.time.metrics import step_row
    rows = [step_row(snap) for snap in result.snapshots]
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def render_text(data: dict[str, Any], path: str) -> str:
    """The text report: summary, PnL attribution, events."""
    from stratplan.terminal import shown
    s = data["summary"]
    lines = [f"backtest {shown(data['plan'])} ({shown(path)}): {data['status']}",
             f"  {data['start']} to {data['end']}, {data['steps']} steps", "",
             "Summary",
             f"  value      {readable(s['value_start'])} -> {readable(s['value_end'])} USD",
             f"  return     {_percent(s['return'])}   APR {_percent(s['apr'])}",
             f"  drawdown   {_percent(s['max_drawdown'])}"
             + (f" ({s['max_drawdown_from']} to {s['max_drawdown_to']})"
                if s["max_drawdown_from"] else ""),
             f"  sharpe     {readable(s['sharpe'])}   sortino {readable(s['sortino'])}"]
    for venue, low in s["min_health"].items():
        lines.append(f"  min health {shown(venue)} {readable(low['value'])} at {low['time']}")
    lines.append(f"  liquidations {s['liquidations']}")
    for name, count in s["firings"].items():
        lines.append(f"  trigger {shown(name)}: {count} firing(s)")
    lines += ["", "PnL attribution (USD)"]
    for name, value in data["pnl"].items():
        lines.append(f"  {name:<16} {readable(value)}")
    # Successful firings collapse into one line a trigger; failures and liquidations are
    # listed one by one (the JSON report keeps every event).
    firings: dict[str, list[Any]] = {}
    others = []
    for event in data["events"]:
        if event["kind"] == "firing":
            seen = firings.setdefault(event["trigger"], [0, event["time"], event["time"],
                                                         event["line"]])
            seen[0] += 1
            seen[2] = event["time"]
        else:
            others.append(event)
    if firings:
        lines += ["", "Firings"]
        for name, (count, first, last, line) in firings.items():
            where = f" (line {line})" if line else ""
            when = f"at {first}" if count == 1 else f"first {first}, last {last}"
            lines.append(f"  {shown(name)}{where}: {count} firing(s), {when}")
    if others:
        lines += ["", "Events"]
        for event in others:
            who = event.get("trigger") or event.get("venue")
            code = f" {event['code']}" if event["code"] else ""
            where = f" line {event['line']}" if event["line"] else ""
            lines.append(f"  {event['time']} {event['kind']}{code} {shown(str(who))}{where}: "
                         f"{shown(event['message'])}")
    return "\n".join(lines) + "\n"


def plot_png(result: Any) -> bytes:
    """Value, health and exposure over time, as a PNG (matplotlib, Agg)."""
    from datetime import UTC, datetime

    from stratplan.dsl.extras import require

    matplotlib = require("matplotlib", "plot", "--plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snaps = result.snapshots
    times = [datetime.fromtimestamp(s.time / 1000, tz=UTC) for s in snaps]
    figure, (value_ax, health_ax, exposure_ax) = plt.subplots(3, 1, sharex=True,
                                                              figsize=(10, 8))
    value_ax.plot(times, [float(s.value) for s in snaps])
    value_ax.set_ylabel("value (USD)")
    value_ax.set_title(f"{result.plan.name}: backtest")
    venues = sorted({v for s in snaps for v in s.health})
    for venue in venues:
        health_ax.plot(times, [float(s.health[venue]) if s.health.get(venue) is not None
                               else float("nan") for s in snaps], label=venue)
    health_ax.axhline(1, color="red", linewidth=0.8, linestyle="--")
    health_ax.set_ylabel("health")
    if venues:
        health_ax.legend()
    assets = sorted({a for s in snaps for a in s.exposure})
    for asset in assets:
        exposure_ax.plot(times, [float(s.exposure.get(asset, 0)) for s in snaps], label=asset)
    exposure_ax.set_ylabel("exposure")
    if assets:
        exposure_ax.legend()
    figure.autofmt_xdate()
    figure.tight_layout()
    png = io.BytesIO()
    try:
        figure.savefig(png, format="png")
    finally:
        plt.close(figure)
    return png.getvalue()
