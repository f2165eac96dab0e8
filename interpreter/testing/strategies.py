"""Hypothesis strategies that need a market: `markets()` and `valid_plans()`.

They sit above `executors` (the language package `stratplan.dsl` stays venue-free); the
venue-free strategies (`plans()`, `instructions()`, `plan_texts()`) are in
`stratplan.dsl.strategies` and re-exported here, so one import gives all of them::

    from hypothesis import given
    from stratplan.interpreter.testing.strategies import valid_plans

    @given(valid_plans())
    def test_my_tool(plan): ...

`valid_plans()` gives plans that lint clean on the market by construction (balances, gas,
flash loans, health and margin are budgeted while the plan is drawn, not filtered
afterwards).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

try:
    from hypothesis import strategies as st
except ImportError:  # an extra: say which, not a traceback
    from stratplan.dsl.extras import missing

    raise missing("hypothesis", "testing", "the Hypothesis strategies (stratplan.interpreter.testing)") from None

from stratplan.dsl.models import (
    AllAmount,
    Assert,
    AssetArg,
    AtomicBlock,
    BoolOp,
    Call,
    CEXTradeInstruction,
    Compare,
    Duration,
    HoldingAmount,
    HoldingEntry,
    Holdings,
    NameRef,
    Neg,
    Number,
    Phase,
    Plan,
    Repeat,
    SmartContractInstruction,
    Trigger,
    WalletTransferInstruction,
)
from stratplan.dsl.spans import Span
from stratplan.dsl.strategies import (
    expressions,
    instructions,
    numbers,
    plan_texts,
    plans,
    statements,
)
from stratplan.executors.market import Market, default_market
from stratplan.interpreter.series.read import Series, iso, parse_time, read_series

SPAN = Span(line=1, column=1, end_line=1, end_column=1)

__all__ = ["expressions", "instructions", "markets", "numbers", "plan_texts", "plans",
           "series", "series_texts", "statements", "triggers", "valid_plans"]


# --- markets ---------------------------------------------------------------------------------


@st.composite
def markets(draw: Any) -> Any:
    """Market snapshots shaped like the default one, with other prices, fees and terms."""
    base = default_market().model_dump(mode="python")
    eth = Decimal(draw(st.integers(1000, 6000)))
    base["prices"].update({"ETH": eth, "WETH": eth, "BTC": Decimal(draw(st.integers(20_000, 120_000)))})
    rate = Decimal(draw(st.integers(100, 120))) / 100
    base["prices"]["weETH"] = eth * rate
    base["assets"]["weETH"]["rate"] = rate
    base["gas"]["price_gwei"] = Decimal(draw(st.integers(1, 100)))
    for cex in ("binance", "bybit", "okx"):
        base["venues"][cex]["taker_fee"] = Decimal(draw(st.integers(0, 10))) / 10_000
    base["venues"]["uniswap"]["fee"] = Decimal(draw(st.integers(0, 30))) / 10_000
    base["venues"]["balancer"]["flash_fee"] = Decimal(draw(st.integers(0, 9))) / 10_000
    return Market.model_validate(base)


# --- sound plans --------------------------------------------------------------------------


def _num(value: Decimal) -> Number:
    text = format(value.normalize(), "f")
    return Number(value=Decimal(text), text=text, span=SPAN)


class _Budget:
    """What the generator may still spend, kept well inside what the plan really has."""

    def __init__(self, market: Any, usdt: Decimal, eth: Decimal) -> None:
        self.market = market
        self.wallet_usdt = usdt
        self.wallet_eth = eth
        self.cex_usdt: dict[str, Decimal] = {}
        self.cex_btc: dict[str, Decimal] = {}
        self.gas_price = market.gas.price_gwei

    def gas(self, *ops: str) -> Decimal:
        units = self.market.gas.base_tx + sum(self.market.gas.ops.get(op, 0) for op in ops)
        return Decimal(units) * self.gas_price / Decimal(10**9)

    def pay_gas(self, *ops: str) -> bool:
        cost = self.gas(*ops) * 2  # double: the generator never plans on the last wei
        if self.wallet_eth < cost:
            return False
        self.wallet_eth -= cost
        return True


def _venues_of(market: Any, kind: str) -> list[str]:
    return sorted(n for n, v in market.venues.items() if v.kind == kind)


@st.composite
def _funding_phase(draw: Any, budget: _Budget, name: str) -> Phase | None:
    cexes = [c for c in _venues_of(budget.market, "cex")
             if "USDT" in budget.market.venues[c].assets]
    body: list[Any] = []
    chosen = draw(st.lists(st.sampled_from(cexes), min_size=min(2, len(cexes)), max_size=3,
                           unique=True)) if cexes else []
    for cex in chosen:
        amount = (budget.wallet_usdt * Decimal(draw(st.integers(5, 30))) / 100).quantize(Decimal(1))
        if amount < 10 or not budget.pay_gas("transfer"):
            continue
        budget.wallet_usdt -= amount
        budget.cex_usdt[cex] = budget.cex_usdt.get(cex, Decimal(0)) + amount
        body.append(WalletTransferInstruction(amount=_num(amount), token="USDT",
                                              source_venue="wallet", target_venue=cex,
                                              span=SPAN))
    return Phase(name=name, body=tuple(body), span=SPAN) if body else None


@st.composite
def _trading_phase(draw: Any, budget: _Budget, name: str) -> Phase | None:
    market = budget.market
    body: list[Any] = []
    for cex, usdt in sorted(budget.cex_usdt.items()):
        terms = market.venues[cex]
        if "BTC/USDT" not in terms.markets.spot or "BTC/USDT" not in terms.markets.perp:
            continue
        price = market.price("BTC") / market.price("USDT")
        # Spend at most 40% on spot and keep the rest for perp margin at default leverage.
        btc = (usdt * Decimal("0.4") / price).quantize(Decimal("0.0001"))
        if btc <= 0:
            continue
        spend = btc * price * (1 + terms.taker_fee)
        margin = btc * price / terms.default_leverage + btc * price * terms.taker_fee
        if spend + margin > usdt * Decimal("0.95"):
            continue
        budget.cex_usdt[cex] = usdt - spend - margin
        body.append(CEXTradeInstruction(market="spot", side="buy", amount=_num(btc), base="BTC",
                                        quote="USDT", venue=cex, span=SPAN))
        # Hedge what the buy delivers: a `received` spot fee comes out of the BTC bought.
        held = btc * (1 - terms.taker_fee) if terms.spot_fee == "received" else btc
        body.append(CEXTradeInstruction(market="perp", side="sell", amount=_num(held),
                                        base="BTC", quote="USDT", venue=cex, span=SPAN))
    if not body:
        return None
    if draw(st.booleans()):
        condition = BoolOp(op="and", span=SPAN,
                           left=Compare(op="<=", left=Call(func="exposure", span=SPAN, args=(
                               AssetArg(symbol="BTC", span=SPAN),)), right=_num(Decimal("0.001")),
                               span=SPAN),
                           right=Compare(op=">=", left=Call(func="exposure", span=SPAN, args=(
                               AssetArg(symbol="BTC", span=SPAN),)), right=Neg(
                               operand=_num(Decimal("0.001")), span=SPAN), span=SPAN))
        body.append(Assert(condition=condition, message="delta-neutral", span=SPAN))
    return Phase(name=name, body=tuple(body), span=SPAN)


@st.composite
def _leverage_phase(draw: Any, budget: _Budget, name: str) -> Phase | None:
    market = budget.market
    lenders = [v for v in _venues_of(market, "flash_lender")
               if "WETH" in market.venues[v].assets]
    lending = [v for v in _venues_of(market, "lending")
               if "weETH" in market.venues[v].assets
               and market.venues[v].assets.get("WETH") is not None
               and market.venues[v].assets["WETH"].borrowable]
    staking = [v for v in _venues_of(market, "staking")
               if market.venues[v].stake.get("ETH") == "weETH"]
    executors = _venues_of(market, "executor")
    if not (lenders and lending and staking):
        return None
    lender, aave, etherfi = draw(st.sampled_from(lenders)), draw(st.sampled_from(lending)), \
        draw(st.sampled_from(staking))
    ops = ("flash_borrow", "unwrap", "stake", "supply", "borrow", "flash_repay")
    gas = budget.gas(*ops) * 2
    own = (budget.wallet_eth - gas) * Decimal(draw(st.integers(20, 60))) / 100
    if own <= Decimal("0.01"):
        return None
    # HF = 0.95 * staked / flash for weETH at its rate; keep it above 1.15 with fees.
    terms = market.venues[aave].assets
    ratio = min(terms["weETH"].ltv, terms["weETH"].liquidation_threshold / Decimal("1.15"))
    k = ratio * Decimal(draw(st.integers(30, 90))) / 100
    flash = (own * k / (1 - k)).quantize(Decimal("0.001"))
    if flash <= 0:
        return None
    fee = market.flash_fee(lender, "WETH") or Decimal(0)
    stake = own + flash
    budget.wallet_eth -= own + gas
    body: list[Any] = [
        SmartContractInstruction(operation="flash_borrow", amount=_num(flash), token_in="WETH",
                                 venue=lender, span=SPAN),
        SmartContractInstruction(operation="unwrap", amount=AllAmount(span=SPAN),
                                 token_in="WETH", span=SPAN),
        SmartContractInstruction(operation="stake", amount=_num(stake.quantize(Decimal("0.001"))),
                                 token_in="ETH", token_out="weETH", venue=etherfi, span=SPAN),
        SmartContractInstruction(operation="supply", amount=AllAmount(span=SPAN),
                                 token_in="weETH", venue=aave, span=SPAN),
        SmartContractInstruction(operation="borrow",
                                 amount=_num((flash * (1 + fee)).quantize(Decimal("0.000001"))
                                             + Decimal("0.000001")),
                                 token_in="WETH", venue=aave, span=SPAN),
    ]
    body.append(SmartContractInstruction(operation="flash_repay", amount=AllAmount(span=SPAN),
                                         token_in="WETH", venue=lender, span=SPAN))
    block = AtomicBlock(name="leverage", via=draw(st.sampled_from(executors)) if executors else None,
                        body=tuple(body), span=SPAN)
    check = Assert(condition=Compare(op=">=", left=Call(func="health", args=(
        NameRef(name=aave, span=SPAN),), span=SPAN), right=_num(Decimal("1.1")), span=SPAN),
        span=SPAN)
    return Phase(name=name, body=(block, check), span=SPAN)


@st.composite
def _swap_phase(draw: Any, budget: _Budget, name: str) -> Phase | None:
    dexes = _venues_of(budget.market, "dex")
    if not dexes or budget.wallet_usdt < 100:
        return None
    amount = (budget.wallet_usdt * Decimal(draw(st.integers(1, 10))) / 100).quantize(Decimal(1))
    if amount <= 0 or not budget.pay_gas("swap", "wrap"):
        return None
    budget.wallet_usdt -= amount
    dex = draw(st.sampled_from(dexes))
    swap = SmartContractInstruction(operation="swap", amount=_num(amount), token_in="USDT",
                                    token_out="ETH", venue=dex, span=SPAN,
                                    slippage=_num(Decimal("0.003")))
    wrap = SmartContractInstruction(operation="wrap", amount=_num(Decimal("0.001")),
                                    token_in="ETH", span=SPAN)
    return Phase(name=name, body=(AtomicBlock(name="rotate", body=(swap, wrap), span=SPAN),),
                 span=SPAN)


@st.composite
def _repeat_phase(draw: Any, budget: _Budget, name: str) -> Phase | None:
    cexes = [c for c in _venues_of(budget.market, "cex")
             if "USDT" in budget.market.venues[c].assets]
    if not cexes:
        return None
    count = draw(st.integers(2, 6))
    each = (budget.wallet_usdt * Decimal("0.02")).quantize(Decimal(1))
    if each < 1:
        return None
    for _ in range(count):
        if not budget.pay_gas("transfer"):
            return None
    budget.wallet_usdt -= each * count
    cex = draw(st.sampled_from(cexes))
    budget.cex_usdt[cex] = budget.cex_usdt.get(cex, Decimal(0)) + each * count
    transfer = WalletTransferInstruction(amount=_num(each), token="USDT", source_venue="wallet",
                                         target_venue=cex, span=SPAN)
    return Phase(name=name, body=(Repeat(count=_num(Decimal(count)), var="i", body=(transfer,),
                                         span=SPAN),), span=SPAN)


_UNITS = {"m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def _duration(value: int, unit: Literal["m", "h", "d", "w"]) -> Duration:
    return Duration(value=Decimal(value), unit=unit, text=f"{value}{unit}", span=SPAN)


def _call(func: str, *args: Any) -> Call:
    return Call(func=func, args=tuple(args), span=SPAN)


@st.composite
def triggers(draw: Any, market: Any = None, prefix: str = "t") -> tuple[Trigger, ...]:
    """One to three triggers whose bodies pass every static rule on `market`: `every` and
    `when` (on price(ETH), with or without a cooldown) with asserts, tiny wraps and, when
    a CEX lists ETH/USDT, a tiny spot buy there (a firing may still fail over a series: an
    empty balance, a failed assert; that is what a backtest reports)."""
    market = market if market is not None else default_market()
    cexes = [c for c in _venues_of(market, "cex")
             if "ETH/USDT" in market.venues[c].markets.spot]
    found: list[Trigger] = []
    for index in range(draw(st.integers(1, 3))):
        name = f"{prefix}{index}"
        kind = draw(st.sampled_from(["assert", "wrap", "buy"] if cexes else ["assert", "wrap"]))
        if kind == "assert":
            body: tuple[Any, ...] = (Assert(condition=Compare(
                op=">", left=_call("price", AssetArg(symbol="ETH", span=SPAN)),
                right=_num(Decimal(draw(st.integers(100, 4000)))), span=SPAN),
                message="ETH fell", span=SPAN),)
        elif kind == "wrap":
            body = (SmartContractInstruction(operation="wrap", amount=_num(Decimal("0.001")),
                                             token_in="ETH", span=SPAN),)
        else:
            body = (CEXTradeInstruction(venue=draw(st.sampled_from(cexes)), market="spot",
                                        base="ETH", quote="USDT", side="buy",
                                        amount=_num(Decimal("0.001")), span=SPAN),)
        if draw(st.booleans()):
            unit = draw(st.sampled_from(sorted(_UNITS)))
            found.append(Trigger(name=name, every=_duration(draw(st.integers(1, 30)), unit),
                                 body=body, span=SPAN))
        else:
            level = _num(Decimal(draw(st.integers(2500, 4300))))
            condition = Compare(op=draw(st.sampled_from(["<", ">"])),
                                left=_call("price", AssetArg(symbol="ETH", span=SPAN)),
                                right=level, span=SPAN)
            cooldown = _duration(draw(st.integers(1, 48)), "h") if draw(st.booleans()) else None
            found.append(Trigger(name=name, when=condition, cooldown=cooldown, body=body,
                                 span=SPAN))
    return tuple(found)


@st.composite
def series_texts(draw: Any, plan: Plan | None = None, market: Any = None,
                 min_rows: int = 2, max_rows: int = 40) -> str:
    """Series CSV text (LANGUAGE.md sections 8 and 9) for a plan's assets, venues and perps:
    prices of ETH, BTC and sometimes weETH (with a depeg), weETH's rate (which a slashing
    may cut by up to 25%), sometimes aave's oracle price of weETH (`oracle.weETH`: a feed
    that lags, or follows a depeg), funding of the CEX perps, Aave's APRs; random walks
    with shocks (a row may move a price by up to ±40%), regular or irregular steps, empty
    (held) cells, and columns sometimes missing (SP503)."""
    market = market if market is not None else default_market()
    rows = draw(st.integers(min_rows, max_rows))
    step = draw(st.sampled_from([60, 3600, 8 * 3600, 86_400]))
    irregular = draw(st.booleans())
    columns = ["price.ETH", "price.BTC"]
    if draw(st.booleans()):
        columns.append("price.weETH")
    if draw(st.booleans()):
        columns.append("rate.weETH")
    if draw(st.integers(0, 2)) == 0:
        columns.append("oracle.weETH")
    cexes = _venues_of(market, "cex")
    for venue in cexes:
        for base in ("BTC", "ETH"):
            if draw(st.integers(0, 3)):
                columns.append(f"funding.{venue}.{base}")
    for venue in _venues_of(market, "lending"):
        for asset in ("weETH", "WETH"):
            if draw(st.integers(0, 3)):
                columns.append(f"supply.{venue}.{asset}")
        for asset in ("WETH", "USDT", "USDC"):
            if draw(st.integers(0, 3)):
                columns.append(f"borrow.{venue}.{asset}")
    del plan  # every plan's assets are among these; the plan is for callers' symmetry
    prices = {"ETH": Decimal(3400), "BTC": Decimal(67800)}
    rate = Decimal("1.05")
    oracle = feed = Decimal(3570)
    time = parse_time("2024-01-01T00:00:00Z")
    lines = ["time," + ",".join(columns)]
    for index in range(rows):
        if index:
            time += (step * draw(st.integers(1, 5)) if irregular else step) * 1000
            for asset in prices:
                move = Decimal(draw(st.integers(-300, 300))) / 10_000
                if draw(st.integers(0, 15)) == 0:
                    move = Decimal(draw(st.integers(-40, 40))) / 100  # a shock
                prices[asset] = max(Decimal(1), (prices[asset] * (1 + move)).quantize(
                    Decimal("0.01")))
            rate = (rate * (1 + Decimal(draw(st.integers(0, 20))) / 1_000_000)).quantize(
                Decimal("0.00000001"))
            if draw(st.integers(0, 20)) == 0:  # a slashing
                rate = (rate * (1 - Decimal(draw(st.integers(1, 25))) / 100)).quantize(
                    Decimal("0.00000001"))
        feed = oracle  # the oracle column shows the previous row's price: a lagging feed
        cells: list[str] = []
        for column in columns:
            kind = column.split(".")[0]
            if index and kind != "funding" and draw(st.integers(0, 6)) == 0:
                cells.append("")  # held
                continue
            if column == "price.weETH":
                depeg = Decimal(draw(st.sampled_from([0, 0, 0, 2, 10, 30]))) / 100
                cells.append(str((prices["ETH"] * rate * (1 - depeg)).quantize(Decimal("0.01"))))
            elif column == "oracle.weETH":
                depeg = Decimal(draw(st.sampled_from([0, 0, 0, 5, 20]))) / 100
                oracle = (prices["ETH"] * rate * (1 - depeg)).quantize(Decimal("0.01"))
                cells.append(str(feed if draw(st.booleans()) else oracle))
            elif kind == "price":
                cells.append(str(prices[column.split(".")[1]]))
            elif kind == "rate":
                cells.append(str(rate))
            elif kind == "funding":
                cells.append(str(Decimal(draw(st.integers(-50, 100))) / 1_000_000)
                             if index and draw(st.booleans()) else "")
            else:
                cells.append(str(Decimal(draw(st.integers(0, 3000))) / 10_000))
        lines.append(iso(time) + ("," + ",".join(cells) if cells else ""))
    return "\n".join(lines) + "\n"


@st.composite
def series(draw: Any, plan: Plan | None = None, market: Any = None, min_rows: int = 2,
           max_rows: int = 40) -> Series:
    """A valid `Series` (see `series_texts`) for `stratplan.interpreter.time.backtest`."""
    text = draw(series_texts(plan, market, min_rows, max_rows))
    return read_series(text.encode(), "generated")


@st.composite
def valid_plans(draw: Any, market: Any = None, triggers: bool = False) -> Plan:
    """Plans that lint clean on `market` (default: the built-in one), by construction.
    With `triggers`, the plan also has one to three triggers (`triggers()`)."""
    market = market if market is not None else default_market()
    usdt = Decimal(draw(st.integers(20, 1000))) * 1000
    eth = Decimal(draw(st.integers(5, 100)))
    budget = _Budget(market, usdt, eth)
    builders = {"funding": _funding_phase, "trading": _trading_phase,
                "leverage": _leverage_phase, "rotate": _swap_phase, "drip": _repeat_phase}
    order = draw(st.lists(st.sampled_from(sorted(builders)), min_size=2, max_size=5))
    if "funding" not in order:
        order.insert(0, "funding")
    if draw(st.integers(0, 2)) > 0 and "leverage" not in order:
        order.insert(draw(st.integers(0, len(order))), "leverage")
    phases: list[Phase] = []
    for index, kind in enumerate(order):
        phase = draw(builders[kind](budget, f"{kind}_{index}"))
        if phase is not None:
            phases.append(phase)
    if len(phases) < 2 or sum(len(p.body) for p in phases) < 4:
        # Keep the promise of non-trivial plans without filtering: hedge what was funded.
        extra = draw(_trading_phase(budget, f"trading_{len(order)}"))
        if extra is not None:
            phases.append(extra)
    if not phases:
        phases.append(Phase(name="noop", body=(Assert(condition=Compare(
            op=">=", left=Call(func="balance", args=(NameRef(name="wallet", span=SPAN),
                                                     AssetArg(symbol="USDT", span=SPAN)),
                               span=SPAN), right=_num(Decimal(0)), span=SPAN), span=SPAN),),
                            span=SPAN))
    holdings = Holdings(entries=(HoldingEntry(venue="wallet", span=SPAN, amounts=(
        HoldingAmount(amount=_num(usdt), asset="USDT", span=SPAN),
        HoldingAmount(amount=_num(eth), asset="ETH", span=SPAN))),), span=SPAN)
    found = draw(_triggers(market)) if triggers else ()
    return Plan(name="generated", description="generated by dsl.strategies.valid_plans",
                holdings=holdings, phases=tuple(phases), triggers=found, span=SPAN)


_triggers = triggers


