"""The plan's market as a local chain: tokens, feeds, Aave pools, Balancer vaults, DEXes,
staking, liquidity, and the wallet's account (docs/evm.md, "What is deployed").

- Every priced asset but ETH is an ERC-20 with 18 decimals (WETH wraps ETH; an asset with an
  `underlying` is a rate-bearing token with the market's rate, deposited from the asset its
  staking venue stakes, else from its underlying).
- Each lending venue is an Aave pool (executors/evm/aave.py) whose oracle reads one feed per
  asset: the asset's market price, or — `oracle: exchange_rate` — the underlying's feed times
  the token's own rate, as Aave's price-cap adapters answer for weETH. Feeds have 8 decimals.
- Each flash lender is a Balancer v2 Vault holding ample liquidity, with its flash fee.
- Each DEX fills at the market's prices less its fee and the order's slippage.
- A liquidity provider supplies ample liquidity to every Aave reserve.
- The wallet is a StratplanAccount contract owned by a key of its own: it holds the wallet's
  on-chain assets (ETH included) and its lending positions, and runs each transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from stratplan.executors.errors import MarketError
from stratplan.executors.evm import setup
from stratplan.executors.evm.aave import AavePool, deploy_aave, ray, set_rates
from stratplan.executors.evm.abi import MAX_UINT, ZERO_ADDRESS
from stratplan.executors.evm.chain import Chain, Contract, Reverted
from stratplan.executors.ledger import WALLET
from stratplan.executors.market import (
    DexVenue,
    FlashLenderVenue,
    LendingVenue,
    Market,
    StakingVenue,
)
from stratplan.executors.oracle import exchange_rate_priced, oracle_price

ETH = "ETH"
WEI = Decimal(10**18)
FEED_UNIT = Decimal(10**8)
LIQUIDITY = 10**12 * 10**18  # what the liquidity provider and the vaults hold of each asset
_COLLECTOR_ABI = [
    {"type": "function", "name": "setFlashLoanFeePercentage",
     "inputs": [{"name": "fee", "type": "uint256"}], "outputs": []},
    {"type": "function", "name": "getFlashLoanFeePercentage", "inputs": [],
     "outputs": [{"name": "", "type": "uint256"}]}]


def to_wei(amount: Decimal) -> int:
    """An amount of an 18-decimal asset in wei, rounded down (the chain holds no less)."""
    return int((amount * WEI).to_integral_value(rounding=ROUND_DOWN))


def from_wei(wei: int) -> Decimal:
    """Wei as an amount of an 18-decimal asset (exact)."""
    return Decimal(wei).scaleb(-18)


def fixed(value: Decimal, unit: Decimal) -> int:
    """A price or rate as an integer of `unit` (1e8 feeds, 1e18 rates), rounded down."""
    return int((value * unit).to_integral_value(rounding=ROUND_DOWN))


@dataclass
class World:
    """Everything deployed for one market."""

    chain: Chain
    market: Market
    aave: str
    errors: dict[str, dict[str, Any]]
    codes: dict[str, str]
    tokens: dict[str, Contract] = field(default_factory=dict)
    feeds: dict[str, Contract] = field(default_factory=dict)
    pools: dict[str, AavePool] = field(default_factory=dict)
    vaults: dict[str, Contract] = field(default_factory=dict)
    dexes: dict[str, Contract] = field(default_factory=dict)
    staked_input: dict[str, str] = field(default_factory=dict)  # token -> asset it takes in
    owner: Any = None
    account: Contract | None = None
    provider_address: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    _set: dict[tuple[str, ...], object] = field(default_factory=dict)
    _generation: int = 0

    def __repr__(self) -> str:
        return f"World(Aave {self.aave}, {len(self.tokens)} tokens, {len(self.pools)} pools)"

    @property
    def admin(self) -> str:
        """The deployer, admin of every mock and pool."""
        return str(self.chain.deployer)

    @property
    def wallet(self) -> str:
        """The wallet's account contract."""
        assert self.account is not None
        return self.account.address

    def address_of(self, asset: str) -> str:
        """The token of an asset (the zero address for ETH)."""
        return ZERO_ADDRESS if asset == ETH else self.tokens[asset].address

    # --- the wallet's books, as the chain holds them ----------------------------------------
    def wallet_balance(self, asset: str) -> int:
        """What the account holds of an asset, in wei."""
        if asset == ETH:
            return self.chain.balance(self.wallet)
        return int(self.tokens[asset].view("balanceOf", self.wallet))

    def books(self) -> dict[tuple[str, str, str], Decimal]:
        """(book, venue, asset) -> amount, non-zero only: the wallet's balances of every
        asset, and its collateral and debt at every lending venue."""
        found: dict[tuple[str, str, str], Decimal] = {}
        for asset in [ETH, *self.tokens]:
            wei = self.wallet_balance(asset)
            if wei:
                found[("balance", WALLET, asset)] = from_wei(wei)
        found.update(self.positions())
        return found

    def positions(self) -> dict[tuple[str, str, str], Decimal]:
        """(book, venue, asset) -> amount, non-zero only: collateral and debt at every
        lending venue."""
        found: dict[tuple[str, str, str], Decimal] = {}
        for venue, pool in self.pools.items():
            for asset, token in pool.a_tokens.items():
                wei = int(token.view("balanceOf", self.wallet))
                if wei:
                    found[("collateral", venue, asset)] = from_wei(wei)
            for asset, token in pool.debt_tokens.items():
                wei = int(token.view("balanceOf", self.wallet))
                if wei:
                    found[("debt", venue, asset)] = from_wei(wei)
        return found

    def set_wallet_balance(self, asset: str, amount: Decimal) -> None:
        """Make the account hold `amount` of an asset (mint, burn or set ETH): how the
        simulated venues' effects on the wallet (a transfer from a CEX) reach the chain."""
        wanted = to_wei(amount)
        if asset == ETH:
            self.chain.set_balance(self.wallet, wanted)
            return
        have = self.wallet_balance(asset)
        if wanted > have:
            self.tokens[asset].call("mint", self.wallet, wanted - have, sender=self.admin)
        elif wanted < have:
            self.tokens[asset].call("burn", self.wallet, have - wanted, sender=self.admin)

    # --- prices, rates and time ---------------------------------------------------------------
    def _changes(self, key: tuple[str, ...], value: object) -> bool:
        """True when `key` must be set to `value` on the chain (what was last set is kept,
        and forgotten whenever the chain returns to a snapshot)."""
        if self._generation != self.chain.generation:
            self._set.clear()
            self._generation = self.chain.generation
        if self._set.get(key) == value:
            return False
        self._set[key] = value
        return True

    def set_prices(self, market: Market) -> None:
        """Feeds, token rates and DEX prices from a market (a series' step)."""
        self.market = market
        for asset, token in self.tokens.items():
            if asset in self.staked_input:
                rate = fixed(market.rate(asset), WEI)
                if self._changes(("rate", asset), rate) and int(token.view("rate")) != rate:
                    token.call("setRate", rate, sender=self.admin)
        for asset, feed in self.feeds.items():
            if feed.name != "MockFeed":
                continue  # an exchange-rate feed follows its underlying and the token
            answer = fixed(self._feed_price(market, asset), FEED_UNIT)
            if self._changes(("feed", asset), answer) and \
                    int(feed.view("latestAnswer")) != answer:
                feed.call("setAnswer", answer, sender=self.admin)
        for venue, pool in self.pools.items():
            for asset in pool.a_tokens:
                if not exchange_rate_priced(market, venue, asset):
                    continue
                # A series' oracle.ASSET replaces the exchange-rate rule from its first value.
                feed = self.feeds[asset if asset in market.oracle_feed() else f"{asset}:rate"]
                address = self.tokens[asset].address
                if self._changes(("source", venue, asset), feed.address) and \
                        pool.oracle.view("getSourceOfAsset", address) != feed.address:
                    pool.oracle.call("setAssetSources", [address], [feed.address],
                                     sender=self.admin)
        for name, dex in self.dexes.items():
            for asset in [ETH, *self.tokens]:
                if market.knows(asset):
                    price = fixed(market.price(asset), WEI)
                    if self._changes(("dex", name, asset), price):
                        dex.call("setPrice", self.address_of(asset), price, sender=self.admin)

    def _feed_price(self, market: Market, asset: str) -> Decimal:
        fed = market.oracle_feed().get(asset)
        if fed is not None:
            return fed
        return market.price(asset)

    def set_lending_rates(self, market: Market,
                          held: Iterable[tuple[str, str]] | None = None) -> None:
        """Each reserve's APRs from the market, from now on. The reserves in `held` (venue,
        asset: those the account holds or owes; None: every one) are touched — their indexes
        brought up to now at the old rates first, as any action on a reserve does — so that
        interest compounds step by step on the chain as in the model (a reserve nobody
        touches would accrue a whole span linearly). The others only take their new rates,
        which their next action puts in force."""
        touch = None if held is None else set(held)
        for venue, pool in self.pools.items():
            for asset in pool.a_tokens:
                token = self.tokens[asset]
                rates = (market.supply_rate(venue, asset), market.borrow_rate(venue, asset))
                touched = touch is None or (venue, asset) in touch
                if not self._changes(("rates", venue, asset), rates) and not touched:
                    continue
                if not touched:
                    pool.rates.call("setRates", token.address, ray(rates[0]), ray(rates[1]),
                                    sender=self.admin)
                    continue
                set_rates(pool, token.address, *rates, self.admin)
                if self.aave != "v3.6":  # v3.0 reads new rates at the reserve's next action
                    token.call("mint", self.provider_address, 1, sender=self.admin)
                    pool.pool.call("supply", token.address, 1, self.provider_address, 0,
                                   sender=self.provider_address)


