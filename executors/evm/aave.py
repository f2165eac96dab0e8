"""One lending venue of the market as a real Aave v3 pool on the local chain.

The deploy follows Aave's own scripts: a PoolAddressesProvider and its ACLManager, the
logic libraries linked into the Pool and PoolConfigurator (behind the provider's proxies),
AaveOracle with one feed per asset, AToken and VariableDebtToken implementations, then each
asset of the venue as a reserve with the market's LTV, liquidation threshold and bonus (in
basis points, as Aave holds them), borrowing where the market says `borrowable`, flash loans
for every asset (as the model lends them), the venue's flash fee as the flash-loan premium,
and each e-mode category with its assets. Interest rates come from `FixedRates`: the APRs of
the market (or of the series), whatever the utilisation. The liquidation protocol fee is
Aave's usual 10% of the bonus: it goes to the treasury and changes nothing for the account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from stratplan.executors.errors import MarketError
from stratplan.executors.evm.abi import ZERO_ADDRESS, encode_args
from stratplan.executors.evm.chain import Chain, Contract
from stratplan.executors.market import LendingVenue

RAY = 10**27
BPS = Decimal(10_000)
LIQUIDATION_PROTOCOL_FEE_BPS = 1000


def bps(value: Decimal, what: str) -> int:
    """A fraction in whole basis points, as Aave stores it; MarketError when it is not."""
    scaled = value * BPS
    if scaled != scaled.to_integral_value():
        raise MarketError(f"the evm executor needs {what} in whole basis points "
                          f"(Aave stores them so); {value.normalize():f} is not")
    return int(scaled)


def ray(apr: Decimal) -> int:
    """An APR as Aave's ray (1e27 = 100%), rounded down."""
    return int(apr * RAY)


@dataclass
class AavePool:
    """A deployed Aave pool: its contracts and the tokens of each reserve."""

    venue: str
    version: str
    pool: Contract
    configurator: Contract
    oracle: Contract
    rates: Contract
    a_tokens: dict[str, Contract] = field(default_factory=dict)
    debt_tokens: dict[str, Contract] = field(default_factory=dict)
    emode_ids: dict[str, int] = field(default_factory=dict)

    def account(self, user: str) -> tuple[int, int, int, int, int, int]:
        """getUserAccountData: collateral, debt, available borrows (base currency, 8
        decimals), liquidation threshold and LTV (bps), health factor (wad)."""
        data = self.pool.view("getUserAccountData", user)
        return (int(data[0]), int(data[1]), int(data[2]), int(data[3]), int(data[4]),
                int(data[5]))

    def emode_of(self, user: str) -> int:
        """The user's e-mode category id (0: none)."""
        return int(self.pool.view("getUserEMode", user))


