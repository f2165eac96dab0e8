"""The backtest report (`stratplan backtest`): the summary, PnL attribution, events and the
last fills as text, every step as CSV, and value, health and exposure over time as a PNG. The JSON report
is `stratplan.interpreter.time.metrics.report` as it is."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal, localcontext
from typing import Any, TextIO


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
    """Every step as a CSV row (`write_csv`), as one text."""
    out = io.StringIO()
    write_csv(result, out)
    return out.getvalue()


def write_csv(result: Any, out: TextIO) -> None:
    """Every step as a CSV row, written as it is made (a year of minutes is 525,600 rows:
    never all held at once). The columns are every step's keys, in the order first seen;
    a step's keys follow from its health venues and exposure assets, so only the distinct
    sets of those are looked at to find the columns."""
    from stratplan.interpreter.time.metrics import step_columns, step_row
    snaps = result.snapshots
    columns: dict[str, None] = {}
    for venues, assets in snaps.key_sets():
        columns.update(dict.fromkeys(step_columns(venues, assets)))
    writer = csv.DictWriter(out, list(columns), lineterminator="\n")
    writer.writeheader()
    for snap in snaps:
        writer.writerow(step_row(snap))


def write_json(data: dict[str, Any], result: Any, out: TextIO, steps: bool = False) -> None:
    """The JSON report (`metrics.report(result)`, given as `data`), indented by 2; with
    `steps`, every step (`step_list`, the last key) written as it is made: the same text as
    `json.dumps(report(result, steps=True), indent=2)`, never held whole (a year of
    minutes is 190 MB of it)."""
    from stratplan.interpreter.time.metrics import step_row
    from stratplan.interpreter.time.results import EXACT
    text = json.dumps(data, indent=2)
    if not steps:
        out.write(text + "\n")
        return
    if "step_list" in data or not text.endswith("\n}"):
        raise ValueError("a report without its steps, as a JSON object, was expected")
    out.write(text[:-2] + ',\n  "step_list": [')
    with localcontext(EXACT):  # as `metrics.report` makes the rows
        for row, snap in enumerate(result.snapshots):
            item = json.dumps(step_row(snap), indent=2).replace("\n", "\n    ")
            out.write((",\n    " if row else "\n    ") + item)
    out.write("\n  ]\n}\n")


FILLS_SHOWN = 20


def _fills(fills: list[dict[str, Any]]) -> list[str]:
    """The last FILLS_SHOWN fills, one line each, and how many there were."""
    from stratplan.terminal import shown
    if not fills:
        return []
    last = fills[-FILLS_SHOWN:]
    head = "Fills" if len(last) == len(fills) else f"Fills (the last {len(last)} of {len(fills)})"
    lines = ["", head]
    for fill in last:
        side = f" {fill['side']}" if fill["side"] else ""
        price = f" @ {readable(fill['price'])}" if fill["price"] is not None else ""
        fee = f", fee {readable(fill['fee_usd'])} USD" if fill["fee_usd"] not in (None, "0") else ""
        pnl = (f", pnl {readable(fill['realised_pnl_usd'])} USD"
               if fill["realised_pnl_usd"] is not None else "")
        where = f" ({shown(fill['node'])})" if fill["node"] else ""
        lines.append(f"  {fill['time']} {fill['kind']}{side} {readable(fill['amount'])} "
                     f"{shown(fill['asset'])}{price} on {shown(fill['venue'])}{fee}{pnl}{where}")
    return lines


def held_asset(result: Any) -> str | None:
    """The one asset the plan's holdings are in (`wallet: 15 ETH`), else None."""
    holdings = getattr(result.plan, "holdings", None)
    assets = {amount.asset for entry in getattr(holdings, "entries", ()) or ()
              for amount in entry.amounts}
    return assets.pop() if len(assets) == 1 else None


