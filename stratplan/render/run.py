"""The text run report: rich tables of steps, balances, lending, perps, exposure, carry and costs.

Every text that comes from the plan, the market or a file name (node, venue and asset names,
assert and failure messages, the path) is shown through `stratplan.terminal.shown` and put
in a `Text`, so neither a control character nor rich markup (`[bold]`) in it takes effect.

Amounts are rounded for reading (`readable`): at most 8 significant digits, thousands
separated, never scientific notation, and `≈` in front of a rounded one; the JSON report
keeps every digit. Tables are laid out to fit 100 columns without cutting a cell.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stratplan.interpreter.evaluate import readable as significant
from stratplan.terminal import shown

APPROX = "≈"


def readable(amount: object, unit: str = "") -> str:
    """A report amount (a decimal string) for reading: `≈89,950.249`, `-0.00044`, `3`;
    with `unit` after it. None reads `none`; a text that is not a number is shown as is."""
    if amount is None:
        return "none"
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    if not value.is_finite():
        return str(amount)
    text = significant(value)
    rounded = Decimal(text) != value
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, dot, fraction = digits.partition(".")
    text = f"{sign}{int(whole):,}{dot}{fraction}"
    return f"{APPROX if rounded else ''}{text}{' ' + unit if unit else ''}"


def percent(fraction: object) -> str:
    """A fraction as a readable percentage: 0.1154784... -> `≈11.547842%`."""
    if fraction is None:
        return "none"
    return readable(Decimal(str(fraction)) * 100) + "%"


def _cell(value: object, style: str = "") -> Text:
    """A table cell or line: the text as shown, never read as rich markup."""
    return Text(shown(str(value)), style=style)


def _num(amount: object, unit: str = "") -> Text:
    """An amount cell: rounded for reading, never wrapped."""
    return _cell(readable(amount, unit))


def _table(title: str, *columns: str, right: tuple[str, ...] = ()) -> Table:
    """A report table: light borders, numbers right-aligned; no cell is wrapped, and the
    columns are few and short enough to fit 80 columns for positions of ordinary size."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left", no_wrap=True,
                         min_width=len(column))
    return table


def shown_steps(steps: list[Any], limit: int | None) -> tuple[list[Any], list[Any], int]:
    """(first, last, hidden): at most `limit` steps, half from each end (None: all)."""
    if limit is None or len(steps) <= limit:
        return steps, [], 0
    head = (limit + 1) // 2
    tail = limit - head
    return steps[:head], steps[len(steps) - tail:] if tail else [], len(steps) - limit


def _steps(report: dict[str, Any], max_steps: int | None) -> Table:
    steps = _table("Steps", "node", "line", "status", "gas ETH", right=("line", "gas ETH"))
    first, last, hidden = shown_steps(report["steps"], max_steps)
    gap = Text(f"... {hidden:,} more", style="dim")
    for index, step in enumerate(first + last):
        if hidden and index == len(first):
            steps.add_row(gap, "", "", "")
        steps.add_row(_cell(step["node"]), _cell(step["line"]),
                      _cell(step["status"], style="green" if step["status"] == "ok" else "red"),
                      _num(step["gas_eth"]))
    if hidden:
        if not last:
            steps.add_row(gap, "", "", "")
        steps.caption = "--steps all shows every step; --format json lists them"
    return steps


def _balances(report: dict[str, Any]) -> Table:
    table = _table("Balances", "venue", "asset", "amount", right=("amount",))
    for venue, assets in report["balances"].items():
        for asset, amount in assets.items():
            table.add_row(_cell(venue), _cell(asset), _num(amount))
    return table


def _lending(report: dict[str, Any]) -> list[Table]:
    positions = _table("Lending positions", "venue", "asset", "collateral", "debt",
                       "oracle", "market", "liq. price",
                       right=("collateral", "debt", "oracle", "market", "liq. price"))
    accounts = _table("Lending accounts", "venue", "e-mode", "health", "collateral", "debt",
                      "can borrow", "lev.",
                      right=("health", "collateral", "debt", "can borrow", "lev."))
    lending = report.get("lending", {})
    collateral, debt = report["collateral"], report["debt"]
    for venue in sorted(set(collateral) | set(debt)):
        account = lending.get(venue, {})
        prices = account.get("liquidation_price", {})
        quotes = account.get("prices", {})
        for asset in sorted(set(collateral.get(venue, {})) | set(debt.get(venue, {}))):
            held, owed = collateral.get(venue, {}).get(asset), debt.get(venue, {}).get(asset)
            quote = quotes.get(asset, {})
            positions.add_row(_cell(venue), _cell(asset), _cell(readable(held) if held else ""),
                              _cell(readable(owed) if owed else ""),
                              _cell(readable(quote["oracle"]) if quote else ""),
                              _cell(readable(quote["market"]) if quote else ""),
                              _cell(readable(prices[asset]) if asset in prices else ""))
        if account:
            health = account["health"]
            leverage = account["leverage"]
            accounts.add_row(_cell(venue), _cell(account["emode"] or "none"),
                             _cell("infinite" if health is None else readable(health)),
                             _num(account["collateral_usd"]), _num(account["debt_usd"]),
                             _num(account["borrow_capacity_usd"]),
                             _cell("none" if leverage is None else readable(leverage) + "x"))
    positions.caption = ("prices in USD; oracle: what the venue values collateral at (health,\n"
                         "LTV, liquidations), market: the exchanges' price; liq. price: the\n"
                         "oracle price, others fixed, at which health is 1")
    tables = [positions]
    if accounts.row_count:
        accounts.caption = "in USD; can borrow: what `borrow max` may take; lev. = collateral / equity"
        tables.append(accounts)
    return tables


