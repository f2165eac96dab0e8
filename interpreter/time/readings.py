"""What a backtest step reads from the books, fast: value, health per lending venue (at
its oracle prices, LANGUAGE.md section 9) and exposure per asset (LANGUAGE.md section 8,
step 5, and the `health(V)` of `when` triggers).

`executors/accounts.py` defines these quantities (`portfolio_value`, `lending_account`,
`exposure`); each walks the books through the ledger protocol (`venues`, sorted, then
`items`), which costs about 10 µs a call — most of a step when a backtest has 525,600.
Between two firings the books keep the same keys (accrual changes amounts, not which
(venue, asset) entries exist), so `Readings` works out once per *shape* of the books which
entries each quantity sums, with which sign, threshold or rate, in the order `accounts`
visits them, and then reads amounts and prices straight from the dictionaries.

Same order, same operations: every reading is equal, to the last digit, to the `accounts`
function it replaces (tests/interpreter/test_backtest_fast.py checks it at every step of
generated backtests). The shape is compared at each `refresh` (a tuple of each book's keys),
so nothing that adds or removes an entry can leave the layout stale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from operator import itemgetter, mul

from stratplan.dsl.decimals import EXACT
from stratplan.executors.accounts import PerpPosition, asset_terms, emode_in_use, perp_value
from stratplan.executors.market import AssetInfo, Brackets, CexVenue, LendingVenue, Market
from stratplan.executors.oracle import exchange_rate_priced
from stratplan.interpreter.monitor import PositionMonitor

ZERO = Decimal(0)
# How far (relatively) past its liquidation mark a perp's guard bound lies; see `perp_bound`.
_MARGIN = Decimal("1e-9")
_NOISE = Decimal("1e-20")
_STABLE = ("USD", "USDT", "USDC")
_Key = tuple[str, str]
_Table = dict[_Key, Decimal]
# Books in the order of accounts.portfolio_value and accounts._EXPOSURE.
_VALUE_BOOKS = (("balance", 1), ("collateral", 1), ("debt", -1), ("flash", -1))
_EXPOSURE_BOOKS = (("balance", 1, 0), ("collateral", 1, 0), ("debt", -1, 0), ("flash", -1, 0),
                   ("position", 1, 0), ("margin", 1, 1))


def _by_venue(table: _Table) -> list[_Key]:
    """The keys as `accounts` visits them: venues sorted, each venue's assets in the
    book's insertion order (what `ledger.items(book, venue)` gives); sort is stable."""
    return sorted(table, key=itemgetter(0))


# How an entry is priced at its lending venue (executors/oracle.py): (asset, None) at its
# market price, (asset, underlying) at price(underlying) · rate(asset); either way the
# series' oracle feed, when it has the asset, comes first.
_Oracle = tuple[str, str | None]


def _oracle_rule(market: Market, venue: str, asset: str) -> _Oracle:
    return (asset, market.underlying(asset) if exchange_rate_priced(market, venue, asset)
            else None)


class _Lending:
    """One lending account's layout: collateral entries with their oracle rule and
    liquidation threshold (None: the venue does not list the asset), and debt entries with
    their oracle rule."""

    __slots__ = ("collateral", "debts", "venue")

    def __init__(self, venue: str, terms: LendingVenue, books: dict[str, _Table],
                 market: Market) -> None:
        self.venue = venue
        debts = [key for key in _by_venue(books["debt"]) if key[0] == venue]
        emode = emode_in_use(terms, [asset for _, asset in debts])
        self.collateral: list[tuple[_Key, _Oracle, Decimal | None]] = []
        for key in _by_venue(books["collateral"]):
            if key[0] == venue:
                own = asset_terms(terms, key[1], emode)
                self.collateral.append((key, _oracle_rule(market, venue, key[1]),
                                        own.liquidation_threshold if own else None))
        self.debts = [(key, _oracle_rule(market, venue, key[1])) for key in debts]


