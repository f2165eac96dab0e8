"""The market snapshot: prices, asset rates, the gas table and the venues with their terms.

Loaded from YAML with a safe loader only (`StrictSafeLoader`: `yaml.SafeLoader` that also
refuses duplicate keys and reads floats as exact decimals) and validated by pydantic; the
built-in default ships as package data. Every number is a Decimal (gas units are ints).

What each number may be is said once, by its type (executors/market_numbers.py): a `Fee`
is 0 <= fee < 1, a `Positive` price is > 0, and so on; every number is finite, exact and
within 1e-30..1e30. Checks between fields (ltv <= liquidation_threshold, default_leverage
<= max_leverage) are validators on the model that holds both fields. A bad market never
creates money, and never gets past `load_market` as anything but a one-line `MarketError`:
`m.yaml: venues.binance.taker_fee: must not be negative (got -0.001)`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from decimal import Decimal, DecimalException
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.packagedata import data_text
from stratplan.executors.errors import MarketError
from stratplan.executors.market_numbers import (
    Duration,
    Fee,
    Fraction,
    GasUnits,
    Leverage,
    NonNegative,
    Positive,
    Share,
    SignedFraction,
    show,
)

MAX_MARKET_BYTES = 1024 * 1024
MAX_MARKET_NODES = 200_000
_VENUE_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_ASSET = re.compile(r"[a-z]*[A-Z][A-Za-z0-9.]*\Z")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class AssetInfo(_Model):
    """A derivative asset: its underlying and how many underlying units one unit is worth."""

    underlying: str
    rate: Positive = Decimal(1)


class Gas(_Model):
    """Gas price and units: base per transaction plus per operation."""

    price_gwei: NonNegative
    base_tx: GasUnits
    ops: dict[str, GasUnits] = {}


class CexMarkets(_Model):
    """The spot and perp markets a CEX lists, as BASE/QUOTE."""

    spot: list[str] = []
    perp: list[str] = []

    @field_validator("spot", "perp")
    @classmethod
    def _pairs(cls, pairs: list[str]) -> list[str]:
        for pair in pairs:
            parts = pair.split("/")
            if len(parts) != 2 or not all(_ASSET.match(part) for part in parts):
                raise ValueError(f"{pair!r} is not a BASE/QUOTE market")
        return pairs


class WalletVenue(_Model):
    """The user's own on-chain wallet."""

    kind: Literal["wallet"]


class MaintenanceBracket(_Model):
    """One notional bracket of a perp's maintenance margin, as Binance publishes them
    (`[notional_from, rate, amount]`): a position whose notional is at least
    `notional_from` (and below the next bracket's) must keep notional · rate - amount."""

    notional_from: NonNegative
    rate: Fraction
    amount: NonNegative

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, data: Any) -> Any:
        """`[50_000, 0.5%, 50]`, as the exchanges publish them, or a mapping."""
        if isinstance(data, list | tuple):
            if len(data) != 3:
                raise ValueError("a maintenance bracket is [notional_from, rate, amount] "
                                 f"(got {len(data)} numbers)")
            return {"notional_from": data[0], "rate": data[1], "amount": data[2]}
        return data


# A perp's brackets as plain numbers: (notional_from, rate, amount), lowest first.
Brackets = tuple[tuple[Decimal, Decimal, Decimal], ...]


def _check_brackets(pair: str, brackets: list[MaintenanceBracket]) -> None:
    """Binance's brackets start at notional 0 with amount 0, rise strictly, and each amount
    is the previous one + notional_from · (rate - previous rate): the maintenance margin
    is then continuous in the notional, so the liquidation price is one price."""
    if not brackets:
        raise ValueError(f"maintenance.{pair}: give at least one bracket")
    first = brackets[0]
    if first.notional_from != 0 or first.amount != 0:
        raise ValueError(f"maintenance.{pair}[0]: the first bracket starts at notional 0 with "
                         f"amount 0 (got [{show(first.notional_from)}, {show(first.rate)}, "
                         f"{show(first.amount)}])")
    with arithmetic():
        for index in range(1, len(brackets)):
            before, bracket = brackets[index - 1], brackets[index]
            if bracket.notional_from <= before.notional_from:
                raise ValueError(f"maintenance.{pair}[{index}]: notional_from must rise "
                                 f"(got {show(bracket.notional_from)} after "
                                 f"{show(before.notional_from)})")
            wanted = before.amount + bracket.notional_from * (bracket.rate - before.rate)
            if bracket.amount != wanted:
                raise ValueError(f"maintenance.{pair}[{index}]: amount must be {show(wanted)} "
                                 f"({show(before.amount)} + {show(bracket.notional_from)} · "
                                 f"({show(bracket.rate)} - {show(before.rate)})), so that the "
                                 "maintenance margin is continuous as Binance's is (got "
                                 f"{show(bracket.amount)})")


