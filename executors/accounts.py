"""Money arithmetic of accounts, in one place for the executors, the rules, the state
functions and the run report.

- A lending account (`lending_account`): the e-mode category it uses, collateral and debt in
  USD, health factor, what it may still borrow, leverage, and the liquidation price of each
  collateral asset (`collateral_liquidation_price`).
- A perp position (`perp_position`): size, entry and mark price, posted margin, unrealised
  PnL, maintenance margin by notional brackets, liquidation price and leverage, under
  isolated margin.

v3 (LANGUAGE.md section 9): a lending account is valued at its venue's oracle prices
(executors/oracle.py), as Aave's GenericLogic.calculateUserAccountData does: health, LTV,
borrow capacity and the liquidation price of a collateral asset. `portfolio_value` and
`exposure` stay at market prices.
- `exposure` and `portfolio_value` over every venue.

E-mode (LANGUAGE.md section 4): an account uses a category at a venue exactly when every
asset it borrows there (the borrow being checked included) belongs to the category; its
assets in the category then use the category's LTV, liquidation threshold and bonus, the
others their own. With no debt there is no category in use. When several categories hold
every borrowed asset, the first one the market lists is used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from stratplan.dsl.decimals import EXACT
from stratplan.executors.errors import ExecutionError
from stratplan.executors.ledger import Book, Ledger
from stratplan.executors.market import (
    Brackets,
    CexVenue,
    EModeCategory,
    LendingAsset,
    LendingVenue,
    Market,
)
from stratplan.executors.oracle import oracle_price

INFINITE = Decimal("Infinity")
ZERO = Decimal(0)


# --- lending ----------------------------------------------------------------------------------


def lending_terms(market: Market, venue: str) -> LendingVenue:
    """The venue's lending terms; ExecutionError(SP102) when it is not a lending venue."""
    terms = market.venues.get(venue)
    if not isinstance(terms, LendingVenue):
        raise ExecutionError("SP102", f"{venue} is not a lending venue")
    return terms


def emode_in_use(terms: LendingVenue, borrowed: Iterable[str]) -> str | None:
    """The e-mode category of an account that borrows `borrowed` (None: its own terms)."""
    wanted = set(borrowed)
    if not wanted or not terms.emode:
        return None
    for name, category in terms.emode.items():
        if wanted.issubset(category.assets):
            return name
    return None


def asset_terms(terms: LendingVenue, asset: str,
                emode: str | None) -> LendingAsset | EModeCategory | None:
    """The LTV, liquidation threshold and liquidation bonus `asset` gets at the venue under
    the e-mode category `emode` (or its own); None when the venue does not list it."""
    own = terms.assets.get(asset)
    if own is None:
        return None
    if emode is not None:
        category = terms.emode[emode]
        if asset in category.assets:
            return category
    return own


@dataclass(frozen=True)
class LendingAccount:
    """An account at a lending venue, in USD at the venue's oracle prices."""

    venue: str
    emode: str | None
    collateral_usd: Decimal
    debt_usd: Decimal
    capacity_usd: Decimal  # Σ collateral · price · ltv: the most the account may owe
    threshold_usd: Decimal  # Σ collateral · price · liquidation threshold

    @property
    def health(self) -> Decimal | None:
        """Σ collateral·price·threshold / Σ debt·price; None (infinite) with no debt."""
        if self.debt_usd <= 0:
            return None
        return self.threshold_usd / self.debt_usd

    @property
    def borrow_room_usd(self) -> Decimal:
        """USD that may still be borrowed under the LTV limit (never negative)."""
        return max(self.capacity_usd - self.debt_usd, ZERO)

    @property
    def leverage(self) -> Decimal | None:
        """Collateral / (collateral - debt): 1 with no debt; None when nothing is left."""
        equity = self.collateral_usd - self.debt_usd
        if equity <= 0:
            return None
        if self.collateral_usd <= 0:
            return Decimal(1)
        return self.collateral_usd / equity


