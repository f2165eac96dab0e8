"""The text run report: rich tables of steps, balances, lending, perps, exposure and costs.

Every text that comes from the plan, the market or a file name (node, venue and asset names,
assert and failure messages, the path) is shown through `stratplan.terminal.shown` and put
in a `Text`, so neither a control character nor rich markup (`[bold]`) in it takes effect.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stratplan.terminal import shown


def _cell(value: object, style: str = "") -> Text:
    """A table cell or line: the text as shown, never read as rich markup."""
    return Text(shown(str(value)), style=style)


def _venue_table(title: str, data: dict[str, dict[str, str]], value: str = "amount") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("venue")
    table.add_column("asset")
    table.add_column(value, justify="right")
    for venue, assets in data.items():
        for asset, amount in assets.items():
            table.add_row(_cell(venue), _cell(asset), _cell(amount))
    return table


def shown_steps(steps: list[Any], limit: int | None) -> tuple[list[Any], list[Any], int]:
    """(first, last, hidden): at most `limit` steps, half from each end (None: all)."""
    if limit is None or len(steps) <= limit:
        return steps, [], 0
    head = (limit + 1) // 2
    tail = limit - head
    return steps[:head], steps[len(steps) - tail:] if tail else [], len(steps) - limit


def render_run(report: dict[str, Any], console: Console, path: str,
               max_steps: int | None = None) -> None:
    """Print a run report for a person; `max_steps` rows of the step table (None: all)."""
    status = report["status"]
    style = "green" if status == "ok" else "red"
    console.print(_cell(f"plan {report['plan']} ({path}): {status}", style=f"bold {style}"))
    steps = Table(title="Steps", title_justify="left")
    for column in ("node", "line", "status", "gas ETH"):
        steps.add_column(column, justify="right" if column in ("line", "gas ETH") else "left")
    first, last, hidden = shown_steps(report["steps"], max_steps)
    gap = Text(f"... {hidden:,} more", style="dim")
    for index, step in enumerate(first + last):
        if hidden and index == len(first):
            steps.add_row(gap, "", "", "")
        steps.add_row(_cell(step["node"]), _cell(step["line"]),
                      _cell(step["status"], style="green" if step["status"] == "ok" else "red"),
                      _cell(step["gas_eth"]))
    if hidden:
        if not last:
            steps.add_row(gap, "", "", "")
        steps.caption = "--steps all shows every step; --format json lists them"
    console.print(steps)
    failure = report.get("failure")
    if failure:
        done = ", ".join(report["completed"]) or "none"
        not_run = ", ".join(report["not_run"]) or "none"
        console.print(_cell(f"{path}:{failure['line']}:{failure['column']}: "
                            f"error[{failure['code']}] {failure['message']}", style="red"))
        console.print(Panel(
            Text("\n".join(shown(line) for line in (
                f"failed node: {failure['node']}", f"completed: {done}", f"not run: {not_run}"))),
            title="run stopped", border_style="red"))
    for warning in report.get("warnings", []):
        console.print(_cell(f"{path}:{warning['line']}: warning[{warning['code']}] "
                            f"{warning['message']}", style="yellow"))
    if report["balances"]:
        console.print(_venue_table("Balances", report["balances"]))
    if report["collateral"] or report["debt"]:
        lending = Table(title="Lending", title_justify="left")
        for column in ("venue", "asset", "collateral", "debt"):
            lending.add_column(column, justify="right" if column in ("collateral", "debt") else "left")
        venues = sorted(set(report["collateral"]) | set(report["debt"]))
        for venue in venues:
            assets = sorted(set(report["collateral"].get(venue, {})) |
                            set(report["debt"].get(venue, {})))
            for asset in assets:
                lending.add_row(_cell(venue), _cell(asset),
                                _cell(report["collateral"].get(venue, {}).get(asset, "")),
                                _cell(report["debt"].get(venue, {}).get(asset, "")))
        console.print(lending)
        for venue, health in report["health"].items():
            console.print(_cell(f"health factor at {venue}: "
                                f"{health if health is not None else 'infinite'}"))
    if report["positions"]:
        perps = Table(title="Perp positions", title_justify="left")
        for column in ("venue", "base", "size", "margin"):
            perps.add_column(column, justify="right" if column in ("size", "margin") else "left")
        for venue, bases in report["positions"].items():
            margin = ", ".join(f"{v} {q}" for q, v in report["margin"].get(venue, {}).items())
            for base, size in bases.items():
                perps.add_row(_cell(venue), _cell(base), _cell(size), _cell(margin))
        console.print(perps)
    if report["exposure"]:
        exposure = Table(title="Net exposure", title_justify="left")
        exposure.add_column("asset")
        exposure.add_column("amount", justify="right")
        for asset, amount in report["exposure"].items():
            exposure.add_row(_cell(asset), _cell(amount))
        console.print(exposure)
    gas = report["gas"]
    costs = Table(title="Costs and value", title_justify="left")
    costs.add_column("item")
    costs.add_column("value", justify="right")
    costs.add_row("gas", f"{gas['units']:,} units = {gas['eth']} ETH = {gas['usd']} USD")
    costs.add_row("fees", f"{report['fees_usd']} USD")
    costs.add_row("slippage", f"{report['slippage_usd']} USD")
    costs.add_row("portfolio value at start", f"{report['value_usd']['start']} USD")
    costs.add_row("portfolio value at end", f"{report['value_usd']['end']} USD")
    console.print(costs)
