"""The text of `--executor evm`'s chain section: each transaction (node, status, gas used
and the model's estimate, hash) and each model-vs-chain difference."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from stratplan.terminal import shown


def render_chain(chain: dict[str, Any], console: Console) -> None:
    """Print the chain section of a run report."""
    table = Table(title=f"Transactions on the local chain (Aave {chain.get('aave', '?')})",
                  box=box.SIMPLE, title_justify="left")
    for column in ("node", "status", "gas used", "model gas", "hash"):
        table.add_column(column, justify="right" if "gas" in column else "left")
    for tx in chain["transactions"]:
        table.add_row(Text(shown(tx["node"])), tx["status"], f"{tx['gas_used']:,}",
                      f"{tx['model_gas']:,}", Text(tx["hash"] or "-"))
    console.print(table)
    differences = chain["differences"]
    if not differences:
        console.print("model and chain agree (amounts to the wei, the same verdicts)",
                      markup=False, highlight=False)
        return
    console.print(f"{len(differences)} model-vs-chain difference"
                  f"{'s' if len(differences) > 1 else ''}:", markup=False, highlight=False)
    for row in differences:
        console.print(Text(f"  {shown(row['node'])} (line {row['line']}): "
                           f"{shown(row['difference'])}"))


def render_chain_backtest(report: dict[str, Any], console: Console) -> None:
    """Print a backtest on the chain: the summary, the events, then the chain section."""
    summary = report["summary"]
    lines = [f"{report['plan']}: {report['start']} to {report['end']}, {report['steps']} steps "
             f"on the local chain ({report['status']})",
             f"value {summary['value_start']} -> {summary['value_end']} USD "
             f"(return {summary['return']})",
             f"lowest health {summary['min_health']}, liquidation calls "
             f"{summary['liquidations']}, firings "
             + (", ".join(f"{name} {count}" for name, count in summary["firings"].items())
                or "none")]
    for line in lines:
        console.print(Text(shown(line)))
    for event in report["events"]:
        console.print(Text(shown(f"  {event['time']} {event['kind']} "
                                 f"{event.get('trigger') or event.get('venue')}: "
                                 f"{event['message']}")))
    render_chain(report["chain"], console)
