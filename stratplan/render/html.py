"""The backtest as one self-contained HTML page (`stratplan backtest --html FILE`).

What a trader reads first: the summary; interactive charts (value against buy-and-hold with
the drawdown, the cumulative PnL parts, health of each lending venue the plan uses with 1.0
marked, exposure in USD), every firing, failure, liquidation and bad-debt write-off marked
where it happened, and a hover that shows the time, value, health and the events of that
step; the PnL attribution; the fills (a table sorted by clicking a column); the events; the
plan's source, each trigger's firings linked to its line.

Plotly draws the charts (the `plot` extra): its figures are SVG (a test can find the points
and the tooltips in the page), its hover labels need no code of ours, and its JavaScript is
inlined, so the page needs no network when it is opened. Every text that comes from the plan
or the series is escaped.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from decimal import Decimal
from typing import Any

from stratplan.dsl.extras import require
from stratplan.render.backtest import readable
from stratplan.render.chart_data import EVENT_WORDS, chart_data

_MARKERS = {"firing": ("triangle-up", "#2a9d8f"), "failure": ("x", "#e76f51"),
            "liquidation": ("diamond", "#d62828"), "bad_debt": ("square", "#6a040f")}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em} td,th{padding:.25em .6em;text-align:right}
th{background:#f4f4f4;cursor:pointer;user-select:none} tr:nth-child(even) td{background:#fafafa}
td.t,th.t{text-align:left} .ok{color:#2a9d8f} .failed{color:#d62828}
pre.source{background:#f8f8f8;padding:1em;overflow-x:auto;line-height:1.4}
pre.source span.line{display:block} pre.source span.line:target{background:#fff3b0}
pre.source a.n{color:#999;display:inline-block;width:3em;text-decoration:none}
span.badge{background:#2a9d8f;color:#fff;border-radius:.6em;padding:0 .5em;margin-left:1em;
font-size:.8em}
"""

