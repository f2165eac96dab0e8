"""The trade log: one `Fill` for every trade, swap, stake, supply, borrow, repay, withdraw,
transfer, flash loan and liquidation a run makes (LANGUAGE.md section 9, "Reports": the
backtest's `fills`).

The engine makes a fill from each operation that completed in a committed transaction
(`fill_of`); a backtest stamps it with the step's time and trigger, and adds one per
liquidation call. Fields that do not apply are None:

- `kind`: spot, perp, swap, stake, unstake, supply, withdraw, borrow, repay, flash,
  transfer or liquidation (wrap and unwrap are not fills);
- `venue`: where it happened; a transfer names both ends, `wallet->binance`;
- `side`: buy or sell for a trade (and for a perp's liquidation, the closing side),
  borrow or repay for a flash loan;
- `asset`: a trade's market (`BTC/USDT`), a swap's or stake's `IN->OUT`, else the asset;
- `amount`: the amount the instruction used, before fees, in units of the asset (of IN,
  of BASE); a liquidation's: the debt repaid (or the perp's size closed);
- `price`: a trade's price (QUOTE per BASE), a swap's or stake's OUT received per IN before
  fees and slippage, a lending liquidation's oracle price of the debt, else the asset's USD
  market price;
- `fee_usd`: the fees it paid (not gas; not slippage), USD;
- `realised_pnl_usd`: a perp trade's realised PnL, a liquidation's loss as a negative, USD.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stratplan.executors.market import Market
from stratplan.executors.protocol import ExecutionResult

_CONTRACT_KINDS = {"stake": "stake", "unstake": "unstake", "supply": "supply",
                   "withdraw": "withdraw", "borrow": "borrow", "repay": "repay",
                   "swap": "swap", "flash_borrow": "flash", "flash_repay": "flash"}


@dataclass(slots=True)
class Fill:
    """One line of the trade log (see the module's docstring for each field)."""

    time: int | None
    node: str | None
    trigger: str | None
    venue: str
    kind: str
    side: str | None
    asset: str
    amount: Decimal
    price: Decimal | None
    fee_usd: Decimal | None
    realised_pnl_usd: Decimal | None


def _usd_price(market: Market, asset: str) -> Decimal | None:
    return market.prices.get(asset)


def fill_of(op: Any, node: str, result: ExecutionResult, market: Market,
            fee_usd: Decimal) -> Fill | None:
    """The fill of one completed operation (None for wrap and unwrap); `fee_usd` is what
    the operation added to the run's fees. Time and trigger are set by the backtest."""
    kind = op.kind
    fee = fee_usd if fee_usd else Decimal(0)
    if kind == "wallet_transfer":
        return Fill(None, node, None, f"{op.source_venue}->{op.target_venue}", "transfer",
                    None, op.token, result.amount, _usd_price(market, op.token), fee, None)
    if kind == "cex_trade":
        pnl = result.realised_pnl
        quote_price = _usd_price(market, op.quote)
        realised = pnl * quote_price if pnl is not None and quote_price is not None else None
        traded = result.price if result.price is not None else \
            market.price(op.base) / market.price(op.quote)
        return Fill(None, node, None, op.venue, op.market, op.side, op.pair, result.amount,
                    traded, fee, realised)
    fill_kind = _CONTRACT_KINDS.get(op.operation)
    if fill_kind is None:
        return None
    venue = op.venue or ""
    side = None
    asset = op.token_in
    price: Decimal | None = result.price
    if fill_kind == "flash":
        side = "borrow" if op.operation == "flash_borrow" else "repay"
    elif fill_kind in ("swap", "stake", "unstake"):
        asset = f"{op.token_in}->{op.token_out}"
        if price is None and fill_kind != "swap":
            price = market.rate(op.token_in) / market.rate(op.token_out or op.token_in)
    if price is None:
        price = _usd_price(market, op.token_in)
    return Fill(None, node, None, venue, fill_kind, side, asset, result.amount, price, fee,
                None)
