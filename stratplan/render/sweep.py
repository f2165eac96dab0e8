"""The sweep's results (`stratplan sweep`, docs/sweep.md): the points ranked best first as a
text table and as CSV, and the metric over the grid as a PNG (a heatmap for two grid names,
a line for one). The JSON is `stratplan.interpreter.sweep.run.to_json` as it is."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratplan.interpreter.sweep.run import Sweep

_SCALARS = ("value_start", "value_end", "return", "apr", "max_drawdown", "max_drawdown_from",
            "max_drawdown_to", "sharpe", "sortino", "liquidations")
_PERCENT = frozenset({"return", "apr", "max_drawdown"})
_SHOWN = ("return", "apr", "max_drawdown", "sharpe", "liquidations")
_HEADERS = {"max_drawdown": "drawdown", "liquidations": "liq"}
_TIMES = "\N{MULTIPLICATION SIGN}"


def _cell(metric: str, value: Decimal | None) -> str:
    if value is None:
        return "-"
    if metric in _PERCENT:
        return f"{value * 100:,.2f}%"
    if metric == "liquidations" or metric.startswith("firings."):
        return f"{value:,.0f}"
    if metric.startswith(("pnl.", "value_")):
        return f"{value:,.2f}"
    return f"{value:,.4f}"


def render_text(data: dict[str, Any], path: str) -> str:
    """The table, best first: the grid values, the metric and the main summary metrics."""
    from stratplan.interpreter.sweep.run import metric_value
    from stratplan.terminal import shown
    metric = data["metric"]
    names = list(data["grid"])
    shown_metrics = [metric, *(m for m in _SHOWN if m != metric)]
    head = ["rank", *names, *(_HEADERS.get(m, m) for m in shown_metrics), "status"]
    body = []
    for row in data["rows"]:
        status = row["status"]
        if row["error"]:
            status = f"{status}: {row['error']}"
        body.append([str(row["rank"]), *(row["values"][n] for n in names),
                     *(_cell(m, metric_value(row, m)) for m in shown_metrics), shown(status)])
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head) - 1)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=False)) \
            + "  " + cells[-1]

    better = "higher" if data["better"] == "higher" else "lower"
    if metric.startswith("firings."):
        better = "most first; not a measure of better"
    else:
        better += " is better"
    points = f"{data['points']} point{'s' if data['points'] != 1 else ''}"
    out = [f"sweep {shown(data['plan'])} ({shown(path)}): {points}, "
           f"{data['computed']} computed, {data['cached']} from the cache",
           f"ranked by {shown(metric)} ({better})", "", line(head)]
    out += [line(cells).rstrip() for cells in body]
    if data["errors"]:
        out += ["", f"{data['errors']} point(s) could not run: see their status"]
    return "\n".join(out) + "\n"


def render_csv(data: dict[str, Any]) -> str:
    """One row a point, best first: its values, status, metric, summary and PnL parts."""
    names = list(data["grid"])
    venues = sorted({v for row in data["rows"] if row["summary"]
                     for v in row["summary"]["min_health"]})
    triggers = sorted({t for row in data["rows"] if row["summary"]
                       for t in row["summary"]["firings"]})
    parts = next((list(row["pnl"]) for row in data["rows"] if row["pnl"]), [])
    columns = ["rank", *names, "status", "metric", *_SCALARS,
               *(f"min_health.{v}" for v in venues), *(f"firings.{t}" for t in triggers),
               *(f"pnl.{p}" for p in parts), "cached", "error"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in data["rows"]:
        s, pnl = row["summary"] or {}, row["pnl"] or {}
        writer.writerow([row["rank"], *(row["values"][n] for n in names), row["status"],
                         row["metric"], *(s.get(k) for k in _SCALARS),
                         *((s.get("min_health", {}).get(v) or {}).get("value") for v in venues),
                         *(s.get("firings", {}).get(t) for t in triggers),
                         *(pnl.get(p) for p in parts), row["cached"], row["error"]])
    return out.getvalue()


def _liquidated(row: dict[str, Any]) -> bool:
    """A point whose backtest had at least one liquidation call."""
    summary = row.get("summary") or {}
    return bool(summary.get("liquidations"))


def plot_png(sweep: Sweep, plan_name: str, metric: str) -> bytes:
    """The metric over the grid as a PNG (matplotlib, Agg): a heatmap for two names (first
    across, second up; points that could not run crossed out, the best one framed), a line
    for one."""
    import math

    from stratplan.dsl.extras import require

    matplotlib = require("matplotlib", "plot", "--plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon, Rectangle

    from stratplan.interpreter.sweep.params import plain
    from stratplan.interpreter.sweep.run import metric_direction, metric_value, ranked

    higher = metric_direction(metric)
    values = [metric_value(row, metric) for row in sweep.rows]
    numbers = [math.nan if v is None else float(v) for v in values]
    order = ranked(sweep, metric)
    best = order[0] if order and values[order[0]] is not None else None
    label = f"{metric} ({'higher' if higher else 'lower'} is better)"
    axes = sweep.axes
    if len(axes) == 1:
        figure, ax = plt.subplots(figsize=(8, 5))
        xs = [float(v) for v in axes[0].values]
        ax.plot(xs, numbers, marker="o")
        if best is not None:
            ax.plot([xs[best]], [numbers[best]], marker="*", markersize=16, color="crimson",
                    linestyle="none", label="best")
        failed = [i for i, row in enumerate(sweep.rows) if row["status"] == "failed"]
        if failed:  # ran, but a phase or trigger failed: hollow, as the heatmap hatches them
            ax.plot([xs[i] for i in failed], [numbers[i] for i in failed], marker="o",
                    markersize=11, markerfacecolor="none", markeredgecolor="#e76f51",
                    linestyle="none", label="failed")
        liquidated = [i for i, row in enumerate(sweep.rows) if _liquidated(row)]
        if liquidated:
            ax.plot([xs[i] for i in liquidated], [numbers[i] for i in liquidated], marker="v",
                    color="#d62828", linestyle="none", label="liquidated")
        if failed or liquidated or best is not None:
            ax.legend()
        for i, row in enumerate(sweep.rows):
            if row["status"] == "error":
                ax.axvline(xs[i], color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel(axes[0].name)
        ax.set_ylabel(label)
    else:
        across, up = axes
        cols, rows_n = len(across.values), len(up.values)
        # Colour shows the points that ran clean; a failed one is hatched grey (its plan
        # did not do what it says), one that could not run is crossed out.
        clean = [n if sweep.rows[i]["status"] == "ok" else math.nan
                 for i, n in enumerate(numbers)]
        grid = [[clean[i * rows_n + j] for i in range(cols)] for j in range(rows_n)]
        figure, ax = plt.subplots(figsize=(max(6.5, 2.0 + 0.9 * cols),
                                           max(4.5, 1.5 + 0.55 * rows_n)))
        cmap = matplotlib.colormaps["viridis" if higher else "viridis_r"].with_extremes(
            bad="#eeeeee")
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap=cmap)
        bar = figure.colorbar(image, ax=ax, label=label)
        if metric in _PERCENT:
            from matplotlib.ticker import PercentFormatter
            bar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
        ax.set_xticks(range(cols), [plain(v) for v in across.values])
        ax.set_yticks(range(rows_n), [plain(v) for v in up.values])
        ax.set_xlabel(across.name)
        ax.set_ylabel(up.name)
        finite = [n for n in clean if not math.isnan(n)]
        middle = (min(finite) + max(finite)) / 2 if finite else 0.0
        small = cols * rows_n <= 400
        for index, row in enumerate(sweep.rows):
            x, y = index // rows_n, index % rows_n
            if row["status"] == "error":
                ax.text(x, y, _TIMES, ha="center", va="center", color="#777777", fontsize=12)
                continue
            if row["status"] != "ok":
                ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, hatch="///",
                                       edgecolor="#bbbbbb", linewidth=0))
            if _liquidated(row):  # a red corner: the plan ran, but a venue liquidated it
                ax.add_patch(Polygon([(x + 0.5, y + 0.5), (x + 0.12, y + 0.5),
                                      (x + 0.5, y + 0.12)], closed=True, color="#d62828"))
            if small:
                text = _cell(metric, values[index])
                if row["status"] != "ok":
                    text = f"failed\n{text}"
                    color = "#555555"
                else:
                    color = "white" if (numbers[index] < middle) == higher else "black"
                ax.text(x, y, text, ha="center", va="center", fontsize=7, color=color)
        if best is not None and sweep.rows[best]["status"] == "ok":
            ax.add_patch(Rectangle((best // rows_n - 0.5, best % rows_n - 0.5), 1, 1,
                                   fill=False, edgecolor="crimson", linewidth=2.5))
        ax.text(0, -0.13, "framed: best; hatched: a phase or trigger failed; red corner: "
                f"liquidated; {_TIMES}: could not run", transform=ax.transAxes, fontsize=8,
                color="#555555")
    ax.set_title(f"{plan_name}: {metric} over {f' {_TIMES} '.join(a.name for a in axes)}"
                 f" ({len(sweep.rows)} points)")
    figure.tight_layout()
    from stratplan.render import png_bytes

    return png_bytes(figure, dpi=110)