class CexVenue(_Model):
    """A centralised exchange."""

    kind: Literal["cex"]
    taker_fee: Fee = Decimal(0)
    # v3: the taker fee of spot trades, when it differs from the perps' (`taker_fee`).
    spot_taker_fee: Fee | None = None
    # Which asset a spot trade's fee is taken from: the one received (Binance, Bybit, OKX),
    # or the quote asset, on top of a buy's cost.
    spot_fee: Literal["received", "quote"] = "received"
    max_leverage: Leverage = Decimal(20)
    default_leverage: Leverage = Decimal(1)
    # A perp is liquidated when margin + unrealised PnL < its maintenance margin: that of
    # its brackets (v3, `maintenance:`), else maintenance_margin · notional.
    maintenance_margin: Fraction = Decimal(0)
    maintenance: dict[str, list[MaintenanceBracket]] = {}
    funding_interval: Duration = Decimal(8 * 3600)  # seconds between funding settlements
    withdraw_fee: dict[str, NonNegative] = {}  # in units of the asset, not a rate
    markets: CexMarkets = Field(default_factory=CexMarkets)  # not built at import

    @model_validator(mode="after")
    def _default_within_max(self) -> CexVenue:
        if self.default_leverage > self.max_leverage:
            raise ValueError(f"default_leverage ({show(self.default_leverage)}) must not "
                             f"exceed max_leverage ({show(self.max_leverage)})")
        # At the highest leverage the initial margin (1 / max_leverage) must exceed the
        # maintenance margin, or a new position would be liquidatable as it opens.
        rates = [("maintenance_margin", self.maintenance_margin)]
        for pair, brackets in self.maintenance.items():
            if pair not in self.markets.perp:
                raise ValueError(f"maintenance.{pair}: the venue lists no {pair} perp")
            _check_brackets(pair, brackets)
            rates += [(f"maintenance.{pair}[{i}] rate", b.rate) for i, b in enumerate(brackets)]
        with arithmetic():
            for what, rate in rates:
                if rate * self.max_leverage >= 1:
                    raise ValueError(f"{what} ({show(rate)}) must be below the initial margin "
                                     f"at max_leverage ({show(1 / self.max_leverage)})")
        return self

    @property
    def spot_fee_rate(self) -> Decimal:
        """The taker fee of a spot trade: `spot_taker_fee`, else `taker_fee`."""
        return self.taker_fee if self.spot_taker_fee is None else self.spot_taker_fee

    def brackets(self, pair: str) -> Brackets:
        """The maintenance brackets of the perp `pair`: its `maintenance:` entry, else one
        bracket `[0, maintenance_margin, 0]` (v2)."""
        listed = self.maintenance.get(pair)
        if not listed:
            return ((Decimal(0), self.maintenance_margin, Decimal(0)),)
        return tuple((b.notional_from, b.rate, b.amount) for b in listed)

    @cached_property
    def assets(self) -> frozenset[str]:
        """What it can hold: the assets of its markets, and those it has a withdrawal fee for
        (the default market lists USDC there, so USDC deposits are expected to work)."""
        listed = {part for pair in self.markets.spot + self.markets.perp for part in pair.split("/")}
        return frozenset(listed | set(self.withdraw_fee))


class _CollateralTerms(_Model):
    """How much collateral counts: 0 <= ltv <= liquidation_threshold < 1, and the bonus a
    liquidator earns seizing it, with liquidation_threshold · (1 + bonus) <= 1 (Aave's own
    rule: otherwise seizing collateral would leave the account less healthy than before)."""

    ltv: Fraction
    liquidation_threshold: Fraction
    liquidation_bonus: Fraction = Decimal(0)

    @model_validator(mode="after")
    def _ltv_within_threshold(self) -> _CollateralTerms:
        if self.ltv > self.liquidation_threshold:
            raise ValueError(f"ltv ({show(self.ltv)}) must not exceed liquidation_threshold "
                             f"({show(self.liquidation_threshold)})")
        with arithmetic():
            if self.liquidation_threshold * (1 + self.liquidation_bonus) > 1:
                raise ValueError(f"liquidation_threshold ({show(self.liquidation_threshold)}) "
                                 f"· (1 + liquidation_bonus ({show(self.liquidation_bonus)})) "
                                 "must not exceed 1")
        return self