@dataclass(frozen=True)
class LiquidationCall:
    """One liquidationCall a liquidator sent: what it repaid and what the account lost
    (collateral, the protocol's fee included), in wei; or the revert, by name."""

    ok: bool
    repaid: int = 0
    seized: int = 0
    gas_used: int = 0
    tx_hash: str = ""
    error: str = ""


def liquidation_call(world: World, venue: str, collateral: str, debt: str,
                     amount: Decimal | None) -> LiquidationCall:
    """A liquidator account (funded with the debt asset) calls Aave's liquidationCall on the
    wallet's account for `amount` of `debt` (None: as much as Aave allows), taking
    `collateral` as the asset itself (receiveAToken false)."""
    from stratplan.executors.evm.errors import read_revert

    pool = world.pools[venue]
    key = world.chain.key("liquidator")
    debt_token = world.tokens[debt]
    if int(debt_token.view("allowance", key.address, pool.pool.address)) != MAX_UINT:
        debt_token.call("approve", pool.pool.address, MAX_UINT, sender=key.address)
    debt_token.call("mint", key.address, LIQUIDITY, sender=world.admin)
    a_token = pool.a_tokens[collateral]
    paid = int(debt_token.view("balanceOf", key.address))
    held = int(a_token.view("balanceOf", world.wallet))
    data = pool.pool.calldata("liquidationCall", world.tokens[collateral].address,
                              debt_token.address, world.wallet,
                              MAX_UINT if amount is None else to_wei(amount), False)
    receipt = world.chain.send(key, pool.pool.address, data)
    if not receipt.ok:
        return LiquidationCall(False, gas_used=receipt.gas_used, tx_hash=receipt.tx_hash,
                               error=read_revert(receipt.output, world.errors,
                                                 world.codes).describe())
    return LiquidationCall(True, paid - int(debt_token.view("balanceOf", key.address)),
                           held - int(a_token.view("balanceOf", world.wallet)),
                           receipt.gas_used, receipt.tx_hash)