def base_returns(result: Any, asset: str) -> dict[str, Any] | None:
    """The value at the start and the end counted in `asset` (USD / its price at that row:
    the series', else the market's) and the return in it; None without a price."""
    snaps = result.snapshots
    if not snaps:
        return None
    column = result.series.column("price", asset)

    def price(row: int) -> Decimal | None:
        found = column.value(row) if column is not None else None
        return found if found is not None else result.market.prices.get(asset)

    first, last = price(0), price(len(snaps) - 1)
    if not first or not last:
        return None
    with localcontext() as context:
        context.prec = 40
        start, end = result.value_start / first, snaps[-1].value / last
        change = end / start - 1 if start > 0 else None
    return {"asset": asset, "value_start": str(start), "value_end": str(end),
            "return": None if change is None else str(change)}


def render_text(data: dict[str, Any], path: str, base: dict[str, Any] | None = None) -> str:
    """The text report: summary, PnL attribution, events, the last fills; `base`: the
    returns counted in one asset (`--base`, or the one asset the holdings are in)."""
    from stratplan.terminal import shown
    s = data["summary"]
    bench = s.get("benchmark") or {}
    lines = [f"backtest {shown(data['plan'])} ({shown(path)}): {data['status']}",
             f"  {data['start']} to {data['end']}, {data['steps']} steps", "",
             "Summary",
             f"  value      {readable(s['value_start'])} -> {readable(s['value_end'])} USD",
             f"  return     {_percent(s['return'])}   APR {_percent(s['apr'])}   "
             f"CAGR {_percent(s.get('cagr'))}",
             f"  hold       {readable(bench.get('value_end'))} USD, "
             f"return {_percent(bench.get('return'))} (the starting holdings, untouched)",
             *([f"  in {shown(base['asset']):<7} {readable(base['value_start'])} -> "
                f"{readable(base['value_end'])} {shown(base['asset'])}, return "
                f"{_percent(base['return'])}"] if base else []),
             f"  drawdown   {_percent(s['max_drawdown'])}"
             + (f" ({s['max_drawdown_from']} to {s['max_drawdown_to']})"
                if s["max_drawdown_from"] else ""),
             f"  sharpe     {readable(s['sharpe'])}   sortino {readable(s['sortino'])}"]
    for venue, low in s["min_health"].items():
        lines.append(f"  min health {shown(venue)} {readable(low['value'])} at {low['time']}")
    written = sum((Decimal(e["written_off_usd"]) for e in data["events"]
                   if e["kind"] == "bad_debt"), Decimal(0))
    lines.append(f"  liquidations {s['liquidations']}"
                 + (f", bad debt written off {readable(str(written))} USD" if written else ""))
    failed: dict[str, int] = {}
    for event in data["events"]:
        if event["kind"] == "failure" and event.get("trigger"):
            failed[event["trigger"]] = failed.get(event["trigger"], 0) + 1
    for name, count in s["firings"].items():
        lines.append(f"  trigger {shown(name)}: {count} firing(s)"
                     + (f", {failed[name]} of them failed" if failed.get(name) else ""))
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
    lines += _fills(data.get("fills", []))
    return "\n".join(lines) + "\n"


_MARKS = {"firing": ("^", "#2a9d8f"), "failure": ("x", "#e76f51"),
          "liquidation": ("D", "#d62828"), "bad_debt": ("s", "#6a040f")}


