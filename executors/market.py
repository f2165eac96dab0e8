"""The market snapshot: prices, asset rates, the gas table and the venues with their terms.

Loaded from YAML with `yaml.safe_load` only and validated by pydantic; the built-in
default ships as package data. Every number is a Decimal.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from stratplan.executors.errors import MarketError
from stratplan.executors.rates import Dec

MAX_MARKET_BYTES = 1024 * 1024
MAX_MARKET_NODES = 200_000
_VENUE_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_ASSET = re.compile(r"[a-z]*[A-Z][A-Za-z0-9.]*\Z")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AssetInfo(_Model):
    """A derivative asset: its underlying and how many underlying units one unit is worth."""

    underlying: str
    rate: Dec = Decimal(1)


class Gas(_Model):
    """Gas price and units: base per transaction plus per operation."""

    price_gwei: Dec
    base_tx: int = Field(ge=0)
    ops: dict[str, int] = {}


class CexMarkets(_Model):
    """The spot and perp markets a CEX lists, as BASE/QUOTE."""

    spot: list[str] = []
    perp: list[str] = []


class WalletVenue(_Model):
    """The user's own on-chain wallet."""

    kind: Literal["wallet"]


class CexVenue(_Model):
    """A centralised exchange."""

    kind: Literal["cex"]
    taker_fee: Dec = Decimal(0)
    max_leverage: Dec = Decimal(20)
    default_leverage: Dec = Decimal(1)
    withdraw_fee: dict[str, Dec] = {}
    markets: CexMarkets = CexMarkets()

    @cached_property
    def assets(self) -> frozenset[str]:
        """What it can hold: the assets of its markets, and those it has a withdrawal fee for
        (the default market lists USDC there, so USDC deposits are expected to work)."""
        listed = {part for pair in self.markets.spot + self.markets.perp for part in pair.split("/")}
        return frozenset(listed | set(self.withdraw_fee))


class LendingAsset(_Model):
    """Terms of one asset at a lending venue."""

    ltv: Dec
    liquidation_threshold: Dec
    borrowable: bool = False


class LendingVenue(_Model):
    """A lending market (Aave): collateral, debt, and flash loans when `flash_fee` is set."""

    kind: Literal["lending"]
    flash_fee: Dec | None = None
    assets: dict[str, LendingAsset] = {}


class StakingVenue(_Model):
    """A liquid-staking protocol: `stake` maps the staked asset to the receipt token."""

    kind: Literal["staking"]
    stake: dict[str, str] = {}
    unstake_atomic: bool = False


class DexVenue(_Model):
    """A DEX that swaps any two priced assets."""

    kind: Literal["dex"]
    fee: Dec = Decimal(0)


class FlashLenderVenue(_Model):
    """A flash-loan provider (Balancer)."""

    kind: Literal["flash_lender"]
    flash_fee: Dec = Decimal(0)
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


class Market(_Model):
    """A market snapshot."""

    prices: dict[str, Dec]
    assets: dict[str, AssetInfo] = {}
    gas: Gas
    venues: dict[str, Venue]

    @field_validator("prices")
    @classmethod
    def _positive_prices(cls, prices: dict[str, Decimal]) -> dict[str, Decimal]:
        for asset, price in prices.items():
            if not _ASSET.match(asset):
                raise ValueError(f"{asset!r} is not an asset symbol")
            if price <= 0:
                raise ValueError(f"the price of {asset} must be positive")
        return prices

    @field_validator("venues")
    @classmethod
    def _venue_names(cls, venues: dict[str, Any]) -> dict[str, Any]:
        for name in venues:
            if not _VENUE_NAME.match(name):
                raise ValueError(f"{name!r} is not a venue name (lowercase letters, digits, _)")
        return venues

    @model_validator(mode="after")
    def _consistent(self) -> Market:
        for asset, info in self.assets.items():
            if info.rate <= 0:
                raise ValueError(f"assets.{asset}.rate must be positive")
        for name, venue in self.venues.items():
            if isinstance(venue, CexVenue):
                if venue.default_leverage <= 0 or venue.max_leverage <= 0:
                    raise ValueError(f"venues.{name}: leverage must be positive")
                for pair in venue.markets.spot + venue.markets.perp:
                    parts = pair.split("/")
                    if len(parts) != 2 or not all(_ASSET.match(p) for p in parts):
                        raise ValueError(f"venues.{name}: {pair!r} is not a BASE/QUOTE market")
            if isinstance(venue, LendingVenue):
                for asset, terms in venue.assets.items():
                    if not (0 <= terms.ltv <= terms.liquidation_threshold <= 1):
                        raise ValueError(f"venues.{name}.assets.{asset}: need 0 <= ltv <= "
                                         "liquidation_threshold <= 1")
        if self.gas.price_gwei < 0:
            raise ValueError("gas.price_gwei must not be negative")
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

    def flash_fee(self, venue: str, asset: str) -> Decimal | None:
        """The flash-loan fee for `asset` at `venue`, or None when it does not lend it."""
        terms = self.venues.get(venue)
        if isinstance(terms, FlashLenderVenue) and asset in terms.assets:
            return terms.flash_fee
        if isinstance(terms, LendingVenue) and terms.flash_fee is not None and \
                asset in terms.assets:
            return terms.flash_fee
        return None

    def gas_eth(self, units: int, price_gwei: Decimal | None = None) -> Decimal:
        """ETH for `units` of gas at the given (or the market's) price."""
        gwei = self.gas.price_gwei if price_gwei is None else price_gwei
        return Decimal(units) * gwei / Decimal(1_000_000_000)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function"))
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def market_from_data(data: Any, source: str) -> Market:
    """A validated market from parsed YAML data; MarketError with one line otherwise."""
    if not isinstance(data, dict):
        raise MarketError(f"{source}: a market file is a mapping with prices, gas and venues")
    try:
        return Market.model_validate(data)
    except ValidationError as exc:
        raise MarketError(f"{source}: {_first_error(exc)}") from None
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
    """Parse YAML text (safe loader only) into a market."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise MarketError(f"{source}{where}: {problem}") from None
    except RecursionError:
        raise MarketError(f"{source}: the market file is nested too deeply") from None
    if _too_many_nodes(data):
        raise MarketError(f"{source}: the market expands to more than {MAX_MARKET_NODES:,} "
                          "values (too many YAML aliases?)")
    return market_from_data(data, source)


def load_market(path: str | Path) -> Market:
    """Read a market file; MarketError with a one-line reason when it cannot be used."""
    file = Path(path)
    try:
        if file.exists() and not file.is_dir() and not file.is_file():
            raise MarketError(f"{file}: not a regular file")
        if file.stat().st_size > MAX_MARKET_BYTES:
            raise MarketError(f"{file}: larger than {MAX_MARKET_BYTES:,} bytes")
        raw = file.read_bytes()
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


@cache
def default_market() -> Market:
    """The built-in market of DESIGN.md."""
    text = resources.files("stratplan.executors").joinpath("data/default_market.yaml").read_text("utf-8")
    return market_from_text(text, "built-in market")