class Readings:
    """Value, health and exposure of a monitor's books at a market's current prices."""

    def __init__(self, monitor: PositionMonitor, market: Market) -> None:
        self.books, self.market = monitor.books, market
        self._tables = list(monitor.books.values())
        self._shape: list[tuple[_Key, ...]] | None = None
        self._health: dict[str, Decimal | None] | None = None
        self.held: frozenset[str] = frozenset()
        # (venue, pair) -> ((size, entry, margin), the guard bound on its mark or None)
        self._bounds: dict[_Key, tuple[tuple[Decimal, Decimal, Decimal], Decimal | None]] = {}

    # --- the layout ---------------------------------------------------------------------------
    def refresh(self) -> None:
        """Forget the health read so far (amounts or prices changed); rebuild the layout
        when an entry appeared or disappeared."""
        self._health = None
        shape = list(map(tuple, self._tables))
        if shape != self._shape:
            self._shape = shape
            self._layout()

    def _layout(self) -> None:
        books, market = self.books, self.market
        self.value_terms = [(books[book], key, sign) for book, sign in _VALUE_BOOKS
                            for key in _by_venue(books[book])]
        self.margin_terms = [(key, key[1].split("/")[1]) for key in _by_venue(books["margin"])]
        self.perps: list[tuple[_Key, str, str]] = []
        self.brackets: dict[_Key, Brackets | None] = {}
        for key in _by_venue(books["position"]):
            base, quote = key[1].split("/")
            self.perps.append((key, base, quote))
            cex = market.venues.get(key[0])
            self.brackets[key] = cex.brackets(key[1]) if isinstance(cex, CexVenue) else None
        # Every asset an entry names (both sides of a pair): whose rate a step must follow.
        self.held = frozenset(part for table in self._tables for _, name in table
                              for part in name.split("/"))
        # The order of accrual (backtest.accrue): each book's keys sorted.
        self.accrual_order = {book: sorted(books[book])
                              for book in ("collateral", "debt", "position")}
        venues = {venue for venue, _ in books["debt"]} | {venue for venue, _ in books["collateral"]}
        self.lending = [_Lending(venue, lender, books, market) for venue in sorted(venues)
                        if isinstance(lender := market.venues.get(venue), LendingVenue)]
        # Debt at a venue that is not a lending venue: liquidation must look (and say so).
        self.stray_debt = any(not isinstance(market.venues.get(venue), LendingVenue)
                              for venue, _ in books["debt"])
        bases = {market.underlying(asset) for book in ("balance", "collateral", "debt")
                 for _, asset in books[book]} | {pair.split("/")[0] for _, pair in books["position"]}
        self.exposure_terms: dict[str, list[tuple[_Table, _Key, int, str | None]]] = {}
        for base in sorted(bases):
            if base in _STABLE:
                continue
            terms: list[tuple[_Table, _Key, int, str | None]] = []
            for book, sign, side in _EXPOSURE_BOOKS:
                for key in _by_venue(books[book]):
                    asset = key[1].split("/")[side] if "/" in key[1] else key[1]
                    if asset == base:
                        terms.append((books[book], key, sign, None))
                    elif market.underlying(asset) == base:
                        terms.append((books[book], key, sign, asset))
            self.exposure_terms[base] = terms

    # --- the readings -------------------------------------------------------------------------
    def value(self) -> Decimal:
        """accounts.portfolio_value: every term exact, the total rounded once."""
        prices = self.market.prices
        add, subtract, multiply = EXACT.add, EXACT.subtract, EXACT.multiply
        total = ZERO
        for table, key, sign in self.value_terms:
            term = multiply(table[key], prices[key[1]])
            total = add(total, term) if sign > 0 else subtract(total, term)
        margin = self.books["margin"]
        for key, quote in self.margin_terms:
            total = add(total, multiply(margin[key], prices[quote]))
        if self.perps:
            position, entry = self.books["position"], self.books["entry"]
            for key, base, quote in self.perps:
                price = prices[quote]
                total = add(total, perp_value(position[key], prices[base] / price,
                                              entry.get(key, ZERO), price))
        return +total

    def health(self) -> dict[str, Decimal | None]:
        """accounts.health_factor of every lending venue the books use, by venue name;
        computed once until the next `refresh`."""
        if self._health is not None:
            return self._health
        if not self.lending:
            self._health = _NO_HEALTH
            return _NO_HEALTH
        market = self.market
        prices, assets, feed = market.prices, market.assets, market.oracle_feed()
        collateral, debt = self.books["collateral"], self.books["debt"]
        found: dict[str, Decimal | None] = {}

        for account in self.lending:
            threshold = ZERO
            for key, rule, liquidation_threshold in account.collateral:
                if liquidation_threshold is not None:
                    threshold += collateral[key] * oracle_price(rule, feed, prices, assets) * \
                        liquidation_threshold
            owed = sum((debt[key] * oracle_price(rule, feed, prices, assets)
                        for key, rule in account.debts), ZERO)
            found[account.venue] = threshold / owed if owed > 0 else None
        self._health = found
        return found

    def net_units(self, asset: str) -> Decimal:
        """Units of `asset` held (wallet, CEX, collateral) less owed (debt, flash debt)."""
        net = ZERO
        for table, key, sign in self.value_terms:
            if key[1] == asset:
                net += sign * table[key]
        return net

    def below_one(self) -> bool:
        """True when some lending account's health is below 1 (a liquidation is due), or
        when there is debt at a venue that is not a lending venue (liquidation reports it)."""
        if self.stray_debt:
            return True
        for value in self.health().values():
            if value is not None and value < 1:
                return True
        return False

    def perps_safe(self) -> bool:
        """True when no open perp can be liquidatable at this step's marks, so that
        `liquidation.liquidate_perp` would close none: each perp's mark is on the safe side
        of its guard bound (`perp_bound`, worked out again whenever its size, entry or
        margin changes). False means "look": the plain check decides."""
        if not self.perps:
            return True
        books, prices, bounds = self.books, self.market.prices, self._bounds
        position, entry, margin = books["position"], books["entry"], books["margin"]
        for key, base, quote in self.perps:
            size = position[key]
            if not size:
                continue
            state = (size, entry.get(key, ZERO), margin.get(key, ZERO))
            known = bounds.get(key)
            if known is None or known[0] != state:
                brackets = self.brackets[key]
                known = bounds[key] = (state, None if brackets is None
                                       else perp_bound(*state, brackets))
            bound = known[1]
            if bound is None:
                return False
            mark = prices[base] / prices[quote]
            if not (mark > bound if size > 0 else mark < bound):
                return False
        return True

    def guard_bound(self, key: _Key) -> Decimal | None:
        """The guard bound of the perp at `key` as the last `perps_safe` worked it out."""
        known = self._bounds.get(key)
        return None if known is None else known[1]

    def exposures(self) -> dict[str, Decimal]:
        """accounts.exposure of every non-stable base asset the books hold, by name."""
        assets = self.market.assets
        found: dict[str, Decimal] = {}
        for base, terms in self.exposure_terms.items():
            total = ZERO
            for table, key, sign, asset in terms:
                if asset is None:
                    total += sign * table[key]
                else:
                    total += sign * table[key] * assets[asset].rate
            found[base] = total
        return found