def lending_account(ledger: Ledger, market: Market, venue: str,
                    borrowing: str | None = None) -> LendingAccount:
    """The account at `venue`; `borrowing` names an asset about to be borrowed, which takes
    part in choosing the e-mode category (a borrow is judged with itself included)."""
    terms = lending_terms(market, venue)
    debts = ledger.items("debt", venue)
    borrowed = set(debts)
    if borrowing is not None:
        borrowed.add(borrowing)
    emode = emode_in_use(terms, borrowed)
    collateral = capacity = threshold = ZERO
    for asset, amount in ledger.items("collateral", venue).items():
        value = amount * oracle_price(market, venue, asset)
        collateral += value
        own = asset_terms(terms, asset, emode)
        if own is not None:
            capacity += value * own.ltv
            threshold += value * own.liquidation_threshold
    debt = sum((amount * oracle_price(market, venue, asset) for asset, amount in debts.items()),
               ZERO)
    return LendingAccount(venue, emode, collateral, debt, capacity, threshold)


def health_factor(ledger: Ledger, market: Market, venue: str) -> Decimal | None:
    """The account's health factor; None (infinite) with no debt."""
    return lending_account(ledger, market, venue).health


def borrow_room(ledger: Ledger, market: Market, venue: str,
                borrowing: str | None = None) -> Decimal:
    """USD that may still be borrowed (of `borrowing`, which may switch the e-mode)."""
    return lending_account(ledger, market, venue, borrowing).borrow_room_usd


def liquidation_bonus(ledger: Ledger, market: Market, venue: str, asset: str) -> Decimal:
    """The bonus a liquidator earns seizing `asset` at `venue`, under the account's e-mode."""
    terms = lending_terms(market, venue)
    own = asset_terms(terms, asset, emode_in_use(terms, ledger.items("debt", venue)))
    return own.liquidation_bonus if own is not None else ZERO


def collateral_liquidation_price(ledger: Ledger, market: Market, venue: str,
                                 asset: str) -> Decimal | None:
    """The oracle price (USD) of `asset`, every other price fixed, at which the account's
    health reaches 1; None when no price does (no debt, or a fall in the asset does not
    lower health enough, or the account is liquidatable already at any price). For an asset
    priced by its exchange rate, that is underlying price · rate: a depeg on exchanges does
    not reach it, a fall of the rate (or of the underlying against the debt) does.

    health = 1  ⇔  others_threshold + c·p·lt = others_debt + d·p, c and d the asset's
    collateral and debt, so p = (others_debt - others_threshold) / (c·lt - d).
    """
    account = lending_account(ledger, market, venue)
    if account.debt_usd <= 0:
        return None
    terms = asset_terms(lending_terms(market, venue), asset, account.emode)
    held = ledger.get("collateral", venue, asset)
    if terms is None or held <= 0:
        return None
    owed = ledger.get("debt", venue, asset)
    price = oracle_price(market, venue, asset)
    slope = held * terms.liquidation_threshold - owed
    if slope <= 0:
        return None  # the asset's price falling does not lower health
    others_threshold = account.threshold_usd - held * price * terms.liquidation_threshold
    others_debt = account.debt_usd - owed * price
    liquidation = (others_debt - others_threshold) / slope
    return liquidation if liquidation > 0 else None


# --- perps ------------------------------------------------------------------------------------


def cex_terms(market: Market, venue: str) -> CexVenue:
    """The venue's exchange terms; ExecutionError(SP102) when it is not a CEX."""
    terms = market.venues.get(venue)
    # `kind`, not isinstance: pydantic classes check instances through ABCMeta (per trade).
    if terms is None or terms.kind != "cex":
        raise ExecutionError("SP102", f"{venue} is not a CEX")
    return cast(CexVenue, terms)


def maintenance_at(brackets: Brackets, notional: Decimal) -> Decimal:
    """The maintenance margin of a position of `notional` (quote asset): notional · rate -
    amount of the bracket it is in (the last whose `notional_from` it reaches), as Binance's
    "Leverage and Margin of USDⓈ-M Futures" rules compute it."""
    _, rate, amount = bracket_of(brackets, notional)
    return notional * rate - amount


