"""The built-in market (executors/data/default_market.yaml), as validated.

Written by `python3 tools/builtin_market.py`; do not edit. The market is built with
`model_construct` (no validation at start-up); tests/executors/test_builtin_market.py checks
that it is the market validated from the YAML, field by field.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

MARKET_SHA256 = '0f7e1518944e95448297634cab139f8732e3985c16be66fbab3e38823408896c'


def build_market(models: Mapping[str, Any]) -> Any:
    """A new copy of the built-in market, from the market models by class name (passed in,
    so that this module imports nothing of the package's)."""
    return models['Market'].model_construct(
        _fields_set={'assets', 'gas', 'prices', 'rates', 'venues'},
        prices={
            'BTC': Decimal('67800'),
            'ETH': Decimal('3400'),
            'WETH': Decimal('3400'),
            'weETH': Decimal('3570'),
            'USDT': Decimal('1'),
            'USDC': Decimal('1'),
        },
        assets={
            'WETH': models['AssetInfo'].model_construct(
                _fields_set={'rate', 'underlying'},
                underlying='ETH',
                rate=Decimal('1'),
            ),
            'weETH': models['AssetInfo'].model_construct(
                _fields_set={'rate', 'underlying'},
                underlying='ETH',
                rate=Decimal('1.05'),
            ),
        },
        gas=models['Gas'].model_construct(
            _fields_set={'base_tx', 'ops', 'price_gwei'},
            price_gwei=Decimal('20'),
            base_tx=21000,
            ops={
                'transfer': 65000,
                'stake': 90000,
                'unstake': 120000,
                'supply': 180000,
                'withdraw': 200000,
                'borrow': 250000,
                'repay': 150000,
                'swap': 150000,
                'wrap': 45000,
                'unwrap': 35000,
                'flash_borrow': 60000,
                'flash_repay': 30000,
            },
        ),
        venues={
            'wallet': models['WalletVenue'].model_construct(
                _fields_set={'kind'},
                kind='wallet',
            ),
            'binance': models['CexVenue'].model_construct(
                _fields_set={'default_leverage', 'funding_interval', 'kind', 'maintenance_margin', 'markets', 'max_leverage', 'spot_fee', 'taker_fee', 'withdraw_fee'},
                kind='cex',
                taker_fee=Decimal('0.0004'),
                spot_taker_fee=None,
                spot_fee='received',
                max_leverage=Decimal('20'),
                default_leverage=Decimal('3'),
                maintenance_margin=Decimal('0.005'),
                maintenance={},
                funding_interval=Decimal('28800'),
                withdraw_fee={
                    'USDT': Decimal('1'),
                    'USDC': Decimal('1'),
                    'ETH': Decimal('0.0008'),
                    'BTC': Decimal('0.00002'),
                },
                markets=models['CexMarkets'].model_construct(
                    _fields_set={'perp', 'spot'},
                    spot=[
                        'BTC/USDT',
                        'ETH/USDT',
                    ],
                    perp=[
                        'BTC/USDT',
                        'ETH/USDT',
                    ],
                ),
            ),
            'bybit': models['CexVenue'].model_construct(
                _fields_set={'default_leverage', 'funding_interval', 'kind', 'maintenance_margin', 'markets', 'max_leverage', 'spot_fee', 'taker_fee', 'withdraw_fee'},
                kind='cex',
                taker_fee=Decimal('0.0004'),
                spot_taker_fee=None,
                spot_fee='received',
                max_leverage=Decimal('20'),
                default_leverage=Decimal('3'),
                maintenance_margin=Decimal('0.005'),
                maintenance={},
                funding_interval=Decimal('28800'),
                withdraw_fee={
                    'USDT': Decimal('1'),
                    'USDC': Decimal('1'),
                    'ETH': Decimal('0.0008'),
                    'BTC': Decimal('0.00002'),
                },
                markets=models['CexMarkets'].model_construct(
                    _fields_set={'perp', 'spot'},
                    spot=[
                        'BTC/USDT',
                        'ETH/USDT',
                    ],
                    perp=[
                        'BTC/USDT',
                        'ETH/USDT',
                    ],
                ),
            ),
            'okx': models['CexVenue'].model_construct(
                _fields_set={'default_leverage', 'funding_interval', 'kind', 'maintenance_margin', 'markets', 'max_leverage', 'spot_fee', 'taker_fee', 'withdraw_fee'},
                kind='cex',
                taker_fee=Decimal('0.0004'),
                spot_taker_fee=None,
                spot_fee='received',
                max_leverage=Decimal('20'),
                default_leverage=Decimal('3'),
                maintenance_margin=Decimal('0.005'),
                maintenance={},
                funding_interval=Decimal('28800'),
                withdraw_fee={
                    'USDT': Decimal('1'),
                    'USDC': Decimal('1'),
                    'ETH': Decimal('0.0008'),
                    'BTC': Decimal('0.00002'),
                },
                markets=models['CexMarkets'].model_construct(
                    _fields_set={'perp', 'spot'},
                    spot=[
                        'BTC/USDT',
                        'ETH/USDT',
                    ],
                    perp=[
                        'BTC/USDT',
                        'ETH/USDT',
                    ],
                ),
            ),
            'aave': models['LendingVenue'].model_construct(
                _fields_set={'assets', 'emode', 'flash_fee', 'kind'},
                kind='lending',
                flash_fee=Decimal('0.0005'),
                assets={
                    'weETH': models['LendingAsset'].model_construct(
                        _fields_set={'liquidation_bonus', 'liquidation_threshold', 'ltv', 'oracle'},
                        ltv=Decimal('0.725'),
                        liquidation_threshold=Decimal('0.75'),
                        liquidation_bonus=Decimal('0.075'),
                        borrowable=False,
                        oracle='exchange_rate',
                    ),
                    'WETH': models['LendingAsset'].model_construct(
                        _fields_set={'borrowable', 'liquidation_bonus', 'liquidation_threshold', 'ltv'},
                        ltv=Decimal('0.805'),
                        liquidation_threshold=Decimal('0.83'),
                        liquidation_bonus=Decimal('0.05'),
                        borrowable=True,
                        oracle='market',
                    ),
                    'USDT': models['LendingAsset'].model_construct(
                        _fields_set={'borrowable', 'liquidation_bonus', 'liquidation_threshold', 'ltv'},
                        ltv=Decimal('0.75'),
                        liquidation_threshold=Decimal('0.78'),
                        liquidation_bonus=Decimal('0.045'),
                        borrowable=True,
                        oracle='market',
                    ),
                    'USDC': models['LendingAsset'].model_construct(
                        _fields_set={'borrowable', 'liquidation_bonus', 'liquidation_threshold', 'ltv'},
                        ltv=Decimal('0.75'),
                        liquidation_threshold=Decimal('0.78'),
                        liquidation_bonus=Decimal('0.045'),
                        borrowable=True,
                        oracle='market',
                    ),
                },
                emode={
                    'eth': models['EModeCategory'].model_construct(
                        _fields_set={'assets', 'liquidation_bonus', 'liquidation_threshold', 'ltv'},
                        ltv=Decimal('0.93'),
                        liquidation_threshold=Decimal('0.95'),
                        liquidation_bonus=Decimal('0.01'),
                        assets=[
                            'WETH',
                            'weETH',
                        ],
                    ),
                },
                liquidation=models['LiquidationTerms'].model_construct(
                    _fields_set=set(),
                    close_factor=Decimal('0.5'),
                    full_close_below_usd=Decimal('2000'),
                    min_leftover_usd=Decimal('1000'),
                ),
            ),
            'etherfi': models['StakingVenue'].model_construct(
                _fields_set={'kind', 'stake', 'unstake_atomic'},
                kind='staking',
                stake={
                    'ETH': 'weETH',
                },
                unstake_atomic=False,
            ),
            'uniswap': models['DexVenue'].model_construct(
                _fields_set={'fee', 'kind'},
                kind='dex',
                fee=Decimal('0.0005'),
            ),
            'balancer': models['FlashLenderVenue'].model_construct(
                _fields_set={'assets', 'flash_fee', 'kind'},
                kind='flash_lender',
                flash_fee=Decimal('0'),
                assets=[
                    'WETH',
                    'USDT',
                    'USDC',
                ],
            ),
            'instadapp': models['ExecutorVenue'].model_construct(
                _fields_set={'kind'},
                kind='executor',
            ),
        },
        rates=models['Rates'].model_construct(
            _fields_set={'funding', 'lending', 'staking'},
            funding={
                'binance': {
                    'BTC': Decimal('0.0001'),
                    'ETH': Decimal('0.0001'),
                },
                'bybit': {
                    'BTC': Decimal('0.0001'),
                    'ETH': Decimal('0.0001'),
                },
                'okx': {
                    'BTC': Decimal('0.0001'),
                    'ETH': Decimal('0.0001'),
                },
            },
            lending={
                'aave': models['LendingRates'].model_construct(
                    _fields_set={'borrow', 'supply'},
                    supply={
                        'weETH': Decimal('0.0005'),
                        'WETH': Decimal('0.018'),
                        'USDT': Decimal('0.04'),
                        'USDC': Decimal('0.04'),
                    },
                    borrow={
                        'WETH': Decimal('0.025'),
                        'USDT': Decimal('0.055'),
                        'USDC': Decimal('0.055'),
                    },
                ),
            },
            staking={
                'weETH': Decimal('0.03'),
            },
        ),
    )