_NO_HEALTH: dict[str, Decimal | None] = {}  # no lending account: shared, never written
_NO_RATES: dict[str, Decimal] = {}


def oracle_price(rule: _Oracle, feed: Mapping[str, Decimal], prices: Mapping[str, Decimal],
                 assets: Mapping[str, AssetInfo],
                 rates: Mapping[str, Decimal] = _NO_RATES) -> Decimal:
    """executors.oracle.oracle_price, unrolled for a rule worked out once: the series' feed,
    else the market price, else price(underlying) · rate (`rates`' when it has the asset:
    time/accruing.py's rates of the row, else the market's)."""
    asset, underlying = rule
    fed = feed.get(asset) if feed else None
    if fed is not None:
        return fed
    if underlying is None:
        return prices[asset]
    rate = rates.get(asset)
    return prices[underlying] * (assets[asset].rate if rate is None else rate)


def oracle_prices(rule: _Oracle, feed: Mapping[str, Decimal],
                  price: Callable[[str], list[Decimal]],
                  rate: Callable[[str], list[Decimal]], count: int) -> list[Decimal]:
    """`oracle_price` at each of `count` rows of a stretch (time/accruing.py), from each
    asset's price and rate at each row (`price(asset)`, `rate(asset)`): the same rule, a
    column at a time."""
    asset, underlying = rule
    fed = feed.get(asset) if feed else None
    if fed is not None:
        return [fed] * count
    if underlying is None:
        return price(asset)
    return list(map(mul, price(underlying), rate(asset)))


def perp_bound(size: Decimal, entry: Decimal, margin: Decimal,
               brackets: Brackets) -> Decimal | None:
    """A mark on the safe side of the perp's liquidation mark (`PerpPosition.
    liquidation_price`, 1e-9 of it away): a long is not liquidatable at any mark above it,
    a short at any mark below it. None when no such bound is sure (then every step checks).

    Why it is sure: margin + size·(P - entry) - maintenance(|size|·P) is monotonic in the
    mark P (increasing for a long, decreasing for a short, every bracket rate below 1, the
    maintenance continuous), so beyond the root it keeps its sign and only grows in size.
    The plain check (`PerpPosition.liquidatable`, rounding to 40 digits) is asked at the
    bound itself and must find the position safe there by far more than its rounding
    (1e-20 of the terms' size), so it finds it safe at every mark further out too."""
    if any(rate >= 1 for _, rate, _ in brackets):
        return None
    probe = PerpPosition("", "", size, entry, ZERO, margin, brackets)
    root = probe.liquidation_price
    if root is None:
        return None
    bound = root * (1 + _MARGIN) if size > 0 else root * (1 - _MARGIN)
    at = PerpPosition("", "", size, entry, bound, margin, brackets)
    if at.liquidatable:
        return None
    room = at.margin + at.unrealised_pnl - at.maintenance
    scale = abs(margin) + abs(size) * (bound + abs(entry)) + max(abs(b[2]) for b in brackets)
    return bound if room > scale * _NOISE else None