class LendingAsset(_CollateralTerms):
    """Terms of one asset at a lending venue: its own LTV, threshold and bonus, and how the
    venue's oracle prices it (v3): `market`, its price; `exchange_rate`, price(underlying)
    · rate(asset), as Aave prices weETH and wstETH (executors/oracle.py)."""

    borrowable: StrictBool = False
    oracle: Literal["market", "exchange_rate"] = "market"


class EModeCategory(_CollateralTerms):
    """An e-mode category (Aave): correlated assets with their own LTV, threshold and bonus,
    used by an account whose every borrowed asset is in it (LANGUAGE.md section 4)."""

    assets: list[str]


class LiquidationTerms(_Model):
    """How far one liquidation call may go (v3; Aave v3.3 and later, LiquidationLogic's
    DEFAULT_LIQUIDATION_CLOSE_FACTOR, MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD and
    MIN_LEFTOVER_BASE): a call repays at most `close_factor` of the account's total debt,
    all of the chosen debt when that debt or the chosen collateral is worth less than
    `full_close_below_usd`, and must leave `min_leftover_usd` of both or none of either
    (executors/liquidation.py)."""

    close_factor: Share = Decimal("0.5")
    full_close_below_usd: NonNegative = Decimal(2000)
    min_leftover_usd: NonNegative = Decimal(1000)


class LendingVenue(_Model):
    """A lending market (Aave): collateral, debt, and flash loans when `flash_fee` is set."""

    kind: Literal["lending"]
    flash_fee: Fee | None = None
    assets: dict[str, LendingAsset] = {}
    emode: dict[str, EModeCategory] = {}
    liquidation: LiquidationTerms = Field(default_factory=LiquidationTerms)

    @model_validator(mode="after")
    def _emode_assets_listed(self) -> LendingVenue:
        for name, category in self.emode.items():
            for asset in category.assets:
                if asset not in self.assets:
                    raise ValueError(f"e-mode category {name} lists {asset}, which is not one "
                                     "of the venue's assets")
        return self


class StakingVenue(_Model):
    """A liquid-staking protocol: `stake` maps the staked asset to the receipt token."""

    kind: Literal["staking"]
    stake: dict[str, str] = {}
    unstake_atomic: StrictBool = False


class DexVenue(_Model):
    """A DEX that swaps any two priced assets."""

    kind: Literal["dex"]
    fee: Fee = Decimal(0)


class FlashLenderVenue(_Model):
    """A flash-loan provider (Balancer)."""

    kind: Literal["flash_lender"]
    flash_fee: Fee = Decimal(0)
    assets: list[str] = []


class ExecutorVenue(_Model):
    """A contract that runs atomic blocks (`via`)."""

    kind: Literal["executor"]


Venue = Annotated[
    Union[WalletVenue, CexVenue, LendingVenue, StakingVenue, DexVenue, FlashLenderVenue,
          ExecutorVenue],
    Field(discriminator="kind"),
]
AnyVenue = (WalletVenue | CexVenue | LendingVenue | StakingVenue | DexVenue | FlashLenderVenue
            | ExecutorVenue)


class LendingRates(_Model):
    """Supply and borrow APRs (fractions a year) of the assets of one lending venue."""

    supply: dict[str, NonNegative] = {}
    borrow: dict[str, NonNegative] = {}


class Rates(_Model):
    """Rates for the projected carry, and for backtests where the series is silent (v2):
    funding per funding interval by CEX and BASE, lending APRs by venue, and the staking APR
    (the yearly growth of `rate`) by rate-bearing asset."""

    funding: dict[str, dict[str, SignedFraction]] = {}
    lending: dict[str, LendingRates] = {}
    staking: dict[str, NonNegative] = {}


