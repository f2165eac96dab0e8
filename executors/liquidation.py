"""Liquidations, as the venues do them (LANGUAGE.md section 9, "Liquidations"; step 3 of
section 8).

Lending: Aave v3.3 and later (aave-dao/aave-v3-origin, `LiquidationLogic`). While an
account's health factor (at its venue's oracle prices, `GenericLogic.
calculateUserAccountData`) is below 1 and it holds collateral, a liquidator calls
`liquidationCall`. Each rule of a call is one function below, named for what it decides:

1. `choose_debt`, `choose_collateral`: which debt it repays and which collateral it takes
   (the liquidator's choice: the largest debt, the largest bonus);
2. `max_repayable`: how much of that debt it may repay (`maxLiquidatableDebt`: the close
   factor on the account's total debt, or all of it);
3. `seizable`: what that repayment seizes (`_calculateAvailableCollateralToLiquidate`);
4. `leaving_no_dust`: the amount Aave accepts (`MustNotLeaveDust`);
5. `make_call`: the call on the books, one `Liquidation` event;
6. `write_off`: bad debt burned when no collateral is left (`_burnBadDebt`).

`liquidate_lending` repeats calls within the step until health is at least 1 or no
collateral is left. Amounts are decimals, not Aave's integers: the next issue proves the
model against Aave's bytecode, within its rounding.

Perps: a position whose margin + unrealised PnL falls below its maintenance margin (by
notional brackets, accounts.PerpPosition) is closed at the mark and its margin is lost.

Each event's loss is in USD at market prices: the portfolio's value before less its value
after (a write-off's is negative: the account owes less).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from stratplan.dsl.decimals import readable
from stratplan.executors.accounts import (
    asset_terms,
    emode_in_use,
    lending_account,
    lending_terms,
    perp_position,
    portfolio_value,
)
from stratplan.executors.ledger import Ledger
from stratplan.executors.market import Market
from stratplan.executors.oracle import oracle_price

ZERO = Decimal(0)
# LiquidationLogic.CLOSE_FACTOR_HF_THRESHOLD: at or below this health the whole debt of
# the chosen asset may be repaid.
CLOSE_FACTOR_HF_THRESHOLD = Decimal("0.95")
# A guard, not a rule: with both USD thresholds of the market set to 0, an e-mode account
# whose health sits exactly on threshold · (1 + bonus) would have half its debt repaid
# forever; a step makes at most this many calls at one venue.
MAX_CALLS = 1000


@dataclass(frozen=True)
class Liquidation:
    """One liquidation call, a bad-debt write-off or a perp closed: where, what, the loss."""

    venue: str
    asset: str            # the debt repaid or written off, or the perp's BASE/QUOTE pair
    kind: str             # "lending", "bad_debt" or "perp"
    loss_usd: Decimal     # value before - value after, market prices (negative: a gain)
    message: str
    collateral: str | None = None        # lending: the collateral asset seized
    repaid: Decimal | None = None        # lending: units of `asset` repaid; perp: |size|
    seized: Decimal | None = None        # lending: units of `collateral` seized
    price: Decimal | None = None         # lending: the debt's oracle price; perp: the mark
    side: str | None = None              # perp: the closing trade, "sell" a long, "buy" a short
    written_off_usd: Decimal | None = None   # bad_debt: what was written off, market prices


@dataclass(frozen=True)
class Call:
    """One liquidation call as the liquidator would make it: the debt it repays and the
    collateral it seizes, in units of each, and the bonus it earns."""

    debt: str
    collateral: str
    repaid: Decimal
    seized: Decimal
    bonus: Decimal


def _fmt(value: Decimal) -> str:
    return readable(value)


# --- rule 1: which debt, which collateral ------------------------------------------------------


def choose_debt(ledger: Ledger, market: Market, venue: str) -> str:
    """The debt asset the liquidator repays: the one with the largest debt in USD at oracle
    prices (ties: the first by name). Aave lets the caller name any debt asset
    (`liquidationCall(collateralAsset, debtAsset, ...)`); the largest is the one the close
    factor lets them repay most of."""
    debts = ledger.items("debt", venue)
    return max(sorted(debts), key=lambda asset: debts[asset] * oracle_price(market, venue, asset))


def choose_collateral(ledger: Ledger, market: Market, venue: str) -> str | None:
    """The collateral asset the liquidator seizes: the one with the largest liquidation
    bonus (under the account's e-mode), ties the largest USD value at oracle prices, then
    the first by name; None when none can be seized. Only assets the venue lists with a
    liquidation threshold above 0 can be (ValidationLogic.validateLiquidationCall:
    `isCollateralEnabled`)."""
    terms = lending_terms(market, venue)
    emode = emode_in_use(terms, ledger.items("debt", venue))
    best: tuple[Decimal, Decimal, str] | None = None
    for asset, held in sorted(ledger.items("collateral", venue).items()):
        own = asset_terms(terms, asset, emode)
        if own is None or own.liquidation_threshold <= 0:
            continue
        rank = (-own.liquidation_bonus, -held * oracle_price(market, venue, asset), asset)
        if best is None or rank < best:
            best = rank
    return None if best is None else best[2]


def seizable_collateral(ledger: Ledger, market: Market, venue: str) -> bool:
    """True while the account holds collateral a liquidator can seize (GenericLogic counts
    only that in `totalCollateralInBaseCurrency`)."""
    return choose_collateral(ledger, market, venue) is not None


# --- rule 2: how much of the debt ---------------------------------------------------------------


def max_repayable(ledger: Ledger, market: Market, venue: str, debt: str, collateral: str,
                  health: Decimal) -> Decimal:
    """Units of `debt` one call may repay (LiquidationLogic.executeLiquidationCall,
    `maxLiquidatableDebt`): all of it when health <= 0.95, or when the chosen debt or the
    chosen collateral is worth less than `full_close_below_usd` (2,000); otherwise
    `close_factor` (50%) of the account's *total* debt value, capped by that asset's debt.
    Values in USD at oracle prices."""
    rules = lending_terms(market, venue).liquidation
    owed = ledger.get("debt", venue, debt)
    debt_price = oracle_price(market, venue, debt)
    debt_usd = owed * debt_price
    collateral_usd = ledger.get("collateral", venue, collateral) * \
        oracle_price(market, venue, collateral)
    if health <= CLOSE_FACTOR_HF_THRESHOLD or debt_usd < rules.full_close_below_usd or \
            collateral_usd < rules.full_close_below_usd:
        return owed
    total_usd = lending_account(ledger, market, venue).debt_usd
    cap_usd = total_usd * rules.close_factor
    return cap_usd / debt_price if debt_usd > cap_usd else owed


# --- rule 3: what it seizes ----------------------------------------------------------------------


def seizable(ledger: Ledger, market: Market, venue: str, debt: str, collateral: str,
             repaid: Decimal, bonus: Decimal) -> tuple[Decimal, Decimal]:
    """(repaid, seized): the collateral worth `repaid` · (1 + bonus) at oracle prices; when
    that is more than the account holds, all of it, and only the debt it covers is repaid
    (LiquidationLogic._calculateAvailableCollateralToLiquidate). Aave's share of the bonus
    (its protocol fee) comes out of the liquidator's part, not the user's."""
    debt_price = oracle_price(market, venue, debt)
    collateral_price = oracle_price(market, venue, collateral)
    held = ledger.get("collateral", venue, collateral)
    seized = repaid * debt_price * (1 + bonus) / collateral_price
    if seized <= held:
        return repaid, seized
    return held * collateral_price / (debt_price * (1 + bonus)), held


# --- rule 4: the amount Aave accepts ----------------------------------------------------------


def leaving_no_dust(ledger: Ledger, market: Market, venue: str, call: Call) -> Call | None:
    """The call Aave accepts (LiquidationLogic: `MustNotLeaveDust`): one that repays the
    whole debt of its asset, or seizes the whole collateral of its asset, or leaves at least
    `min_leftover_usd` (1,000) of both. Otherwise the liquidator repays the largest amount
    that leaves that much of both,

        repaid = min(debt - L / p_debt, (collateral · p_collateral - L) / (p_debt · (1 + bonus))),

    and when no positive amount does, there is no call (None)."""
    leftover = lending_terms(market, venue).liquidation.min_leftover_usd
    owed = ledger.get("debt", venue, call.debt)
    held = ledger.get("collateral", venue, call.collateral)
    if call.repaid >= owed or call.seized >= held:
        return call
    debt_price = oracle_price(market, venue, call.debt)
    collateral_price = oracle_price(market, venue, call.collateral)
    if (owed - call.repaid) * debt_price >= leftover and \
            (held - call.seized) * collateral_price >= leftover:
        return call
    repaid = min(owed - leftover / debt_price,
                 (held * collateral_price - leftover) / (debt_price * (1 + call.bonus)))
    if repaid <= 0:
        return None
    seized = repaid * debt_price * (1 + call.bonus) / collateral_price
    return Call(call.debt, call.collateral, repaid, seized, call.bonus)


def next_call(ledger: Ledger, market: Market, venue: str) -> Call | None:
    """The call a liquidator makes now (rules 1-4), or None: health at least 1, no
    collateral to seize, or no amount Aave accepts."""
    health = lending_account(ledger, market, venue).health
    if health is None or health >= 1:
        return None
    collateral = choose_collateral(ledger, market, venue)
    if collateral is None:
        return None
    debt = choose_debt(ledger, market, venue)
    terms = asset_terms(lending_terms(market, venue), collateral,
                        emode_in_use(lending_terms(market, venue), ledger.items("debt", venue)))
    bonus = terms.liquidation_bonus if terms is not None else ZERO
    wanted = max_repayable(ledger, market, venue, debt, collateral, health)
    repaid, seized = seizable(ledger, market, venue, debt, collateral, wanted, bonus)
    return leaving_no_dust(ledger, market, venue, Call(debt, collateral, repaid, seized, bonus))


# --- rules 5 and 6: the call on the books, bad debt --------------------------------------------


def make_call(ledger: Ledger, market: Market, venue: str, call: Call) -> Liquidation:
    """Seize the collateral and repay the debt of one call: one `lending` event, its loss
    in USD at market prices (the collateral lost less the debt repaid)."""
    health = lending_account(ledger, market, venue).health
    before = portfolio_value(ledger, market)
    repaid = min(call.repaid, ledger.get("debt", venue, call.debt))
    seized = min(call.seized, ledger.get("collateral", venue, call.collateral))
    ledger.add("collateral", venue, call.collateral, -seized)
    ledger.add("debt", venue, call.debt, -repaid)
    loss = before - portfolio_value(ledger, market)
    after = lending_account(ledger, market, venue).health
    shown = "" if health is None else f" at health {_fmt(health)}"
    now = "" if after is None else f", health now {_fmt(after)}"
    if not seizable_collateral(ledger, market, venue):
        now = ", no collateral left"
    return Liquidation(venue, call.debt, "lending", loss,
                       f"{venue} liquidated{shown}: {_fmt(repaid)} {call.debt} repaid, "
                       f"{_fmt(seized)} {call.collateral} seized, loss {_fmt(loss)} USD{now}",
                       collateral=call.collateral, repaid=repaid, seized=seized,
                       price=oracle_price(market, venue, call.debt))


def write_off(ledger: Ledger, market: Market, venue: str) -> Liquidation | None:
    """When a call has left the account no collateral to seize and debt still owed, Aave
    burns every debt of the account and books it as the reserves' deficit
    (LiquidationLogic._burnBadDebt, v3.3): the account owes nothing and accrues nothing
    after. One `bad_debt` event; its loss is minus what was written off (USD, market
    prices): a gain of the user's."""
    debts = ledger.items("debt", venue)
    if not debts or seizable_collateral(ledger, market, venue):
        return None
    written = sum((amount * market.price(asset) for asset, amount in sorted(debts.items())),
                  ZERO)
    for asset, amount in sorted(debts.items()):
        ledger.add("debt", venue, asset, -amount)
    parts = ", ".join(f"{_fmt(amount)} {asset}" for asset, amount in sorted(debts.items()))
    return Liquidation(venue, min(debts, key=lambda a: (-debts[a] * market.price(a), a)),
                       "bad_debt", -written,
                       f"{venue}: no collateral left; {parts} ({_fmt(written)} USD) of bad "
                       "debt written off", written_off_usd=written)


def liquidate_lending(ledger: Ledger, market: Market, venue: str) -> list[Liquidation]:
    """Every call a liquidator makes at `venue` now, in order, until health is at least 1
    or no collateral is left (then the rest of the debt is written off)."""
    events: list[Liquidation] = []
    for _ in range(MAX_CALLS):
        call = next_call(ledger, market, venue)
        if call is None:
            break
        events.append(make_call(ledger, market, venue, call))
        bad = write_off(ledger, market, venue)
        if bad is not None:
            events.append(bad)
            break
    return events


# --- perps ---------------------------------------------------------------------------------------


def liquidate_perp(ledger: Ledger, market: Market, venue: str, pair: str) -> Liquidation | None:
    """Close the perp at the mark, losing its margin, when margin + unrealised PnL falls
    below its maintenance margin (notional · rate - amount of its bracket)."""
    if not ledger.get("position", venue, pair):
        return None
    position = perp_position(ledger, market, venue, pair)
    if not position.liquidatable:
        return None
    size, mark, margin, entry = (position.size, position.mark_price, position.margin,
                                 position.entry_price)
    before = portfolio_value(ledger, market)
    ledger.add("position", venue, pair, -size)
    ledger.add("entry", venue, pair, -entry)
    if margin:
        ledger.add("margin", venue, pair, -margin)
    loss = before - portfolio_value(ledger, market)
    side = "long" if size > 0 else "short"
    return Liquidation(venue, pair, "perp", loss,
                       f"{venue} {pair} {side} of {_fmt(abs(size))} liquidated at mark "
                       f"{_fmt(mark)} (entry {_fmt(entry)}, maintenance "
                       f"{_fmt(position.maintenance)}): margin {_fmt(margin)} "
                       f"{position.quote} lost, loss {_fmt(loss)} USD",
                       repaid=abs(size), price=mark, side="sell" if size > 0 else "buy")


def liquidate(ledger: Ledger, market: Market) -> list[Liquidation]:
    """Every liquidation due now: lending venues (every call), then perps, in name order."""
    events: list[Liquidation] = []
    for venue in sorted(ledger.venues("debt")):
        events += liquidate_lending(ledger, market, venue)
    for venue in sorted(ledger.venues("position")):
        for pair in sorted(ledger.items("position", venue)):
            event = liquidate_perp(ledger, market, venue, pair)
            if event is not None:
                events.append(event)
    return events
