"""Step 3 of a backtest step as the report sees it: the liquidations the venues made
(executors/liquidation.py) turned into events, fills and the `liquidations` PnL part
(LANGUAGE.md section 9, "Liquidations" and "Reports").

- every call is one `liquidation` event (SP501, at the instruction that last increased the
  debt or opened the perp) naming its collateral, debt, repaid and seized amounts, and one
  `liquidation` fill whose realised PnL is minus its loss;
- a write-off is one `bad_debt` event with `written_off_usd` (SP501 too); the account owes
  that much less, a gain in the `liquidations` part, and no fill;
- the part moves by minus each loss (a write-off's loss is negative), so the parts still
  add up exactly to the value change.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from stratplan.dsl.spans import Span
from stratplan.executors.liquidation import Liquidation
from stratplan.interpreter.fills import Fill
from stratplan.interpreter.time.results import Event


def record_liquidations(found: list[Liquidation], now: int, span_of: Callable[[Liquidation], Span],
                        events: list[Event], fills: list[Fill] | None,
                        parts: dict[str, Decimal]) -> None:
    """Add the step's liquidations to the events, the fills and the step's PnL parts."""
    for item in found:
        span = span_of(item)
        parts["liquidations"] -= item.loss_usd
        if item.kind == "bad_debt":
            events.append(Event(now, "bad_debt", item.venue, None, span.line, "SP501",
                                item.message, item.loss_usd, span, debt=item.asset,
                                written_off_usd=item.written_off_usd))
            continue
        events.append(Event(now, "liquidation", item.venue, None, span.line, "SP501",
                            item.message, item.loss_usd, span, collateral=item.collateral,
                            debt=item.asset, repaid=item.repaid, seized=item.seized))
        if fills is not None and item.repaid is not None:
            fills.append(Fill(now, None, None, item.venue, "liquidation", item.side,
                              item.asset, item.repaid, item.price, None, -item.loss_usd))