def build_world(market: Market, aave: str = setup.DEFAULT_AAVE,
                payloads: tuple[dict[str, Any], dict[str, Any]] | None = None) -> World:
    """Deploy the market on a new local chain (SetupError without the cached contracts,
    MarketError for a market the chain cannot hold)."""
    import time

    reference, own = payloads if payloads is not None else setup.load(aave)
    start = time.perf_counter()
    chain = Chain({**reference["contracts"], **own["contracts"]})
    world = World(chain, market, aave, {**reference.get("errors", {}), **own.get("errors", {})},
                  dict(reference.get("codes", {})))
    try:
        _deploy(world, market, aave)
    except Reverted as exc:  # a market Aave's configurator refuses (an e-mode LT too low...)
        from stratplan.executors.evm.errors import read_revert

        name = read_revert(exc.data, world.errors, world.codes).describe()
        raise MarketError(f"Aave {aave} refuses this market: {exc} ({name})") from None
    world.seconds["deploy_s"] = time.perf_counter() - start
    return world


def _deploy(world: World, market: Market, aave: str) -> None:
    chain = world.chain
    admin = world.admin
    _tokens(world, market)
    _feeds(world, market)
    for venue, terms in market.venues.items():
        if isinstance(terms, LendingVenue):
            rates = market.rates.lending.get(venue)
            world.pools[venue] = deploy_aave(
                chain, aave, venue, terms, {a: world.address_of(a) for a in terms.assets},
                {a: world.feeds[a].address if not exchange_rate_priced(market, venue, a)
                 else _rate_feed(world, market, a).address for a in terms.assets},
                admin, rates.supply if rates else {}, rates.borrow if rates else {})
        elif isinstance(terms, FlashLenderVenue):
            world.vaults[venue] = _vault(world, terms)
        elif isinstance(terms, DexVenue):
            dex = chain.deploy("MockDex", fixed(terms.fee, WEI), admin, sender=admin)
            for token in world.tokens.values():
                token.call("setMinter", dex.address, True, sender=admin)
            chain.set_balance(dex.address, LIQUIDITY)
            world.dexes[venue] = dex
    world.set_prices(market)
    _liquidity(world)
    world.owner = chain.key("wallet owner")
    world.account = chain.deploy("StratplanAccount", world.owner.address, sender=admin)
    _check_oracles(world, market)