class Market(_Model):
    """A market snapshot."""

    prices: dict[str, Positive]
    assets: dict[str, AssetInfo] = {}
    gas: Gas
    venues: dict[str, Venue]
    rates: Rates = Field(default_factory=Rates)  # not built at import (issue 17)
    # v3: oracle prices a series' `oracle.ASSET` columns set (a lagging or broken feed),
    # overriding each lending venue's rule; never in a market file. Replaced, not changed in
    # place, so that a copy of the market (model_copy shares it) never sees another's.
    _oracle_feed: dict[str, Decimal] = PrivateAttr(default_factory=dict)

    @field_validator("prices")
    @classmethod
    def _asset_symbols(cls, prices: dict[str, Decimal]) -> dict[str, Decimal]:
        for asset in prices:
            if not _ASSET.match(asset):
                raise ValueError(f"{asset!r} is not an asset symbol")
        return prices

    @field_validator("venues")
    @classmethod
    def _venue_names(cls, venues: dict[str, Any]) -> dict[str, Any]:
        for name in venues:
            if not _VENUE_NAME.match(name):
                raise ValueError(f"{name!r} is not a venue name (lowercase letters, digits, _)")
        return venues

    @model_validator(mode="after")
    def _rates_name_what_exists(self) -> Market:
        """Every rate belongs to a perp, a lending asset or a rate-bearing asset there is."""
        for venue, bases in self.rates.funding.items():
            terms = self.venues.get(venue)
            if not isinstance(terms, CexVenue):
                raise ValueError(f"rates.funding.{venue}: {venue} is not a CEX of this market")
            perps = {pair.split("/")[0] for pair in terms.markets.perp}
            for base in bases:
                if base not in perps:
                    raise ValueError(f"rates.funding.{venue}.{base}: {venue} lists no {base} perp")
        for venue, table in self.rates.lending.items():
            lender = self.venues.get(venue)
            if not isinstance(lender, LendingVenue):
                raise ValueError(f"rates.lending.{venue}: {venue} is not a lending venue of this "
                                 "market")
            for asset in table.supply:
                if asset not in lender.assets:
                    raise ValueError(f"rates.lending.{venue}.supply.{asset}: {venue} does not "
                                     f"take {asset}")
            for asset in table.borrow:
                own = lender.assets.get(asset)
                if own is None or not own.borrowable:
                    raise ValueError(f"rates.lending.{venue}.borrow.{asset}: {venue} does not "
                                     f"lend {asset}")
        for asset in self.rates.staking:
            if asset not in self.assets:
                raise ValueError(f"rates.staking.{asset}: {asset} is not a rate-bearing asset "
                                 "(it needs an entry under assets:, with its underlying)")
        return self

    @model_validator(mode="after")
    def _oracles_can_price(self) -> Market:
        """`oracle: exchange_rate` needs the asset's underlying and its price."""
        for name, venue in self.venues.items():
            if not isinstance(venue, LendingVenue):
                continue
            for asset, terms in venue.assets.items():
                if terms.oracle != "exchange_rate":
                    continue
                info = self.assets.get(asset)
                if info is None:
                    raise ValueError(f"venues.{name}.assets.{asset}.oracle: exchange_rate needs "
                                     f"{asset} under assets:, with its underlying and rate")
                if info.underlying not in self.prices:
                    raise ValueError(f"venues.{name}.assets.{asset}.oracle: exchange_rate needs "
                                     f"a price for {asset}'s underlying {info.underlying}")
        return self

    # --- questions executors and rules ask -----------------------------------------------
    def price(self, asset: str) -> Decimal:
        """USD price; MarketError when the asset has none."""
        try:
            return self.prices[asset]
        except KeyError:
            raise MarketError(f"the market has no price for {asset}") from None

    def knows(self, asset: str) -> bool:
        """True when the asset is priced."""
        return asset in self.prices

    def rate(self, asset: str) -> Decimal:
        """Units of the underlying one unit of `asset` is worth (1 for a base asset)."""
        info = self.assets.get(asset)
        return info.rate if info else Decimal(1)

    def underlying(self, asset: str) -> str:
        """The asset's underlying, or the asset itself."""
        info = self.assets.get(asset)
        return info.underlying if info else asset

    def underlyings_first(self, assets: Iterable[str]) -> list[str]:
        """The assets in an order where an underlying among them comes before the assets on
        it (a market may list aWETH, on WETH, before WETH): prices derived in this order
        are each price(underlying) · rate of the same moment."""
        pending, ordered = dict.fromkeys(assets), []

        def place(asset: str, seen: set[str]) -> None:
            if asset not in pending or asset in seen:
                return
            seen.add(asset)
            place(self.underlying(asset), seen)
            del pending[asset]
            ordered.append(asset)

        for asset in list(pending):
            place(asset, set())
        return ordered

    def flash_fee(self, venue: str, asset: str) -> Decimal | None:
        """The flash-loan fee for `asset` at `venue`, or None when it does not lend it."""
        terms = self.venues.get(venue)
        if isinstance(terms, FlashLenderVenue) and asset in terms.assets:
            return terms.flash_fee
        if isinstance(terms, LendingVenue) and terms.flash_fee is not None and \
                asset in terms.assets:
            return terms.flash_fee
        return None

    def funding_rate(self, venue: str, base: str) -> Decimal:
        """The funding rate per interval of the `base` perp at `venue` (0 when the market has
        none); MarketError when the venue lists no such perp."""
        if not self.lists_perp(venue, base):
            raise MarketError(f"{venue} lists no {base} perp")
        return self.rates.funding.get(venue, {}).get(base, Decimal(0))

    def lists_perp(self, venue: str, base: str) -> bool:
        """True when `venue` is a CEX listing a perp in `base` (against any quote)."""
        terms = self.venues.get(venue)
        return isinstance(terms, CexVenue) and \
            any(pair.split("/")[0] == base for pair in terms.markets.perp)

    def supply_rate(self, venue: str, asset: str) -> Decimal:
        """The supply APR of `asset` at the lending venue (0 when the market has none)."""
        table = self.rates.lending.get(venue)
        return table.supply.get(asset, Decimal(0)) if table is not None else Decimal(0)

    def borrow_rate(self, venue: str, asset: str) -> Decimal:
        """The borrow APR of `asset` at the lending venue (0 when the market has none)."""
        table = self.rates.lending.get(venue)
        return table.borrow.get(asset, Decimal(0)) if table is not None else Decimal(0)

    def staking_rate(self, asset: str) -> Decimal:
        """The APR at which a rate-bearing asset's `rate` grows (0 for any other asset)."""
        return self.rates.staking.get(asset, Decimal(0))

    def oracle_feed(self) -> dict[str, Decimal]:
        """Oracle prices set by a series (`oracle.ASSET`), by asset; do not change it in
        place (`set_oracle_feed` replaces it)."""
        # Read from pydantic's dict of private attributes directly: `self._oracle_feed` goes
        # through `BaseModel.__getattr__` (~1.8 us, against 0.06 us), and a backtest asks
        # for the feed at every step (docs/performance.md, item 42).
        private = self.__pydantic_private__
        assert private is not None  # a model with private attributes always has them
        feed: dict[str, Decimal] = private["_oracle_feed"]
        return feed

    def set_oracle_feed(self, asset: str, price: Decimal) -> None:
        """From now on every lending venue's oracle prices `asset` at `price` (LANGUAGE.md
        section 9: a series column `oracle.ASSET` overrides the venue's rule)."""
        self._oracle_feed = {**self._oracle_feed, asset: price}

    def gas_eth(self, units: int, price_gwei: Decimal | None = None) -> Decimal:
        """ETH for `units` of gas at the given (or the market's) price."""
        gwei = self.gas.price_gwei if price_gwei is None else price_gwei
        return Decimal(units) * gwei / Decimal(1_000_000_000)


