"""CEX trades: spot buy/sell with taker fee and limit, perps with margin and leverage.

Spot fees are taken from the asset received (`spot_fee: received`, as Binance, Bybit and
OKX do), or in the quote asset on top of a buy's cost (`spot_fee: quote`), at the venue's
`spot_taker_fee` (v3; its `taker_fee` when it gives none, which perps always pay). A perp is an
isolated-margin position with a size-weighted entry price: a trade in its direction adds
at the trade's price, a trade against it closes it first, releasing margin pro rata and
realising PnL against the entry price, and whatever is left over opens the other way at
the trade's price. Its liquidation price is `accounts.PerpPosition.liquidation_price`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from stratplan.dsl.models import CEXTradeInstruction
from stratplan.executors.accounts import cex_terms
from stratplan.executors.errors import ExecutionError
from stratplan.executors.ledger import Ledger
from stratplan.executors.market import CexVenue, Market
from stratplan.executors.protocol import ExecutionResult, Immediate, Order
from stratplan.executors.resolve import drawn, drawn_from, fmt


class CexExecutor(Immediate):
    """Spot and perp trades on a centralised exchange, at the market's prices."""

    families = frozenset({"cex_trade"})

    def apply(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        """Fill the trade or raise ExecutionError (SP300, SP303, SP306)."""
        instr = cast(CEXTradeInstruction, order.instruction)  # routed by `kind` (see wallet.py)
        terms = cex_terms(market, instr.venue)
        price = market.price(instr.base) / market.price(instr.quote)
        if instr.market == "spot":
            return self._spot(order, instr, terms, price, ledger, market)
        return self._perp(order, instr, terms, price, ledger, market)

    @staticmethod
    def _spot(order: Order, instr: CEXTradeInstruction, terms: CexVenue, price: Decimal,
              ledger: Ledger, market: Market) -> ExecutionResult:
        venue, base, quote = instr.venue, instr.base, instr.quote
        if order.limit is not None:
            fills = price <= order.limit if instr.side == "buy" else price >= order.limit
            if not fills:
                raise ExecutionError("SP306", f"{instr.side} limit {fmt(order.limit)} would not "
                                     f"fill: {instr.pair} trades at {fmt(price)}")
        if instr.side == "buy" and terms.spot_fee == "received":
            # Binance, Bybit and OKX take a buy's fee from the asset bought.
            amount = drawn(order, Decimal(0))
            fee = amount * terms.spot_fee_rate
            ledger.add("balance", venue, quote, -amount * price)
            ledger.add("balance", venue, base, amount - fee)
            fee_usd = fee * market.price(base)
        elif instr.side == "buy":
            amount = drawn(order, Decimal(0))
            cost = amount * price
            fee = cost * terms.spot_fee_rate
            ledger.add("balance", venue, quote, -(cost + fee))
            ledger.add("balance", venue, base, amount)
            fee_usd = fee * market.price(quote)
        else:  # a sell receives the quote asset: both conventions take the fee from it
            amount = drawn_from(order, ledger, "balance", venue, base)
            proceeds = amount * price
            fee = proceeds * terms.spot_fee_rate
            ledger.add("balance", venue, base, -amount)
            ledger.add("balance", venue, quote, proceeds - fee)
            fee_usd = fee * market.price(quote)
        ledger.record_cost("fee", fee_usd)
        return ExecutionResult(amount=amount, price=price)

    @staticmethod
    def _perp(order: Order, instr: CEXTradeInstruction, terms: CexVenue, price: Decimal,
              ledger: Ledger, market: Market) -> ExecutionResult:
        venue, quote, pair = instr.venue, instr.quote, instr.pair
        leverage = order.leverage if order.leverage is not None else terms.default_leverage
        if leverage <= 0 or leverage > terms.max_leverage:
            raise ExecutionError("SP303", f"leverage {fmt(leverage)}x is outside {venue}'s "
                                 f"range (up to {fmt(terms.max_leverage)}x)")
        amount = drawn(order, Decimal(0))
        delta = amount if instr.side == "buy" else -amount
        size = ledger.get("position", venue, pair)
        entry = ledger.get("entry", venue, pair)
        fee = amount * price * terms.taker_fee
        # A trade against the open position closes it first, releasing margin pro rata.
        closing = min(amount, abs(size)) if size * delta < 0 else Decimal(0)
        opening = amount - closing
        margin_needed = opening * price / leverage
        free = ledger.get("balance", venue, quote)
        posted = ledger.get("margin", venue, pair)
        released = posted * closing / abs(size) if closing else Decimal(0)
        pnl = (closing * (price - entry) * (1 if size > 0 else -1)) if closing else Decimal(0)
        if free + released + pnl < margin_needed + fee:
            raise ExecutionError("SP303", f"insufficient margin at {venue}: the trade needs "
                                 f"{fmt(margin_needed + fee)} {quote} (margin and fee), "
                                 f"{fmt(free + released + pnl)} {quote} is free")
        if released:
            ledger.add("margin", venue, pair, -released)
            ledger.add("balance", venue, quote, released)
        if pnl:
            ledger.add("balance", venue, quote, pnl)
        ledger.add("balance", venue, quote, -(margin_needed + fee))
        if margin_needed:
            ledger.add("margin", venue, pair, margin_needed)
        new_size = size + delta
        if opening and size * delta >= 0:
            new_entry = (abs(size) * entry + opening * price) / (abs(size) + opening)
        elif opening:
            new_entry = price
        else:
            new_entry = entry if new_size else Decimal(0)
        ledger.add("position", venue, pair, new_size - size)
        ledger.add("entry", venue, pair, new_entry - entry)
        ledger.record_cost("fee", fee * market.price(quote))
        return ExecutionResult(amount=amount, price=price, realised_pnl=pnl if closing else None)
