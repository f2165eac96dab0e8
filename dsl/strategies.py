"""Hypothesis strategies for stratplan: plans, sound plans, instructions, markets, plan text.

Use them to fuzz your own executors and tools::

    from hypothesis import given
    from dsl.strategies import valid_plans

    @given(valid_plans())
    def test_my_tool(plan): ...

`plans()` gives any syntactically valid plan model; `valid_plans()` gives plans that lint
clean on the market by construction (balances, gas, flash loans, health and margin are
budgeted while the plan is drawn, not filtered afterwards). `markets()` and `valid_plans()` import the market model lazily, inside the strategy: the one
place `dsl` reaches into `executors`, for test support only (the issue places these
strategies here). Spans in generated models are placeholders; compare plans with `dsl.models.without_spans`. Strategy builders are cached:
hypothesis validates a strategy when first drawn from, and recursive ones are costly.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import Any

from hypothesis import strategies as st

from dsl.formatter import format_plan
from dsl.models import (
    AllAmount,
    AnyExpr,
    Assert,
    AssetArg,
    AtomicBlock,
    BinOp,
    BoolOp,
    Call,
    CEXTradeInstruction,
    Compare,
    HoldingAmount,
    HoldingEntry,
    Holdings,
    Let,
    MarketRef,
    MaxAmount,
    NameRef,
    Neg,
    Not,
    Number,
    Phase,
    Plan,
    Repeat,
    Setting,
    SmartContractInstruction,
    WalletTransferInstruction,
)
from dsl.parser import KEYWORDS, number_value
from dsl.spans import Span

SPAN = Span(line=1, column=1, end_line=1, end_column=1)
_ASSETS = ["ETH", "WETH", "weETH", "USDT", "USDC", "BTC", "aWeETH", "stETH", "X1"]
_FUNCTIONS = ["balance", "collateral", "debt", "position", "price", "health", "exposure"]
_OPS = ["stake", "unstake", "supply", "withdraw", "borrow", "repay", "swap", "wrap",
        "unwrap", "flash_borrow", "flash_repay"]

# --- syntax: any valid plan ----------------------------------------------------------------

names = st.from_regex(r"[a-z_][a-z0-9_]{0,11}", fullmatch=True).filter(
    lambda n: n not in KEYWORDS)
assets = st.sampled_from(_ASSETS) | st.from_regex(r"[a-z]{0,3}[A-Z][A-Za-z0-9]{0,5}",
                                                  fullmatch=True)
_comment_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
comments = _comment_text.map(lambda t: ("# " + t).rstrip())
_strings = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
                   max_size=30)


@st.composite
def number_texts(draw: Any, suffixes: tuple[str, ...] = ("", "", "", "%", "bps")) -> str:
    """The text of a number literal: 40000, 40_000, 0.59, 1.5e3, 93%, 30bps."""
    whole = draw(st.integers(0, 10**9))
    text = str(whole)
    if whole >= 1000 and draw(st.booleans()):
        text = f"{whole:_}"
    if draw(st.booleans()):
        text += "." + str(draw(st.integers(0, 10**6)))
    if draw(st.integers(0, 9)) == 0:
        text += f"e{draw(st.integers(-5, 5))}"
    return text + draw(st.sampled_from(suffixes))


@cache
def numbers(suffixes: tuple[str, ...] = ("", "", "", "%", "bps")) -> st.SearchStrategy[Number]:
    """Number literals whose value matches their text."""
    return number_texts(suffixes).map(
        lambda text: Number(value=number_value(text), text=text, span=SPAN))


def _calls(args: st.SearchStrategy[Any]) -> st.SearchStrategy[Call]:
    venue = names.map(lambda n: NameRef(name=n, span=SPAN))
    asset = assets.map(lambda a: AssetArg(symbol=a, span=SPAN))
    arg = st.one_of(venue, asset, args)
    return st.builds(lambda f, a: Call(func=f, args=tuple(a), span=SPAN),
                     st.sampled_from(_FUNCTIONS) | names, st.lists(arg, max_size=3))


@cache
def expressions(max_leaves: int = 8) -> st.SearchStrategy[AnyExpr]:
    """Arithmetic expressions: numbers, names, calls, unary minus, + - * /."""
    leaves = st.one_of(numbers(), names.map(lambda n: NameRef(name=n, span=SPAN)))

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            children.map(lambda c: Neg(operand=c, span=SPAN)),
            st.builds(lambda op, a, b: BinOp(op=op, left=a, right=b, span=SPAN),
                      st.sampled_from(["+", "-", "*", "/"]), children, children),
            _calls(children),
        )
    return st.recursive(leaves, extend, max_leaves=max_leaves)


@cache
def conditions(max_leaves: int = 6) -> st.SearchStrategy[AnyExpr]:
    """Conditions: comparisons joined by and/or/not."""
    compare = st.builds(lambda op, a, b: Compare(op=op, left=a, right=b, span=SPAN),
                        st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
                        expressions(4), expressions(4))

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            children.map(lambda c: Not(operand=c, span=SPAN)),
            st.builds(lambda op, a, b: BoolOp(op=op, left=a, right=b, span=SPAN),
                      st.sampled_from(["and", "or"]), children, children),
        )
    return st.recursive(compare, extend, max_leaves=max_leaves)


_LEADING = st.lists(comments, max_size=2).map(tuple)
_TRAILING = st.none() | comments


def _commented(draw: Any) -> dict[str, Any]:
    return {"leading": draw(_LEADING), "trailing": draw(_TRAILING)}


@cache
def _amount_strategy() -> st.SearchStrategy[Any]:
    return st.one_of(expressions(4), st.just(AllAmount(span=SPAN)), st.just(MaxAmount(span=SPAN)))


def _amounts(draw: Any) -> Any:
    return draw(_amount_strategy())


@st.composite
def instructions(draw: Any) -> Any:
    """Any instruction of the three families (syntactically valid, maybe unsound)."""
    family = draw(st.sampled_from(["wallet_transfer", "cex_trade", "contract"]))
    common = _commented(draw) | {"span": SPAN, "amount": _amounts(draw)}
    if family == "wallet_transfer":
        return WalletTransferInstruction(token=draw(assets), source_venue=draw(names),
                                         target_venue=draw(names), **common)
    if family == "cex_trade":
        market = draw(st.sampled_from(["spot", "perp"]))
        return CEXTradeInstruction(
            market=market, side=draw(st.sampled_from(["buy", "sell"])), base=draw(assets),
            quote=draw(assets), venue=draw(names),
            limit=draw(st.none() | expressions(3)) if market == "spot" else None,
            leverage=draw(st.none() | numbers(("x", ""))) if market == "perp" else None,
            **common)
    op = draw(st.sampled_from(_OPS))
    token_out = draw(assets) if op in ("stake", "unstake", "swap") else None
    venue = None if op in ("wrap", "unwrap") else draw(names)
    slippage = draw(st.none() | expressions(3)) if op == "swap" else None
    return SmartContractInstruction(operation=op, token_in=draw(assets), token_out=token_out,
                                    venue=venue, slippage=slippage, **common)


def _block_extras(draw: Any) -> dict[str, Any]:
    return _commented(draw) | {"end_comments": draw(_LEADING)}


@st.composite
def statements(draw: Any, depth: int = 0) -> Any:
    """A phase statement: instruction, atomic block, repeat or assert."""
    kinds = ["instruction", "instruction", "instruction", "assert"]
    if depth < 2:
        kinds += ["atomic", "repeat"]
    kind = draw(st.sampled_from(kinds))
    if kind == "instruction":
        return draw(instructions())
    if kind == "assert":
        return Assert(condition=draw(conditions(4)), message=draw(st.none() | _strings),
                      span=SPAN, **_commented(draw))
    body = tuple(draw(st.lists(statements(depth + 1), max_size=3)))
    if kind == "atomic":
        return AtomicBlock(name=draw(names), via=draw(st.none() | names), body=body, span=SPAN,
                           **_block_extras(draw))
    return Repeat(count=draw(expressions(3)), var=draw(st.none() | names), body=body,
                  span=SPAN, **_block_extras(draw))


@st.composite
def plans(draw: Any) -> Plan:
    """Any syntactically valid plan: what `parse(format_plan(plan))` must give back."""
    holdings = None
    if draw(st.booleans()):
        entries = tuple(
            HoldingEntry(venue=draw(names), span=SPAN, **_commented(draw), amounts=tuple(
                HoldingAmount(amount=draw(numbers(("",))), asset=draw(assets), span=SPAN)
                for _ in range(draw(st.integers(1, 3)))))
            for _ in range(draw(st.integers(0, 3))))
        holdings = Holdings(entries=entries, span=SPAN, **_block_extras(draw))
    phases = tuple(
        Phase(name=draw(names), after=tuple(draw(st.lists(names, max_size=2))),
              body=tuple(draw(st.lists(statements(), max_size=4))), span=SPAN,
              **_block_extras(draw))
        for _ in range(draw(st.integers(1, 3))))
    return Plan(
        name=draw(names), description=draw(st.none() | _strings),
        market=draw(st.none() | _strings.map(lambda p: MarketRef(path=p, span=SPAN))),
        holdings=holdings,
        lets=tuple(Let(name=draw(names), value=draw(expressions(4)), span=SPAN,
                       **_commented(draw)) for _ in range(draw(st.integers(0, 3)))),
        sets=tuple(Setting(name=draw(names), value=draw(expressions(3)), span=SPAN,
                           **_commented(draw)) for _ in range(draw(st.integers(0, 2)))),
        phases=phases, span=SPAN, end_comments=tuple(draw(st.lists(comments, max_size=2))),
        **_commented(draw))


@st.composite
def plan_texts(draw: Any, plan_strategy: st.SearchStrategy[Plan] | None = None) -> str:
    """Plan source text: a formatted plan with odd spacing (extra blanks, tabs, indents)."""
    text = format_plan(draw(plan_strategy if plan_strategy is not None else plans()))
    lines = []
    for line in text.splitlines():
        indent = draw(st.sampled_from(["", "", "  ", "\t", "      "]))
        lines.append(indent + line.strip() + draw(st.sampled_from(["", "", " ", "\t"])))
        if draw(st.integers(0, 5)) == 0:
            lines.append("")
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


# --- markets ---------------------------------------------------------------------------------


@st.composite
def markets(draw: Any) -> Any:
    """Market snapshots shaped like the default one, with other prices, fees and terms."""
    from executors.market import Market, default_market

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
        body.append(CEXTradeInstruction(market="perp", side="sell", amount=_num(btc), base="BTC",
                                        quote="USDT", venue=cex, span=SPAN))
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


@st.composite
def valid_plans(draw: Any, market: Any = None) -> Plan:
    """Plans that lint clean on `market` (default: the built-in one), by construction."""
    from executors.market import default_market

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
    return Plan(name="generated", description="generated by dsl.strategies.valid_plans",
                holdings=holdings, phases=tuple(phases), span=SPAN)


def _hypothesis_setup_hook() -> None:
    """Registered under the `hypothesis` entry point: `st.from_type(Plan)` draws plans()."""
    st.register_type_strategy(Plan, plans())
