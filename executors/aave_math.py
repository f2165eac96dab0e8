"""A lending account as Aave v3.6 computes it: in integers (aave-dao/aave-v3-origin,
GenericLogic.calculateUserAccountData and ValidationLogic.validateHFAndLtv).

The model's accounts (executors/accounts.py) are exact decimals; Aave's are integers: each
amount in wei (18 decimals), each oracle price in its base currency's 8 decimals, each
position's value in that base currency — collateral rounded down, debt rounded up — and the
LTV of the account the value-weighted average of its assets' LTVs in basis points, rounded
down. Where a borrow or a withdrawal sits at the limit, the two can part: the exact LTV limit
may be a few base units (1e-8 USD, or a basis point of the collateral when the assets' LTVs
differ) more than Aave accepts. The contract executor judges borrows and withdrawals here,
so that a plan fails in the model exactly when Aave refuses it (tests/evm proves it against
the bytecode), and `borrow max` is the most Aave lends.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from stratplan.executors.accounts import asset_terms, emode_in_use, lending_terms
from stratplan.executors.ledger import Ledger
from stratplan.executors.market import Market
from stratplan.executors.oracle import oracle_price

WAD = 10**18
UNIT = Decimal(WAD)
BASE = Decimal(10**8)
PERCENT = 10_000
# Wei below Aave's limit that `max` borrows. None: once interest has moved the borrow index
# off 1, minting debt may round it up by a wei or two (TokenMath), which moves its value by
# about 1e-14 of a base unit: it crosses the limit with a chance of about 1e-8.
MAX_MARGIN_WEI = 0


def wei(amount: Decimal) -> int:
    """An 18-decimal amount in wei, rounded down."""
    return int((amount * UNIT).to_integral_value(rounding=ROUND_DOWN))


def base_price(price: Decimal) -> int:
    """A USD price in the base currency's 8 decimals, rounded down (an oracle's answer)."""
    return int((price * BASE).to_integral_value(rounding=ROUND_DOWN))


def bps(fraction: Decimal) -> int:
    """A fraction in basis points, rounded down."""
    return int((fraction * PERCENT).to_integral_value(rounding=ROUND_DOWN))


@dataclass(frozen=True)
class AaveAccount:
    """getUserAccountData's numbers: collateral and debt in base units, the average LTV
    in bps, Σ collateral · liquidation threshold (base units · bps), health in wad."""

    collateral: int
    debt: int
    ltv: int
    weighted_threshold: int

    @property
    def health(self) -> int | None:
        """Health factor in wad (None with no debt): Σ value·threshold ·WAD / debt / 10⁴,
        the division rounded half up (wadDiv), then down."""
        if not self.debt:
            return None
        return (self.weighted_threshold * WAD + self.debt // 2) // self.debt // PERCENT

    def accepts_borrow(self) -> bool:
        """validateHFAndLtv after a borrow: an LTV, health at least 1, and the collateral
        covering debt / LTV (rounded up)."""
        health = self.health
        return self.ltv != 0 and (health is None or health >= WAD) and \
            self.collateral * self.ltv >= self.debt * PERCENT

    def accepts_withdrawal(self) -> bool:
        """validateHealthFactor after a withdrawal: health at least 1."""
        health = self.health
        return health is None or health >= WAD


def aave_account(ledger: Ledger, market: Market, venue: str,
                 borrowing: str | None = None, extra_debt: Decimal = Decimal(0)) -> AaveAccount:
    """The account at `venue` as Aave v3.6 values it, with `extra_debt` more of
    `borrowing` owed (the borrow being judged; it takes part in choosing the e-mode, as
    lending_account does)."""
    terms = lending_terms(market, venue)
    debts = dict(ledger.items("debt", venue))
    if borrowing is not None:
        debts[borrowing] = debts.get(borrowing, Decimal(0)) + extra_debt
    emode = emode_in_use(terms, [asset for asset, owed in debts.items()
                                 if owed or asset == borrowing])
    collateral = weighted_ltv = weighted_threshold = 0
    for asset, amount in ledger.items("collateral", venue).items():
        value = wei(amount) * base_price(oracle_price(market, venue, asset)) // WAD
        own = asset_terms(terms, asset, emode)
        if own is None:
            continue
        collateral += value
        weighted_ltv += value * bps(own.ltv)
        weighted_threshold += value * bps(own.liquidation_threshold)
    debt = 0
    for asset, owed in debts.items():
        debt += -(-wei(owed) * base_price(oracle_price(market, venue, asset)) // WAD)
    ltv = weighted_ltv // collateral if collateral else 0
    return AaveAccount(collateral, debt, ltv, weighted_threshold)


def max_borrow(ledger: Ledger, market: Market, venue: str, token: str) -> Decimal:
    """The most of `token` Aave lends the account now (never negative): the largest debt
    whose base value keeps debt · 10⁴ ≤ collateral · LTV, less what is owed of it already
    (less MAX_MARGIN_WEI)."""
    account = aave_account(ledger, market, venue, borrowing=token)
    if not account.ltv:
        return Decimal(0)
    allowed = account.collateral * account.ltv // PERCENT
    price = base_price(oracle_price(market, venue, token))
    owed = ledger.get("debt", venue, token)
    others = account.debt - (-(-wei(owed) * price // WAD))
    room = allowed - others
    if room <= 0 or price <= 0:
        return Decimal(0)
    most = room * WAD // price - wei(owed) - MAX_MARGIN_WEI
    return Decimal(max(most, 0)) / UNIT
