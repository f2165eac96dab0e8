"""Completion: what may be typed at a position, from the plan's own market.

The token before the cursor says what comes next: a venue after `on`, `from`, `to` or
`via`; a phase after `after`; anywhere else venues, keywords (every one the grammar
reserves), assets, markets (`BTC/USDT`), state functions, `let` names and phases.
"""

from __future__ import annotations

from lsprotocol import types

from stratplan.dsl.keywords import keywords
from stratplan.executors.market import CexVenue, Market, default_market
from stratplan.interpreter.evaluate import FUNCTION_HELP, FUNCTIONS
from stratplan.interpreter.report import dec
from stratplan.lsp.positions import split_lines
from stratplan.lsp.symbols import outline
from stratplan.lsp.tokens import COMMENT, line_tokens

# The words a venue follows (`supply ... to aave`, `atomic x via instadapp`): the grammar
# has a NAME follow each, and these NAMEs are venues.
VENUE_WORDS = frozenset({"on", "from", "to", "via"})


def completions(text: str, line: int, column: int,
                market: Market | None) -> list[types.CompletionItem]:
    """What may be typed at a position: venues after `on`/`from`/`to`/`via`, phases after
    `after`, otherwise keywords, venues, assets, markets, functions and names."""
    market = market or default_market()
    previous, words = _before(text, line, column)
    found = outline(text)
    venues = [types.CompletionItem(label=name, kind=types.CompletionItemKind.Module,
                                   detail=f"venue ({terms.kind})")
              for name, terms in sorted(market.venues.items())]
    if previous in VENUE_WORDS:
        return venues
    phases = [types.CompletionItem(label=s.name, kind=types.CompletionItemKind.Class,
                                   detail=s.kind) for s in found.walk()
              if s.kind == "phase" and s.name]
    if previous == "after" or (previous == "," and "after" in words):
        return phases
    items = list(venues)
    items += [types.CompletionItem(label=word, kind=types.CompletionItemKind.Keyword,
                                   detail="keyword")
              for word in sorted(keywords())]
    items += [types.CompletionItem(label=asset, kind=types.CompletionItemKind.Constant,
                                   detail=f"asset, ${dec(price)}")
              for asset, price in sorted(market.prices.items())]
    pairs: dict[str, list[str]] = {}
    for name, terms in sorted(market.venues.items()):
        if isinstance(terms, CexVenue):
            for kind, listed in (("spot", terms.markets.spot), ("perp", terms.markets.perp)):
                for pair in listed:
                    pairs.setdefault(pair, []).append(f"{kind} on {name}")
    items += [types.CompletionItem(label=pair, kind=types.CompletionItemKind.Value,
                                   detail="market: " + ", ".join(where))
              for pair, where in sorted(pairs.items())]
    items += [types.CompletionItem(label=name, kind=types.CompletionItemKind.Function,
                                   detail=f"{name}({', '.join(args)})",
                                   documentation=FUNCTION_HELP.get(name),
                                   insert_text=f"{name}(")
              for name, args in sorted(FUNCTIONS.items())]
    items += [types.CompletionItem(label=s.name, kind=types.CompletionItemKind.Constant,
                                   detail="let") for s in found.walk()
              if s.kind == "let" and s.name]
    return items + phases


def _before(text: str, line: int, column: int) -> tuple[str, list[str]]:
    """The text of the token before the word being typed at a position ("" if none), and
    the texts of the line's tokens before the position (comments left out)."""
    lines = split_lines(text)
    if not 1 <= line <= len(lines):
        return "", []
    before = [t for t in line_tokens(lines[line - 1], line)
              if t.column < column and t.kind != COMMENT]
    if not before:
        return "", []
    last = before[-1]
    char = lines[line - 1][column - 2]
    typing = last.end_column >= column and (char.isalnum() or char in "_.")
    if typing:
        previous = before[-2].text if len(before) >= 2 else ""
    else:
        previous = last.text
    return previous, [t.text for t in before]