def _tokens(world: World, market: Market) -> None:
    chain, admin = world.chain, world.admin
    inputs: dict[str, str] = {}
    for terms in market.venues.values():
        if isinstance(terms, StakingVenue):
            for token_in, token_out in terms.stake.items():
                if inputs.setdefault(token_out, token_in) != token_in:
                    raise MarketError(f"the evm executor stakes {token_out} from one asset; "
                                      f"the market stakes it from {inputs[token_out]} and "
                                      f"{token_in}")
    ordered = sorted(market.prices, key=lambda a: (a in market.assets and a != "WETH", a))
    for asset in ordered:
        if asset == ETH:
            continue
        if asset == "WETH":
            world.tokens[asset] = chain.deploy("MockWETH", admin, sender=admin)
            chain.set_balance(world.tokens[asset].address, LIQUIDITY)  # backs minted WETH
        elif asset in market.assets or asset in inputs:
            source = inputs.get(asset, market.underlying(asset))
            if source != ETH and source not in world.tokens:
                raise MarketError(f"the evm executor cannot make {asset} from {source}")
            token = chain.deploy("MockStaked", asset, world.address_of(source),
                                 fixed(market.rate(asset), WEI), fixed(market.rate(source), WEI),
                                 admin, sender=admin)
            if source != ETH:
                world.tokens[source].call("setMinter", token.address, True, sender=admin)
            else:
                chain.set_balance(token.address, LIQUIDITY)  # pays unstaking as the rate grows
            world.tokens[asset] = token
            world.staked_input[asset] = source
        else:
            world.tokens[asset] = chain.deploy("MockToken", asset, asset, 18, admin, sender=admin)


def _feeds(world: World, market: Market) -> None:
    for asset in market.prices:
        world.feeds[asset] = world.chain.deploy(
            "MockFeed", fixed(market.price(asset), FEED_UNIT), world.admin, sender=world.admin)


def _rate_feed(world: World, market: Market, asset: str) -> Contract:
    key = f"{asset}:rate"
    if key not in world.feeds:
        underlying = market.underlying(asset)
        if asset not in world.staked_input:
            raise MarketError(f"{asset} has no exchange rate on the chain")
        world.feeds[key] = world.chain.deploy("RateFeed", world.feeds[underlying].address,
                                              world.tokens[asset].address, sender=world.admin)
    return world.feeds[key]


def _vault(world: World, terms: FlashLenderVenue) -> Contract:
    chain, admin = world.chain, world.admin
    authorizer = chain.deploy("AllowAll", sender=admin)
    weth = world.tokens["WETH"].address if "WETH" in world.tokens else authorizer.address
    vault = chain.deploy("BalancerVault", authorizer.address, weth, 0, 0, sender=admin)
    fee = terms.flash_fee
    if fee:
        from stratplan.executors.evm.abi import Abi
        from stratplan.executors.evm.chain import Contract as Handle

        collector = Handle(chain, "ProtocolFeesCollector", vault.view("getProtocolFeesCollector"),
                           Abi(_COLLECTOR_ABI))
        collector.call("setFlashLoanFeePercentage", fixed(fee, WEI), sender=admin)
    for asset in terms.assets:
        if asset in world.tokens:
            world.tokens[asset].call("mint", vault.address, LIQUIDITY, sender=admin)
    return vault


def _liquidity(world: World) -> None:
    """A provider supplies LIQUIDITY of every asset to every pool."""
    provider = world.chain.env.generate_address("liquidity provider")
    world.provider_address = str(provider)
    for pool in world.pools.values():
        for asset in pool.a_tokens:
            token = world.tokens[asset]
            token.call("mint", provider, LIQUIDITY, sender=world.admin)
            token.call("approve", pool.pool.address, MAX_UINT, sender=provider)
            pool.pool.call("supply", token.address, LIQUIDITY, provider, 0, sender=provider)


def _check_oracles(world: World, market: Market) -> None:
    """Each pool's oracle answers the model's oracle price to its 8 decimals."""
    for venue, pool in world.pools.items():
        for asset in pool.a_tokens:
            answer = int(pool.oracle.view("getAssetPrice", world.tokens[asset].address))
            model = fixed(oracle_price(market, venue, asset), FEED_UNIT)
            if abs(answer - model) > 1:
                raise MarketError(f"{venue}'s oracle prices {asset} at {answer} (8 decimals), "
                                  f"the model at {model}")
