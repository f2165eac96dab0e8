"""Oracle prices: the prices a lending venue values collateral and debt at (LANGUAGE.md
section 9, "Oracle prices").

Aave never reads an exchange's price. Its `AaveOracle.getAssetPrice` returns each asset's
price source; for a liquid-staking token that source is a price-cap adapter which answers
the underlying's feed times the token's own exchange rate (bgd-labs/aave-capo,
`PriceCapAdapterBase.latestAnswer` with `WeETHPriceCapAdapter.getRatio` =
`weETH.getRate()`). So a weETH depeg on exchanges leaves health, LTV and liquidations
alone, and a fall of the exchange rate (a slashing) moves them. (The adapter also caps the
rate's growth per year; a backtest's rate grows at the staking APR, far below the cap, and
the model does not apply it.)

The market says, per asset of a lending venue, `oracle: market` (the default: the asset's
price) or `oracle: exchange_rate` (price(underlying) · rate(asset)). A series column
`oracle.ASSET` overrides the rule from its first value on (`Market.set_oracle_feed`): a
lagging or broken feed. Swaps, spot trades, `price(T)`, `value()` and every USD figure of a
report stay at market prices.
"""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from stratplan.executors.market import LendingVenue, Market


def oracle_price(market: Market, venue: str, asset: str) -> Decimal:
    """The USD price of `asset` that lending venue `venue` uses now: the series' feed when
    it set one, else price(underlying) · rate(asset) for an `exchange_rate` asset, else the
    asset's market price (MarketError when the market has no price it needs)."""
    fed = market.oracle_feed().get(asset)
    if fed is not None:
        return fed
    if exchange_rate_priced(market, venue, asset):
        return market.price(market.underlying(asset)) * market.rate(asset)
    return market.price(asset)


def exchange_rate_priced(market: Market, venue: str, asset: str) -> bool:
    """True when the venue's oracle prices `asset` by its exchange rate (`oracle:
    exchange_rate`), the series' feed aside."""
    terms = market.venues.get(venue)
    # `kind`, not isinstance: pydantic classes check instances through ABCMeta (per step).
    if terms is None or terms.kind != "lending":
        return False
    listed = cast(LendingVenue, terms).assets.get(asset)
    return listed is not None and listed.oracle == "exchange_rate"