# Click a column's header to sort by it (numbers as numbers), again to reverse.
_SORT = """
function value(cell) {
  var exact = cell.querySelector("[data-v]");
  return exact ? exact.dataset.v : cell.textContent;
}
document.querySelectorAll("table.sortable th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0];
    var up = th.dataset.order !== "asc";
    th.closest("tr").querySelectorAll("th").forEach(function (o) { delete o.dataset.order; });
    th.dataset.order = up ? "asc" : "desc";
    var rows = Array.from(body.rows);
    rows.sort(function (a, b) {
      var x = value(a.cells[col]), y = value(b.cells[col]);
      var nx = parseFloat(x), ny = parseFloat(y);
      var r = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return up ? r : -r;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _figure(result: Any) -> Any:
    plotly = require("plotly", "plot", "--html")
    from plotly.subplots import make_subplots
    graph_objects = plotly.graph_objects

    data = chart_data(result)
    times = [t.strftime("%Y-%m-%d %H:%M") for t in data.times]
    at: dict[int, list[str]] = defaultdict(list)
    for event in data.events:
        at[event.time].append(f"{event.name} {EVENT_WORDS.get(event.kind, event.kind)}")
    moments = {data.at(ms).strftime("%Y-%m-%d %H:%M"): ms for ms in sorted(at)}
    hover = []
    for row, time in enumerate(times):
        value = data.value[row]
        healths = ", ".join(f"{v} {h[row]:.4f}" for v, h in data.health.items()
                            if h[row] is not None) or "n/a"
        events = "<br>".join(at.get(moments.get(time, -1), []))
        hover.append("" if value is None else
                     f"{time}<br>value {value:,.2f} USD<br>health {healths}<br>{events}")
    lending = list(data.health)
    titles = ["Value (USD)", "Drawdown (%)", "Cumulative PnL by part (USD)",
              *(["Health"] if lending else []), "Exposure (USD)"]
    figure = make_subplots(rows=len(titles), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                           subplot_titles=titles)

    def add(trace: Any, row: int) -> None:
        figure.add_trace(trace, row=row, col=1)

    add(graph_objects.Scatter(x=times, y=data.value, name="value", mode="lines",
                              hovertext=hover, hoverinfo="text", connectgaps=False,
                              line={"color": "#264653"}), 1)
    if any(v is not None for v in data.benchmark):
        add(graph_objects.Scatter(x=times, y=data.benchmark, name="buy and hold", mode="lines",
                                  connectgaps=False, line={"dash": "dot", "color": "#999"}), 1)
    add(graph_objects.Scatter(x=times, y=data.drawdown, name="drawdown", fill="tozeroy",
                              mode="lines", line={"color": "#e76f51"}), 2)
    for part, values in data.parts.items():
        add(graph_objects.Scatter(x=times, y=values, name=part, stackgroup="pnl",
                                  mode="lines"), 3)
    row = 4
    if lending:
        for venue, values in data.health.items():
            add(graph_objects.Scatter(x=times, y=values, name=f"health {venue}", mode="lines",
                                      connectgaps=False), row)
            for level, trigger in data.thresholds.get(venue, []):
                figure.add_hline(y=level, line={"dash": "dot", "color": "#f4a261"}, row=row,
                                 col=1, annotation_text=f"{trigger} {level:g}")
        figure.add_hline(y=1.0, line={"dash": "dash", "color": "#d62828"}, row=row, col=1)
        row += 1
    add(graph_objects.Scatter(x=times, y=data.exposure_usd, name="exposure", mode="lines",
                              connectgaps=False), row)
    for kind, (symbol, colour) in _MARKERS.items():
        marked = [e for e in data.events if e.kind == kind and e.time in data.value_at]
        if marked:
            add(graph_objects.Scatter(
                x=[data.at(e.time).strftime("%Y-%m-%d %H:%M") for e in marked],
                y=[data.value_at[e.time] for e in marked], mode="markers",
                name=kind.replace("_", " "), marker={"symbol": symbol, "size": 11,
                                                     "color": colour},
                hovertext=[f"{data.at(e.time):%Y-%m-%d %H:%M}<br>{e.name} "
                           f"{EVENT_WORDS[kind]}" + (f"<br>{e.message}" if e.message else "")
                           for e in marked], hoverinfo="text"), 1)
    figure.update_layout(height=260 * len(titles), hovermode="closest", template="plotly_white",
                         margin={"l": 60, "r": 20, "t": 40, "b": 40})
    return figure


_PERCENT = frozenset({"return", "apr", "cagr", "max_drawdown"})


def _number(value: Any) -> str:
    """A number for reading (8 significant digits, `≈` when rounded), with every digit kept
    in `data-v` for sorting and for anyone who copies it."""
    if value is None:
        return ""
    return f'<span data-v="{_esc(value)}" title="{_esc(value)}">{_esc(readable(str(value)))}</span>'


def _shown(key: str, value: Any) -> str:
    if isinstance(value, str) and key in _PERCENT:
        return f'<span data-v="{_esc(value)}">{_esc(readable(str(Decimal(value) * 100)))}%</span>'
    if isinstance(value, str) and value[:1] in "-0123456789" and not value[4:5] == "-":
        return _number(value)
    return _esc(value if value is not None else "n/a")


def _table(headers: list[str], rows: list[list[Any]], css: str = "", text_cols: int = 1) -> str:
    head = "".join(f'<th class="{"t" if i < text_cols else ""}">{_esc(h)}</th>'
                   for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(
        f'<td class="{"t" if i < text_cols else ""}">{cell}</td>' for i, cell in enumerate(row))
        + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _source(text: str, firings: dict[int, int]) -> str:
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        badge = (f'<span class="badge">{firings[number]} firing(s)</span>'
                 if number in firings else "")
        lines.append(f'<span class="line" id="L{number}"><a class="n" href="#L{number}">'
                     f"{number}</a>{_esc(line)}{badge}</span>")
    return '<pre class="source">' + "".join(lines) + "</pre>"


def render_html(result: Any, data: dict[str, Any], path: str, source: str) -> str:
    """The page: `data` is the JSON report (`interpreter.time.metrics.report`)."""
    chart = _figure(result).to_html(full_html=False, include_plotlyjs=True,
                                             div_id="charts", config={"displaylogo": False})
    summary = data["summary"]
    scalar = [[_esc(k.replace("_", " ")), _shown(k, v)] for k, v in summary.items()
              if not isinstance(v, dict)]
    scalar += [[_esc(f"benchmark {k.replace('_', ' ')}"), _shown(k, v)]
               for k, v in summary.get("benchmark", {}).items()]
    scalar += [[_esc(f"min health {venue}"),
                f"{_esc(readable(low['value']))} at {_esc(low['time'])}"]
               for venue, low in summary.get("min_health", {}).items()]
    pnl = [[_esc(part), _number(v)] for part, v in data["pnl"].items()]
    fills = data.get("fills", [])
    fill_keys = ["time", "node", "trigger", "venue", "kind", "side", "asset", "amount", "price",
                 "fee_usd", "realised_pnl_usd"]
    fill_rows = [[_esc(f.get(k)) for k in fill_keys[:7]] + [_number(f.get(k))
                                                           for k in fill_keys[7:]]
                 for f in fills]
    events = data.get("events", [])
    event_rows = [[_esc(e.get("time")), _esc(e.get("kind")),
                   _esc(e.get("trigger") or e.get("venue")),
                   (f'<a href="#L{int(e["line"])}">line {int(e["line"])}</a>'
                    if e.get("line") else ""), _esc(e.get("message"))] for e in events]
    firings: dict[int, int] = defaultdict(int)
    for event in result.events:
        if event.kind == "firing" and event.line:
            firings[int(event.line)] += 1
    status = _esc(data["status"])
    title = f"backtest {_esc(data['plan'])}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title><style>{_STYLE}</style></head><body>",
        f'<h1>{title} <span class="{status}">{status}</span></h1>',
        f"<p>{_esc(path)} &middot; {_esc(data['start'])} to {_esc(data['end'])} &middot; "
        f"{_esc(data['steps'])} steps</p>",
        "<h2>Summary</h2>", _table(["", ""], scalar),
        "<h2>Charts</h2>", chart,
        "<h2>PnL attribution (USD)</h2>", _table(["part", "USD"], pnl),
        f"<h2>Fills ({len(fills)})</h2>",
        _table(fill_keys, fill_rows, "sortable fills", text_cols=7) if fills
        else "<p>No fills.</p>",
        f"<h2>Events ({len(events)})</h2>",
        _table(["time", "kind", "trigger or venue", "plan", "message"], event_rows,
               "sortable events", text_cols=5) if events else "<p>No events.</p>",
        "<h2>Plan</h2>", _source(source, dict(firings)),
        f"<script>{_SORT}</script>",
        f'<script type="application/json" id="report-data">'
        f"{html.escape(json.dumps({'plan': data['plan'], 'steps': data['steps']}))}</script>",
        "</body></html>",
    ]
    return "\n".join(parts)
