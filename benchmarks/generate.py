"""Realistic plans of N instructions, and the same instructions as Python calls and YAML.

A unit of the plan is a funding transfer, a spot buy and its perp hedge, an atomic
flash-loan leverage block (six operations) and a repeat of 26 small transfers (so a
million instructions fit in the 16 MiB file limit). Every plan lints
clean on the built-in market, so `lint` pays for the dry run too.
"""

from __future__ import annotations

UNIT = """\
  transfer 1_000 USDT from wallet to {cex}
  spot buy 0.001 BTC/USDT on {cex}
  perp sell 0.001 BTC/USDT on {cex}
  atomic lever_{n} via instadapp {{
    flash borrow 0.5 WETH from balancer
    unwrap all WETH
    stake 1 ETH on etherfi -> weETH
    supply all weETH to aave
    borrow 0.5 WETH from aave
    flash repay all WETH to balancer
  }}
  repeat 26 {{
    transfer 10 USDT from wallet to {cex}
  }}
"""
REPEAT = 26
UNIT_INSTRUCTIONS = 3 + 6 + REPEAT
UNITS_PER_PHASE = 60
CEXES = ("binance", "bybit", "okx")


def plan_text(n: int) -> str:
    """A plan with about `n` instructions after unrolling (a whole number of units)."""
    units = max(1, round(n / UNIT_INSTRUCTIONS))
    out = [f'plan bench_{n} "generated benchmark plan"\n',
           "holdings {\n  wallet: 1_000_000_000_000 USDT, 10_000_000 ETH\n}\n"]
    for start in range(0, units, UNITS_PER_PHASE):
        out.append(f"phase p{start // UNITS_PER_PHASE} {{\n")
        for unit in range(start, min(units, start + UNITS_PER_PHASE)):
            out.append(UNIT.format(cex=CEXES[unit % 3], n=unit))
        out.append("}\n")
    return "".join(out)


def instruction_count(n: int) -> int:
    """Unrolled instructions in `plan_text(n)`."""
    return max(1, round(n / UNIT_INSTRUCTIONS)) * UNIT_INSTRUCTIONS


PY_UNIT = """\
transfer(amount=1000, token="USDT", source="wallet", target="{cex}")
spot(side="buy", amount=0.001, pair="BTC/USDT", venue="{cex}")
perp(side="sell", amount=0.001, pair="BTC/USDT", venue="{cex}")
flash_borrow(amount=0.5, token="WETH", venue="balancer", group="lever_{n}")
unwrap(amount=ALL, token="WETH", group="lever_{n}")
stake(amount=1, token="ETH", venue="etherfi", out="weETH", group="lever_{n}")
supply(amount=ALL, token="weETH", venue="aave", group="lever_{n}")
borrow(amount=0.5, token="WETH", venue="aave", group="lever_{n}")
flash_repay(amount=ALL, token="WETH", venue="balancer", group="lever_{n}")
"""
PY_TRANSFER = 'transfer(amount=10, token="USDT", source="wallet", target="{cex}")\n'
PY_REPEAT = ('for _ in range(26):\n'
             '    transfer(amount=10, token="USDT", source="wallet", target="{cex}")\n')


def python_source(n: int, *, unrolled: bool = False) -> str:
    """The same instructions as Python calls (for `ast.parse`): a repeat as a `for` loop,
    the same structure as the plan, or `unrolled` as one call per executed instruction."""
    units = max(1, round(n / UNIT_INSTRUCTIONS))
    out = []
    for unit in range(units):
        cex = CEXES[unit % 3]
        out.append(PY_UNIT.format(cex=cex, n=unit))
        if unrolled:
            out.append(PY_TRANSFER.format(cex=cex) * REPEAT)
        else:
            out.append(PY_REPEAT.format(cex=cex))
    return "".join(out)


# --- the flat shape (issue 17): no repeats, one small phase per unit ----------------------

FLAT_UNIT = """\
phase p{n} {{
  transfer 1_000 USDT from wallet to {cex}
  spot buy 0.001 BTC/USDT on {cex}
  spot sell 0.0009 BTC/USDT on {cex}
  atomic lever_{n} via instadapp {{
    flash borrow 0.5 WETH from balancer
    flash repay all WETH to balancer
  }}
}}
"""
FLAT_UNIT_INSTRUCTIONS = 5

PY_FLAT_UNIT = """\
with phase("p{n}"):
    transfer(amount=1000, token="USDT", source="wallet", target="{cex}")
    spot(side="buy", amount=0.001, pair="BTC/USDT", venue="{cex}")
    spot(side="sell", amount=0.0009, pair="BTC/USDT", venue="{cex}")
    with atomic("lever_{n}", via="instadapp"):
        flash_borrow(amount=0.5, token="WETH", venue="balancer")
        flash_repay(amount=ALL, token="WETH", venue="balancer")
"""


def flat_units(n: int) -> int:
    return max(1, round(n / FLAT_UNIT_INSTRUCTIONS))


def flat_plan_text(n: int) -> str:
    """A plan of about `n` instructions and no repeats: n/5 phases, each a transfer, two
    spot trades and an atomic flash-loan block (the 100k plan is about 4.5 MB)."""
    out = [f'plan flat_{n} "generated flat benchmark plan"\n',
           "holdings {\n  wallet: 1_000_000_000_000 USDT, 10_000_000 ETH\n}\n"]
    out += [FLAT_UNIT.format(n=unit, cex=CEXES[unit % 3]) for unit in range(flat_units(n))]
    return "".join(out)


def flat_instruction_count(n: int) -> int:
    return flat_units(n) * FLAT_UNIT_INSTRUCTIONS


def flat_python_source(n: int) -> str:
    """The same instructions as Python: a `with` block per phase and per atomic block."""
    return "".join(PY_FLAT_UNIT.format(n=unit, cex=CEXES[unit % 3])
                   for unit in range(flat_units(n)))
