"""Hypothesis strategies for the differential suite: lending scenarios on the built-in
market (weETH priced by its exchange rate, the ETH e-mode category, Balancer and Aave flash
loans), as plan text and moves of prices, rates and time."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

COLLATERAL = ("weETH", "WETH", "USDC", "USDT")
BORROWABLE = ("WETH", "USDC", "USDT")
# The LTVs a borrow can meet on the built-in market: weETH's and WETH's own, the stables',
# the ETH e-mode category's. Borrows are drawn around them too, where model and chain are
# most likely to part.
LIMITS = (Decimal("0.725"), Decimal("0.805"), Decimal("0.75"), Decimal("0.93"))
NEAR = (Decimal(0), Decimal("1e-4"), Decimal("-1e-4"), Decimal("1e-6"), Decimal("-1e-6"),
        Decimal("1e-9"), Decimal("-1e-9"), Decimal("1e-12"), Decimal("-1e-12"))

fractions = st.one_of(st.sampled_from([Decimal("0.25"), Decimal("0.5"), Decimal(1)]),
                      st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1), places=3))


@st.composite
def borrow_fraction(draw: Any) -> Decimal:
    """A fraction of the collateral's value to borrow: anywhere, or at an LTV ± a little."""
    if draw(st.booleans()):
        return draw(st.decimals(min_value=Decimal("0.05"), max_value=Decimal("0.99"), places=3))
    return draw(st.sampled_from(LIMITS)) * (1 + draw(st.sampled_from(NEAR)))


def _amount(draw: Any, whole: str, part: str) -> str:
    """`all` (or `max`), or a fraction of a state function's value."""
    if draw(st.integers(0, 3)) == 0:
        return whole
    return f"{draw(fractions)} * {part}"


@st.composite
def statement(draw: Any) -> str:
    """One contract operation as plan text, its amount evaluated when it runs."""
    kind = draw(st.sampled_from(["stake", "wrap", "unwrap", "supply", "supply", "withdraw",
                                 "borrow", "borrow", "repay"]))
    if kind == "stake":
        return f"stake {_amount(draw, 'all', 'balance(wallet, ETH)')} ETH on etherfi -> weETH"
    if kind == "wrap":
        return f"wrap {_amount(draw, 'all', 'balance(wallet, ETH)')} ETH"
    if kind == "unwrap":
        return f"unwrap {_amount(draw, 'all', 'balance(wallet, WETH)')} WETH"
    if kind == "supply":
        asset = draw(st.sampled_from(COLLATERAL))
        return f"supply {_amount(draw, 'all', f'balance(wallet, {asset})')} {asset} to aave"
    if kind == "withdraw":
        asset = draw(st.sampled_from(COLLATERAL))
        return (f"withdraw {_amount(draw, 'all', f'collateral(aave, {asset})')} {asset} "
                "from aave")
    if kind == "repay":
        asset = draw(st.sampled_from(BORROWABLE))
        return f"repay {_amount(draw, 'all', f'debt(aave, {asset})')} {asset} to aave"
    asset = draw(st.sampled_from(BORROWABLE))
    if draw(st.integers(0, 4)) == 0:
        return f"borrow max {asset} from aave"
    base = draw(st.sampled_from(COLLATERAL))
    return (f"borrow {draw(borrow_fraction())} * collateral(aave, {base}) * "
            f"oracle(aave, {base}) / oracle(aave, {asset}) {asset} from aave")


@st.composite
def loop_block(draw: Any) -> str:
    """A flash-loan entry into levered weETH, as one atomic block: borrow `flash` WETH,
    stake it with the wallet's ETH, supply, borrow it back (with the lender's fee)."""
    lender = draw(st.sampled_from(["balancer", "aave"]))
    flash = draw(st.decimals(min_value=Decimal(1), max_value=Decimal(400), places=2))
    fee = Decimal("1.0005") if lender == "aave" else Decimal(1)
    back = draw(st.sampled_from(["exact", "max", "fraction"]))
    if back == "exact":
        borrow = f"borrow {flash * fee} WETH from aave"
    elif back == "max":
        borrow = "borrow max WETH from aave"
    else:
        borrow = (f"borrow {draw(borrow_fraction())} * collateral(aave, weETH) * "
                  "oracle(aave, weETH) / oracle(aave, WETH) WETH from aave")
    return (f"atomic loop via instadapp {{\n  flash borrow {flash} WETH from {lender}\n"
            "  unwrap all WETH\n  stake all ETH on etherfi -> weETH\n"
            f"  supply all weETH to aave\n  {borrow}\n  flash repay all WETH to {lender}\n}}")


@st.composite
def phase(draw: Any) -> tuple[str, str]:
    """One phase: one to three operations, or an atomic block of two to four, or a loop."""
    shape = draw(st.sampled_from(["ops", "ops", "block", "loop"]))
    if shape == "loop":
        return ("phase", draw(loop_block()))
    body = draw(st.lists(statement(), min_size=1, max_size=3 if shape == "ops" else 4))
    if shape == "block":
        inner = "\n  ".join(body)
        return ("phase", f"atomic batch via instadapp {{\n  {inner}\n}}")
    return ("phase", "\n".join(body))


moves = st.one_of(
    st.tuples(st.just("price"), st.decimals(min_value=Decimal("0.5"), max_value=Decimal("1.5"),
                                            places=2)),
    st.tuples(st.just("rate"), st.decimals(min_value=Decimal("0.9"), max_value=Decimal("1.1"),
                                           places=3)),
    st.tuples(st.just("wait"), st.integers(min_value=60, max_value=2 * 365 * 86400)))


@st.composite
def holdings(draw: Any) -> str:
    """Starting balances: ETH always, and sometimes WETH and stablecoins."""
    parts = [f"{draw(st.integers(1, 300))} ETH"]
    if draw(st.booleans()):
        parts.append(f"{draw(st.integers(1, 100))} WETH")
    if draw(st.booleans()):
        parts.append(f"{draw(st.integers(100, 500_000))} USDC")
    return "wallet: " + ", ".join(parts)


scenarios = st.tuples(holdings(), st.lists(st.one_of(phase(), phase(), moves), min_size=1,
                                           max_size=5))