_KINDS = "wallet, cex, lending, staking, dex, flash_lender or executor"
_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field here",
    "union_tag_not_found": f"needs a kind: {_KINDS}",
}


def _where(loc: tuple[int | str, ...], data: Any) -> str:
    """The field path of an error, as the user wrote it: `venues.binance.taker_fee`.

    pydantic's location also names a discriminated union's tag (`venues.binance.cex...`)
    and validator functions; those are not in the file and are left out.
    """
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, dict) and part == node.get("kind"):
            continue  # the tag pydantic chose the venue model by
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            parts[-1:] = [f"{parts[-1]}[{part}]" if parts else f"[{part}]"]
            continue
        elif node is not None and not isinstance(node, dict | list):
            break  # past the value the user wrote: pydantic's own steps (a union member...)
        else:
            node = None
        from stratplan.executors.strict_yaml import path_part
        parts.append(path_part(part))
    return ".".join(parts)


_SCALARS = (str, int, float, Decimal, type(None))


def _first_error(exc: ValidationError, data: Any) -> str:
    first: ErrorDetails = exc.errors(include_url=False)[0]
    where = _where(first["loc"], data)
    kind = first["type"]
    if kind == "union_tag_invalid":  # `kind: moon`
        tag = (first.get("ctx") or {}).get("tag")
        where = f"{where}.kind" if where else "kind"
        message = f"{show(tag)} is not a venue kind (one of {_KINDS})"
    elif kind in _MESSAGES:
        message = _MESSAGES[kind]
    elif kind == "value_error":  # ours: the message already says what it got
        message = str(first["msg"]).removeprefix("Value error, ")
    else:
        message = str(first["msg"])
        if isinstance(first["input"], _SCALARS):
            message = f"{message} (got {show(first['input'])})"
    message = " ".join(message.split())  # one line, whatever pydantic quotes
    return f"{where}: {message}" if where else message


