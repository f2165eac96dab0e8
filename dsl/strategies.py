"""Hypothesis strategies for the language: plans, instructions, expressions, plan text.

Venue-free, like the rest of `stratplan.dsl`: `plans()` gives any syntactically valid plan
model (what `parse(format_plan(plan))` must give back). The strategies that need a market
(`markets()`, `valid_plans()`: plans that lint clean by construction) are in
`stratplan.interpreter.testing.strategies`, above the executors. Spans in generated models are
placeholders; compare plans with `stratplan.dsl.models.without_spans`. Strategy builders
are cached: hypothesis validates a strategy when first drawn from, and recursive ones are
costly.
"""

from __future__ import annotations

from functools import cache
from typing import Any

try:
    from hypothesis import strategies as st
except ImportError:  # an extra: say which, not a traceback
    from stratplan.dsl.extras import missing

    raise missing("hypothesis", "testing", "the Hypothesis strategies (stratplan.dsl.strategies)") from None

from stratplan.dsl.formatter import format_plan
from stratplan.dsl.keywords import keywords
from stratplan.dsl.models import (
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
from stratplan.dsl.numbers import number_value
from stratplan.dsl.spans import Span

SPAN = Span(line=1, column=1, end_line=1, end_column=1)
_ASSETS = ["ETH", "WETH", "weETH", "USDT", "USDC", "BTC", "aWeETH", "stETH", "X1"]
_FUNCTIONS = ["balance", "collateral", "debt", "position", "price", "health", "exposure"]
_OPS = ["stake", "unstake", "supply", "withdraw", "borrow", "repay", "swap", "wrap",
        "unwrap", "flash_borrow", "flash_repay"]

# --- syntax: any valid plan ----------------------------------------------------------------

names = st.from_regex(r"[a-z_][a-z0-9_]{0,11}", fullmatch=True).filter(
    lambda n: n not in keywords())
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


# Pieces a random edit inserts: characters and words of the language, odd characters (a
# Latin letter, a Bengali and a fullwidth digit, a no-break space) and block openers.
EDIT_PIECES = (*" \t\n\r#\"{}()/,:=<>-+*%x_.0123456789aAzZ", "é", "\u00a0", "\u09ea",
               "\uff11", "\\", "->", "\r\n", "__", "bps", "all", "max", "flash", "phase",
               "atomic a {", "repeat 2 {", "not ", " and ", "1e999999999")


@st.composite
def edited_plan_texts(draw: Any) -> str:
    """Plan text with one to four random edits (a deletion of up to three characters and
    an insertion at a random place): about half of them are syntax errors."""
    text = draw(plan_texts())
    edits = draw(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 3),
                                    st.sampled_from(EDIT_PIECES)), min_size=1, max_size=4))
    for where, delete, insert in edits:
        where %= len(text) + 1
        text = text[:where] + insert + text[where + delete:]
    return text