def bracket_of(brackets: Brackets, notional: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """The bracket a notional is in: the last whose `notional_from` it reaches."""
    found = brackets[0]
    for bracket in brackets:
        if notional >= bracket[0]:
            found = bracket
    return found


@dataclass(frozen=True)
class PerpPosition:
    """An open perp under isolated margin; prices, margin and PnL in the quote asset."""

    venue: str
    pair: str
    size: Decimal  # signed: negative is short
    entry_price: Decimal
    mark_price: Decimal
    margin: Decimal
    brackets: Brackets  # (notional_from, rate, amount), lowest first: CexVenue.brackets

    @property
    def base(self) -> str:
        """The asset the position is in."""
        return self.pair.split("/")[0]

    @property
    def quote(self) -> str:
        """The asset of its margin, prices and PnL."""
        return self.pair.split("/")[1]

    @property
    def notional(self) -> Decimal:
        """|size| · mark."""
        return abs(self.size) * self.mark_price

    @property
    def unrealised_pnl(self) -> Decimal:
        """size · (mark - entry)."""
        return self.size * (self.mark_price - self.entry_price)

    @property
    def maintenance(self) -> Decimal:
        """The maintenance margin at the mark: notional · rate - amount of its bracket."""
        return maintenance_at(self.brackets, self.notional)

    @property
    def liquidatable(self) -> bool:
        """margin + unrealised PnL < maintenance margin: the exchange closes it."""
        return self.margin + self.unrealised_pnl < self.maintenance

    @property
    def liquidation_price(self) -> Decimal | None:
        """The mark P at which margin + unrealised PnL = maintenance margin, with the
        bracket in force at P (LANGUAGE.md section 9): in the bracket (from, rate, amount),
        margin + size·(P - entry) = |size|·P·rate - amount, so

            P = (size·entry - margin - amount) / (size - rate·|size|),

        kept when |size|·P lies in that bracket. The brackets make the maintenance margin
        continuous (the market checks it) and equity - maintenance is monotonic in P, so at
        most one bracket's P is kept. None when no positive price is (a long whose margin
        covers its whole notional)."""
        size = self.size
        if not size:
            return None
        brackets = self.brackets
        for index, (start, rate, amount) in enumerate(brackets):
            denominator = size - rate * abs(size)
            if not denominator:
                continue
            price = (size * self.entry_price - self.margin - amount) / denominator
            if price <= 0:
                continue
            notional = abs(size) * price
            end = brackets[index + 1][0] if index + 1 < len(brackets) else None
            if notional >= start and (end is None or notional < end):
                return price
        return None

    @property
    def leverage(self) -> Decimal | None:
        """Notional / (margin + unrealised PnL); None when that equity is gone."""
        equity = self.margin + self.unrealised_pnl
        return self.notional / equity if equity > 0 else None


def perp_position(ledger: Ledger, market: Market, venue: str, pair: str) -> PerpPosition:
    """The perp `pair` (BASE/QUOTE) at `venue` as it stands (size 0 when none is open)."""
    base, quote = pair.split("/")
    return PerpPosition(venue, pair, ledger.get("position", venue, pair),
                        ledger.get("entry", venue, pair),
                        market.price(base) / market.price(quote),
                        ledger.get("margin", venue, pair),
                        cex_terms(market, venue).brackets(pair))


def perp_positions(ledger: Ledger, market: Market) -> list[PerpPosition]:
    """Every open perp, by venue and pair."""
    return [perp_position(ledger, market, venue, pair)
            for venue in sorted(ledger.venues("position"))
            for pair in sorted(ledger.items("position", venue))]


def perp_of(ledger: Ledger, market: Market, venue: str, base: str) -> PerpPosition | None:
    """The open perp in `base` at `venue`, or None; ExecutionError(SP103) when the venue
    holds perps in `base` against two quote assets (name the pair then)."""
    pairs = [pair for pair in ledger.items("position", venue) if pair.split("/")[0] == base]
    if len(pairs) > 1:
        raise ExecutionError("SP103", f"{venue} holds {base} perps against several quote "
                             f"assets ({', '.join(sorted(pairs))})")
    return perp_position(ledger, market, venue, pairs[0]) if pairs else None


# --- the whole portfolio ----------------------------------------------------------------------

# (book, sign, which side of a BASE/QUOTE key is the asset): perp positions are keyed by
# their pair and count their BASE; posted margin counts as a holding of its QUOTE.
_EXPOSURE: tuple[tuple[Book, int, int], ...] = (
    ("balance", 1, 0), ("collateral", 1, 0), ("debt", -1, 0), ("flash", -1, 0),
    ("position", 1, 0), ("margin", 1, 1))


def exposure(ledger: Ledger, market: Market, base: str) -> Decimal:
    """Net amount of `base` (and of assets whose underlying it is, at their rate) over every
    venue: balances + collateral - debt - flash debt + perp positions + posted margin."""
    total = ZERO
    for book, sign, side in _EXPOSURE:
        for venue in ledger.venues(book):
            for key, amount in ledger.items(book, venue).items():
                asset = key.split("/")[side] if "/" in key else key
                if asset == base:
                    total += sign * amount
                elif market.underlying(asset) == base:
                    total += sign * amount * market.rate(asset)
    return total


def exposed_assets(ledger: Ledger, market: Market) -> set[str]:
    """Every underlying asset the portfolio holds, owes or has a position in."""
    found: set[str] = set()
    for book, _, side in _EXPOSURE:
        for venue in ledger.venues(book):
            for key in ledger.items(book, venue):
                found.add(market.underlying(key.split("/")[side] if "/" in key else key))
    return found


def portfolio_value(ledger: Ledger, market: Market) -> Decimal:
    """USD: balances, collateral, posted margin and unrealised perp PnL, less debt.

    Every term is worked out exactly and the total rounded once (to the context's 40
    digits), so the value depends on the amounts and prices alone, not on how partial sums
    happened to round: a hedged book's value does not wobble in its last digit as the price
    moves (interpreter/time/quiet.py keeps such a value without working it out again)."""
    total = ZERO
    signs: tuple[tuple[Book, int], ...] = (("balance", 1), ("collateral", 1), ("debt", -1),
                                           ("flash", -1))
    for book, sign in signs:
        for venue in ledger.venues(book):
            for asset, amount in ledger.items(book, venue).items():
                term = EXACT.multiply(amount, market.price(asset))
                total = EXACT.add(total, term) if sign > 0 else EXACT.subtract(total, term)
    for venue in ledger.venues("margin"):
        for pair, amount in ledger.items("margin", venue).items():
            total = EXACT.add(total, EXACT.multiply(amount, market.price(pair.split("/")[1])))
    for venue in ledger.venues("position"):
        for pair in ledger.items("position", venue):
            total = EXACT.add(total, _unrealised(ledger, market, venue, pair))
    return +total


def unrealised_pnl(ledger: Ledger, market: Market, venue: str, pair: str) -> Decimal:
    """USD profit of the open perp `pair` at `venue` at market prices."""
    return +_unrealised(ledger, market, venue, pair)


def _unrealised(ledger: Ledger, market: Market, venue: str, pair: str) -> Decimal:
    """size · (mark - entry) · price(quote), exactly but for the mark (a price ratio at
    the context's precision)."""
    base, quote = pair.split("/")
    mark = market.price(base) / market.price(quote)
    size = ledger.get("position", venue, pair)
    return perp_value(size, mark, ledger.get("entry", venue, pair), market.price(quote))


def perp_value(size: Decimal, mark: Decimal, entry: Decimal, quote: Decimal) -> Decimal:
    """size · (mark - entry) · quote price, exactly (not rounded)."""
    return EXACT.multiply(EXACT.multiply(size, EXACT.subtract(mark, entry)), quote)