def market_from_data(data: Any, source: str) -> Market:
    """A validated market from parsed YAML data; MarketError with one line otherwise."""
    if not isinstance(data, dict):
        raise MarketError(f"{source}: a market file is a mapping with prices, gas and venues")
    try:
        with arithmetic():
            return Market.model_validate(data)
    except ValidationError as exc:
        raise MarketError(f"{source}: {_first_error(exc, data)}") from None
    except DecimalException:  # every number is checked before use; this is a safety net
        raise MarketError(f"{source}: a number is out of range") from None
    except RecursionError:
        raise MarketError(f"{source}: the market file is nested too deeply") from None


def _too_many_nodes(data: Any) -> bool:
    """True when the data, with YAML aliases expanded, exceeds MAX_MARKET_NODES.

    Aliases let a small file stand for an exponentially large document (the "billion
    laughs"); validation would walk every copy. The walk stops as soon as the cap is hit.
    """
    stack, seen = [data], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > MAX_MARKET_NODES:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def market_from_text(text: str, source: str) -> Market:
    """Parse YAML text (a safe loader only, duplicate keys refused) into a market."""
    import yaml

    from stratplan.executors.strict_yaml import load_strict
    try:
        data = load_strict(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or "invalid YAML").split())
        raise MarketError(f"{source}{where}: {problem}") from None
    except RecursionError:
        raise MarketError(f"{source}: the market file is nested too deeply") from None
    if _too_many_nodes(data):
        raise MarketError(f"{source}: the market expands to more than {MAX_MARKET_NODES:,} "
                          "values (too many YAML aliases?)")
    return market_from_data(data, source)


def _too_large(file: Path) -> MarketError:
    return MarketError(f"{file}: larger than the {MAX_MARKET_BYTES // (1024 * 1024)} MiB limit "
                       "for a market file")


def load_market(path: str | Path) -> Market:
    """Read a market file; MarketError with a one-line reason when it cannot be used."""
    file = Path(path)
    try:
        if file.exists() and not file.is_dir() and not file.is_file():
            raise MarketError(f"{file}: not a regular file")
        if file.stat().st_size > MAX_MARKET_BYTES:  # before reading a byte of it
            raise _too_large(file)
        with file.open("rb") as handle:  # and never more than the limit, should it grow
            raw = handle.read(MAX_MARKET_BYTES + 1)
        if len(raw) > MAX_MARKET_BYTES:
            raise _too_large(file)
    except FileNotFoundError:
        raise MarketError(f"{file}: no such market file") from None
    except IsADirectoryError:
        raise MarketError(f"{file}: is a folder, not a market file") from None
    except OSError as exc:
        raise MarketError(f"{file}: cannot read ({exc.strerror or exc})") from None
    except ValueError:  # a NUL in the path: the OS cannot be asked about it at all
        raise MarketError(f"{str(file)!r}: not a usable file name") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MarketError(f"{file}: not UTF-8 text") from None
    return market_from_text(text, str(file))


# Every model of a market, by which the built-in market's module names them.
_MODELS = (AssetInfo, Gas, CexMarkets, WalletVenue, MaintenanceBracket, CexVenue, LendingAsset,
           EModeCategory, LiquidationTerms, LendingVenue, StakingVenue, DexVenue,
           FlashLenderVenue, ExecutorVenue, LendingRates, Rates, Market)


@cache
def default_market() -> Market:
    """The built-in market of DESIGN.md.

    Validating it builds pydantic's validators for every market model: a tenth of a small
    lint (issue 17). So the validated market ships as a module of constructor calls
    (`executors/builtin_market.py`, written by `tools/builtin_market.py` and checked
    against validation by a test), used while the YAML is the one it was built from; an
    edited YAML is validated as any market file is."""
    from stratplan.executors.builtin_market import MARKET_SHA256, build_market

    text = data_text("stratplan.executors", "data/default_market.yaml")
    if hashlib.sha256(text.encode("utf-8")).hexdigest() == MARKET_SHA256:
        models = {model.__name__: model for model in _MODELS}
        market: Market = build_market(models)
        return market
    return market_from_text(text, "built-in market")


def validated_default_market() -> Market:
    """The built-in market validated from its YAML (what `default_market` must equal)."""
    return market_from_text(data_text("stratplan.executors", "data/default_market.yaml"),
                            "built-in market")