def deploy_aave(chain: Chain, version: str, venue: str, terms: LendingVenue,
                tokens: Mapping[str, str], feeds: Mapping[str, str], admin: str,
                supply_apr: Mapping[str, Decimal], borrow_apr: Mapping[str, Decimal]) -> AavePool:
    """Deploy and configure the venue's pool; MarketError for terms Aave cannot hold."""
    v36 = version == "v3.6"
    treasury = chain.env.generate_address(f"{venue}-treasury")
    provider = chain.deploy("PoolAddressesProvider", venue, admin, sender=admin)
    provider.call("setACLAdmin", admin, sender=admin)
    acl = chain.deploy("ACLManager", provider.address, sender=admin)
    provider.call("setACLManager", acl.address, sender=admin)
    for role in ("addPoolAdmin", "addRiskAdmin", "addAssetListingAdmin"):
        acl.call(role, admin, sender=admin)
    names = (["BorrowLogic", "LiquidationLogic", "PoolLogic", "SupplyLogic", "ConfiguratorLogic"]
             if v36 else ["BorrowLogic", "BridgeLogic", "EModeLogic", "LiquidationLogic",
                          "PoolLogic", "SupplyLogic", "ConfiguratorLogic"])
    libraries = {name: chain.deploy(name, sender=admin).address for name in names}
    libraries["FlashLoanLogic"] = chain.deploy("FlashLoanLogic", libraries=libraries,
                                               sender=admin).address
    rates = chain.deploy("FixedRates", admin, sender=admin)
    if v36:
        impl = chain.deploy("PoolInstance", provider.address, rates.address,
                            libraries=libraries, sender=admin)
        cfg_impl = chain.deploy("PoolConfiguratorInstance", libraries=libraries, sender=admin)
    else:
        impl = chain.deploy("Pool", provider.address, libraries=libraries, sender=admin)
        cfg_impl = chain.deploy("PoolConfigurator", libraries=libraries, sender=admin)
    provider.call("setPoolImpl", impl.address, sender=admin)
    pool = chain.at(impl.name, provider.view("getPool"))
    provider.call("setPoolConfiguratorImpl", cfg_impl.address, sender=admin)
    configurator = chain.at(cfg_impl.name, provider.view("getPoolConfigurator"))
    rates.call("setConfigurator", configurator.address, sender=admin)

    assets = list(terms.assets)
    oracle = chain.deploy("AaveOracle", provider.address, [tokens[a] for a in assets],
                          [feeds[a] for a in assets], ZERO_ADDRESS, ZERO_ADDRESS, 10**8,
                          sender=admin)
    provider.call("setPriceOracle", oracle.address, sender=admin)
    inputs: list[tuple[object, ...]] = []
    if v36:
        a_impl = chain.deploy("ATokenInstance", pool.address, ZERO_ADDRESS, treasury, sender=admin)
        v_impl = chain.deploy("VariableDebtTokenInstance", pool.address, ZERO_ADDRESS,
                              sender=admin)
        for asset in assets:
            rate_data = encode_args(["uint256", "uint256"], [
                ray(supply_apr.get(asset, Decimal(0))), ray(borrow_apr.get(asset, Decimal(0)))])
            inputs.append((a_impl.address, v_impl.address, tokens[asset], f"a{asset}",
                           f"a{asset}", f"vd{asset}", f"vd{asset}", b"", rate_data))
    else:
        a_impl = chain.deploy("AToken", pool.address, sender=admin)
        s_impl = chain.deploy("StableDebtToken", pool.address, sender=admin)
        v_impl = chain.deploy("VariableDebtToken", pool.address, sender=admin)
        for asset in assets:
            rates.call("setRates", tokens[asset], ray(supply_apr.get(asset, Decimal(0))),
                       ray(borrow_apr.get(asset, Decimal(0))), sender=admin)
            inputs.append((a_impl.address, s_impl.address, v_impl.address, 18, rates.address,
                           tokens[asset], treasury, ZERO_ADDRESS, f"a{asset}", f"a{asset}",
                           f"vd{asset}", f"vd{asset}", f"sd{asset}", f"sd{asset}", b""))
    configurator.call("initReserves", inputs, sender=admin)
    for asset, own in terms.assets.items():
        token = tokens[asset]
        configurator.call("configureReserveAsCollateral", token,
                          bps(own.ltv, f"{venue}'s LTV of {asset}"),
                          bps(own.liquidation_threshold, f"{venue}'s threshold of {asset}"),
                          10_000 + bps(own.liquidation_bonus, f"{venue}'s bonus of {asset}"),
                          sender=admin)
        if own.borrowable:
            configurator.call("setReserveBorrowing", token, True, sender=admin)
        configurator.call("setReserveFlashLoaning", token, True, sender=admin)
        configurator.call("setLiquidationProtocolFee", token, LIQUIDATION_PROTOCOL_FEE_BPS,
                          sender=admin)
    premium = bps(terms.flash_fee or Decimal(0), f"{venue}'s flash fee")
    configurator.call("updateFlashloanPremium" if v36 else "updateFlashloanPremiumTotal",
                      premium, sender=admin)
    deployed = AavePool(venue, version, pool, configurator, oracle, rates)
    _emode(deployed, terms, tokens, admin, v36)
    for asset in assets:
        if v36:
            a_token = pool.view("getReserveAToken", tokens[asset])
            debt_token = pool.view("getReserveVariableDebtToken", tokens[asset])
        else:
            data = pool.view("getReserveData", tokens[asset])
            a_token, debt_token = data[8], data[10]
        deployed.a_tokens[asset] = chain.at(a_impl.name, a_token)
        deployed.debt_tokens[asset] = chain.at(v_impl.name, debt_token)
    return deployed


def _emode(deployed: AavePool, terms: LendingVenue, tokens: Mapping[str, str], admin: str,
           v36: bool) -> None:
    configurator = deployed.configurator
    seen: dict[str, str] = {}
    for index, (name, category) in enumerate(terms.emode.items(), start=1):
        if index > 255:
            raise MarketError(f"{deployed.venue}: Aave holds at most 255 e-mode categories")
        deployed.emode_ids[name] = index
        numbers = (bps(category.ltv, f"e-mode {name}'s LTV"),
                   bps(category.liquidation_threshold, f"e-mode {name}'s threshold"),
                   10_000 + bps(category.liquidation_bonus, f"e-mode {name}'s bonus"))
        if v36:
            configurator.call("setEModeCategory", index, *numbers, name, sender=admin)
        else:
            configurator.call("setEModeCategory", index, *numbers, ZERO_ADDRESS, name,
                              sender=admin)
        for asset in category.assets:
            if v36:
                configurator.call("setAssetCollateralInEMode", tokens[asset], index, True,
                                  sender=admin)
                if terms.assets[asset].borrowable:
                    configurator.call("setAssetBorrowableInEMode", tokens[asset], index, True,
                                      sender=admin)
            else:
                if asset in seen:
                    raise MarketError(f"{deployed.venue}: Aave v3.0 puts an asset in one e-mode "
                                      f"category only; {asset} is in {seen[asset]} and {name}")
                seen[asset] = name
                configurator.call("setAssetEModeCategory", tokens[asset], index, sender=admin)


def set_rates(deployed: AavePool, token: str, supply: Decimal, borrow: Decimal,
              admin: str) -> None:
    """Change a reserve's APRs from now on (interest so far accrues at the old ones)."""
    if deployed.version == "v3.6":
        data = encode_args(["uint256", "uint256"], [ray(supply), ray(borrow)])
        deployed.configurator.call("setReserveInterestRateData", token, data, sender=admin)
    else:
        deployed.rates.call("setRates", token, ray(supply), ray(borrow), sender=admin)