def plot_png(result: Any) -> bytes:
    """The backtest as a PNG (matplotlib, Agg): value against buy and hold with the
    drawdown shaded, cumulative PnL by part (stacked), health of each lending venue the plan
    uses (1.0 and its triggers' thresholds marked), exposure in USD; every firing, failure,
    liquidation and bad-debt write-off marked on every panel; series gaps left as gaps."""
    from stratplan.dsl.extras import require
    from stratplan.render.chart_data import EVENT_WORDS, chart_data

    matplotlib = require("matplotlib", "plot", "--plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = chart_data(result)
    panels = ["value", "pnl", *(["health"] if data.health else []), "exposure"]
    figure, axes = plt.subplots(len(panels), 1, sharex=True, figsize=(11, 2.6 * len(panels)))
    ax = dict(zip(panels, axes, strict=True))
    nan = float("nan")

    def line(values: list[float | None]) -> list[float]:
        return [nan if v is None else v for v in values]

    times = data.times
    value_ax = ax["value"]
    value_ax.plot(times, line(data.value), color="#264653", label="value")
    if any(v is not None for v in data.benchmark):
        value_ax.plot(times, line(data.benchmark), color="#999999", linestyle=":",
                      label="buy and hold")
    peaks, peak = [], float("-inf")
    for v in line(data.value):
        peak = max(peak, v) if v == v else peak
        peaks.append(peak if v == v else nan)
    value_ax.fill_between(times, line(data.value), peaks, color="#e76f51", alpha=0.25,
                          linewidth=0, label="drawdown")
    value_ax.set_ylabel("value (USD)")
    value_ax.set_title(f"{result.plan.name}: backtest")
    stacked = [line(data.parts[p]) for p in data.parts]
    positive = [[max(v, 0.0) if v == v else nan for v in s] for s in stacked]
    negative = [[min(v, 0.0) if v == v else nan for v in s] for s in stacked]
    ax["pnl"].stackplot(times, *positive, labels=list(data.parts), alpha=0.8)
    ax["pnl"].set_prop_cycle(None)
    ax["pnl"].stackplot(times, *negative, alpha=0.8)
    ax["pnl"].axhline(0, color="#333333", linewidth=0.6)
    ax["pnl"].set_ylabel("cumulative PnL (USD)")
    ax["pnl"].legend(fontsize=7, ncol=5, loc="upper left")
    if data.health:
        health_ax = ax["health"]
        for venue, values in data.health.items():
            health_ax.plot(times, line(values), label=f"health {venue}")
            for level, trigger in data.thresholds.get(venue, []):
                health_ax.axhline(level, color="#f4a261", linestyle="--", linewidth=0.9,
                                  label=f"{trigger}: {level:g}")
        health_ax.axhline(1, color="#d62828", linewidth=0.9, linestyle="--", label="1.0")
        health_ax.set_ylabel("health")
        health_ax.legend(fontsize=7, loc="upper left")
    ax["exposure"].plot(times, line(data.exposure_usd), color="#8e44ad")
    ax["exposure"].axhline(0, color="#333333", linewidth=0.6)
    ax["exposure"].set_ylabel("exposure (USD)")
    # A colour per trigger (and per venue, for liquidations), a marker per kind. Scheduled
    # firings (`every`) are marked on the value panel only: a weekly check drawn across
    # every panel would hide what happened.
    palette = ["#2a9d8f", "#e9c46a", "#457b9d", "#9b5de5", "#f15bb5", "#00bbf9"]
    colours: dict[str, str] = {}
    scheduled = {t.name for t in result.plan.triggers if t.every is not None}
    shown: set[str] = set()
    for event in data.events:
        mark, colour = _MARKS.get(event.kind, ("o", "#555555"))
        if event.kind == "firing":
            colour = colours.setdefault(event.name, palette[len(colours) % len(palette)])
        label = f"{event.name} {EVENT_WORDS.get(event.kind, event.kind)}"
        when = data.at(event.time)
        for name, panel in ax.items():
            if name != "value" and event.kind == "firing" and event.name in scheduled:
                continue
            panel.axvline(when, color=colour, alpha=0.35, linewidth=0.8)
            if name == "value" and event.time in data.value_at:
                panel.plot([when], [data.value_at[event.time]], marker=mark, color=colour,
                           linestyle="none", label=None if label in shown else label)
        shown.add(label)
    value_ax.legend(fontsize=7, loc="upper left", ncol=3)
    figure.autofmt_xdate()
    figure.tight_layout()
    from stratplan.render import png_bytes

    return png_bytes(figure, dpi=100)
