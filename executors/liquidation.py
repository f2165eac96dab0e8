"""Liquidations, as the venues do them (LANGUAGE.md section 8, step 3).

Lending (Aave): an account whose health factor is below 1 is liquidated: a liquidator
repays up to the close factor of its largest debt (50% while health >= 0.95, all of it
below) and seizes collateral worth the repaid value times 1 + the liquidation bonus of the
seized asset (or of its e-mode category: accounts.liquidation_bonus), largest collateral
first. When the collateral
cannot cover that, all of it is seized and only the debt it covers is repaid. An account
with no collateral left is not liquidated again: what it still owes is bad debt.

Perps: a position whose margin + unrealised PnL falls below `maintenance_margin` * notional
(accounts.perp_position, with the venue's maintenance margin) is closed at the mark and its
margin is lost.

Each liquidation is a `Liquidation` with its loss in USD: the portfolio's value before
less its value after, at the same prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from stratplan.executors.accounts import (
    health_factor,
    liquidation_bonus,
    perp_position,
    portfolio_value,
)
from stratplan.executors.ledger import Ledger
from stratplan.executors.market import Market

ZERO = Decimal(0)
CLOSE_FACTOR = Decimal("0.5")
FULL_CLOSE_BELOW = Decimal("0.95")


@dataclass(frozen=True)
class Liquidation:
    """One liquidation: where, what, and the loss in USD."""

    venue: str
    asset: str            # the debt repaid, or the perp's BASE/QUOTE pair
    kind: str             # "lending", "bad_debt" or "perp"
    loss_usd: Decimal
    message: str


def _fmt(value: Decimal) -> str:
    return f"{value.normalize():f}" if value == value.to_integral_value() else \
        f"{value.quantize(Decimal('0.00000001')).normalize():f}"


def liquidate_lending(ledger: Ledger, market: Market, venue: str,
                      insolvent: set[str]) -> Liquidation | None:
    """Liquidate the account at a lending venue if its health is below 1.

    `insolvent` holds the venues already reported as bad debt (no collateral left): they
    are not liquidated again; a venue is added when its collateral runs out."""
    health = health_factor(ledger, market, venue)
    if health is None or health >= 1 or venue in insolvent:
        return None
    debts = ledger.items("debt", venue)
    collateral = ledger.items("collateral", venue)
    if not collateral:
        insolvent.add(venue)
        owed = sum((a * market.price(t) for t, a in debts.items()), ZERO)
        return Liquidation(venue, next(iter(sorted(debts))), "bad_debt", ZERO,
                           f"{venue}: no collateral left; {_fmt(owed)} USD of debt is bad debt")
    before = portfolio_value(ledger, market)
    debt_asset = max(sorted(debts), key=lambda t: debts[t] * market.price(t))
    factor = CLOSE_FACTOR if health >= FULL_CLOSE_BELOW else Decimal(1)
    to_repay_usd = debts[debt_asset] * market.price(debt_asset) * factor
    repaid_usd = ZERO
    seized_parts: list[str] = []
    for asset in sorted(collateral, key=lambda t: (-collateral[t] * market.price(t), t)):
        if repaid_usd >= to_repay_usd:
            break
        price = market.price(asset)
        bonus = liquidation_bonus(ledger, market, venue, asset)
        held_usd = collateral[asset] * price
        wanted_usd = (to_repay_usd - repaid_usd) * (1 + bonus)
        if held_usd >= wanted_usd:
            seized = wanted_usd / price
            repaid_usd = to_repay_usd
        else:
            seized = collateral[asset]
            repaid_usd += held_usd / (1 + bonus)
        ledger.add("collateral", venue, asset, -seized)
        seized_parts.append(f"{_fmt(seized)} {asset}")
    repaid = repaid_usd / market.price(debt_asset)
    repaid = min(repaid, ledger.get("debt", venue, debt_asset))
    ledger.add("debt", venue, debt_asset, -repaid)
    loss = before - portfolio_value(ledger, market)
    after = health_factor(ledger, market, venue)
    note = "" if ledger.items("collateral", venue) else "; no collateral left"
    if not ledger.items("collateral", venue) and ledger.items("debt", venue):
        insolvent.add(venue)
        note += " (what it still owes is bad debt)"
    return Liquidation(venue, debt_asset, "lending", loss,
                       f"{venue} liquidated at health {_fmt(health)}: {_fmt(repaid)} "
                       f"{debt_asset} repaid, {', '.join(seized_parts)} seized, loss "
                       f"{_fmt(loss)} USD" + (f", health now {_fmt(after)}" if after else "")
                       + note)


def liquidate_perp(ledger: Ledger, market: Market, venue: str, pair: str) -> Liquidation | None:
    """Close the perp at the mark, losing its margin, when margin + unrealised PnL falls
    below the maintenance margin of its notional."""
    if not ledger.get("position", venue, pair):
        return None
    position = perp_position(ledger, market, venue, pair)
    size, mark, margin, entry = (position.size, position.mark_price, position.margin,
                                 position.entry_price)
    quote = position.quote
    if margin + position.unrealised_pnl >= position.maintenance_margin * position.notional:
        return None
    before = portfolio_value(ledger, market)
    ledger.add("position", venue, pair, -size)
    ledger.add("entry", venue, pair, -entry)
    if margin:
        ledger.add("margin", venue, pair, -margin)
    loss = before - portfolio_value(ledger, market)
    side = "long" if size > 0 else "short"
    return Liquidation(venue, pair, "perp", loss,
                       f"{venue} {pair} {side} of {_fmt(abs(size))} liquidated at mark "
                       f"{_fmt(mark)} (entry {_fmt(entry)}): margin {_fmt(margin)} {quote} "
                       f"lost, loss {_fmt(loss)} USD")


def liquidate(ledger: Ledger, market: Market, insolvent: set[str]) -> list[Liquidation]:
    """Every liquidation due now: lending venues, then perps, in name order."""
    events: list[Liquidation] = []
    for venue in sorted(ledger.venues("debt")):
        event = liquidate_lending(ledger, market, venue, insolvent)
        if event is not None:
            events.append(event)
    for venue in sorted(ledger.venues("position")):
        for pair in sorted(ledger.items("position", venue)):
            event = liquidate_perp(ledger, market, venue, pair)
            if event is not None:
                events.append(event)
    return events