def _v1_perps(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The perps of a v1 report, which has only `positions` and `margin` by venue."""
    perps: dict[str, dict[str, Any]] = {}
    for venue, bases in report.get("positions", {}).items():
        quote, margin = next(iter(report.get("margin", {}).get(venue, {}).items()), ("", None))
        for base, size in bases.items():
            perps.setdefault(venue, {})[base] = {
                "size": size, "quote": quote, "entry_price": None, "mark_price": None,
                "unrealised_pnl": None, "margin": margin, "liquidation_price": None,
                "leverage": None}
    return perps


def _perps(report: dict[str, Any]) -> Table:
    table = _table("Perp positions", "venue", "perp", "size", "entry", "mark", "PnL", "margin",
                   "liq. price", "lev.",
                   right=("size", "entry", "mark", "PnL", "margin", "liq. price", "lev."))
    perps = report["perps"] if "perps" in report else _v1_perps(report)
    for venue, bases in perps.items():
        for base, perp in bases.items():
            leverage = perp["leverage"]
            pair = base if "/" in base or not perp["quote"] else f"{base}/{perp['quote']}"
            table.add_row(_cell(venue), _cell(pair), _num(perp["size"]),
                          _num(perp["entry_price"]), _num(perp["mark_price"]),
                          _num(perp["unrealised_pnl"]), _num(perp["margin"]),
                          _num(perp["liquidation_price"]),
                          _cell("none" if leverage is None else readable(leverage) + "x"))
    table.caption = "isolated margin; prices, PnL, margin in the quote; lev. = notional / equity"
    return table


def _exposure(report: dict[str, Any]) -> Table:
    table = _table("Net exposure", "asset", "amount", right=("amount",))
    for asset, amount in report["exposure"].items():
        table.add_row(_cell(asset), _num(amount))
    table.caption = "balances + collateral - debt + perps + posted margin"
    return table


def _carry(report: dict[str, Any]) -> Table:
    carry = report["carry"]
    table = _table("Carry at the market's rates", "item", "USD a year", right=("USD a year",))
    for label, key in (("funding", "funding_usd"), ("supply interest", "supply_usd"),
                       ("borrow interest", "borrow_usd"), ("staking", "staking_usd"),
                       ("total", "total_usd")):
        table.add_row(label, _num(carry[key]))
    table.add_row("APR on the end value", _cell(percent(carry["apr"])))
    return table


def _costs(report: dict[str, Any]) -> Table:
    gas = report["gas"]
    costs = _table("Costs and value", "item", "value", right=("value",))
    costs.add_row("gas", _cell(f"{gas['units']:,} units = {readable(gas['eth'], 'ETH')} = "
                               f"{readable(gas['usd'], 'USD')}"))
    costs.add_row("fees", _num(report["fees_usd"], "USD"))
    costs.add_row("slippage", _num(report.get("slippage_usd", "0"), "USD"))
    costs.add_row("portfolio value at start", _num(report["value_usd"]["start"], "USD"))
    costs.add_row("portfolio value at end", _num(report["value_usd"]["end"], "USD"))
    return costs


def _show(console: Console, table: Table) -> None:
    """A table, after a blank line."""
    console.print()
    console.print(table)


def render_run(report: dict[str, Any], console: Console, path: str,
               max_steps: int | None = None) -> None:
    """Print a run report for a person; `max_steps` rows of the step table (None: all)."""
    status = report["status"]
    style = "green" if status == "ok" else "red"
    console.print(_cell(f"plan {report['plan']} ({path}): {status}", style=f"bold {style}"))
    _show(console, _steps(report, max_steps))
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
        _show(console, _balances(report))
    if report["collateral"] or report["debt"]:
        for table in _lending(report):
            _show(console, table)
    if report.get("perps") or ("perps" not in report and report.get("positions")):
        _show(console, _perps(report))
    if report["exposure"]:
        _show(console, _exposure(report))
    if "carry" in report:
        _show(console, _carry(report))
    _show(console, _costs(report))
