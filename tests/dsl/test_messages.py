"""Syntax errors a user can act on (issue 11): lowercase names, a number glued to its
asset, misplaced underscores; and what counts as nesting in an expression."""

from __future__ import annotations

import pytest

from stratplan.dsl import parse
from stratplan.dsl.parser import MAX_EXPRESSION_DEPTH, MAX_EXPRESSION_HEIGHT

PATTERN = "(names match [a-z_][a-z0-9_]*)"


def only(text: str):
    result = parse(text)
    assert result.plan is None
    assert len(result.diagnostics) == 1, result.diagnostics
    return result.diagnostics[0]


def at(text: str, needle: str, occurrence: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the `occurrence`-th `needle` in `text`."""
    offset = -1
    for _ in range(occurrence + 1):
        offset = text.index(needle, offset + 1)
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


# --- names are lowercase ---------------------------------------------------------------------

@pytest.mark.parametrize("text, word, role", [
    ("plan p\nphase Hedge {\n  wrap 1 ETH\n}\n", "Hedge", "phase"),
    ("plan p\nlet ETH_amount = 1\nphase a { wrap 1 ETH }\n", "ETH_amount", "let"),
    ("plan p\nphase hedge_ETH { wrap 1 ETH }\n", "hedge_ETH", "phase"),
    ("plan p\nphase a { atomic Lever via instadapp { wrap 1 ETH } }\n", "Lever", "atomic block"),
    ("plan p\nphase a { wrap 1 ETH }\nphase b after a, Spot { wrap 1 ETH }\n", "Spot", "phase"),
    ("plan p\nphase a { wrap 1 ETH }\nphase b after A { wrap 1 ETH }\n", "A", "phase"),
    ("plan MyPlan\nphase a { wrap 1 ETH }\n", "MyPlan", "plan"),
    ("plan p\nphase a { repeat 2 as I { wrap 1 ETH } }\n", "I", "loop variable"),
    ("plan p\nset Min_health = 1\nphase a { wrap 1 ETH }\n", "Min_health", "option"),
    ("plan p\nphase a { transfer 1 ETH from wallet to Binance }\n", "Binance", "venue"),
    ("plan p\nphase a { transfer 1 ETH from Wallet to binance }\n", "Wallet", "venue"),
    ("plan p\nphase a { spot buy 1 BTC/USDT on OKX }\n", "OKX", "venue"),
    ("plan p\nphase a { atomic b via Instadapp { wrap 1 ETH } }\n", "Instadapp", "venue"),
    ("plan p\nholdings { Wallet: 1 ETH }\nphase a { wrap 1 ETH }\n", "Wallet", "venue"),
    ("plan p\nholdings {\n  wallet: 1 ETH\n  Binance: 5 USDT\n}\nphase a { wrap 1 ETH }\n",
     "Binance", "venue"),
])
def test_a_capitalised_name_says_names_are_lowercase(text, word, role):
    diagnostic = only(text)
    line, column = at(text, word)
    assert diagnostic.code == "SP100"
    assert (diagnostic.span.line, diagnostic.span.column) == (line, column)
    assert (diagnostic.span.end_line, diagnostic.span.end_column) == (line, column + len(word))
    assert diagnostic.message == \
        f"{role} names are lowercase: `{word}` is not a name {PATTERN}"
    assert diagnostic.help == f"write `{word.lower()}`"


def test_the_issue_s_two_examples_word_for_word():
    hedge = only("plan p\nphase Hedge {\n  wrap 1 ETH\n}\n")
    assert (hedge.span.line, hedge.span.column) == (2, 7)
    assert hedge.message == \
        "phase names are lowercase: `Hedge` is not a name (names match [a-z_][a-z0-9_]*)"
    amount = only("plan p\nlet ETH_amount = 1\nphase a { wrap 1 ETH }\n")
    assert (amount.span.line, amount.span.column) == (2, 5)
    assert amount.message == \
        "let names are lowercase: `ETH_amount` is not a name (names match [a-z_][a-z0-9_]*)"


@pytest.mark.parametrize("text, found", [
    ("plan p\nlet x = ETH\nphase a { wrap 1 ETH }\n", '"ETH"'),
    ("plan p\nphase a { transfer 1 ETH USDT from wallet to binance }\n", '"USDT"'),
])
def test_an_asset_where_a_value_belongs_keeps_the_general_message(text, found):
    diagnostic = only(text)
    assert "lowercase" not in diagnostic.message and f"found {found}" in diagnostic.message


# --- a number glued to its asset --------------------------------------------------------------

@pytest.mark.parametrize("text, glued, number, asset", [
    ("plan p\nholdings { wallet: 20ETH }\nphase a { wrap 1 ETH }\n", "20ETH", "20", "ETH"),
    ("plan p\nholdings { wallet: 100 USDT, 0.5weETH }\nphase a { wrap 1 ETH }\n",
     "0.5weETH", "0.5", "weETH"),
    ("plan p\nphase a {\n  transfer 40_000USDT from wallet to binance\n}\n", "40_000USDT",
     "40_000", "USDT"),
    ("plan p\nphase a { supply 1.5e3USDC to aave }\n", "1.5e3USDC", "1.5e3", "USDC"),
])
def test_a_number_glued_to_its_asset_says_a_space_is_missing(text, glued, number, asset):
    diagnostic = only(text)
    line, column = at(text, glued)
    assert diagnostic.code == "SP100"
    assert (diagnostic.span.line, diagnostic.span.column) == (line, column)
    assert diagnostic.span.end_column == column + len(glued)
    assert diagnostic.message == \
        f"a space is missing between the number `{number}` and the asset `{asset}`"
    assert diagnostic.help == f"write `{number} {asset}`"


# --- underscores between digits, one at a time ------------------------------------------------

@pytest.mark.parametrize("literal, bad, width", [
    ("1__0", 1, 2),
    ("10_", 2, 1),
    ("1_000__000", 5, 2),
    ("40_000_", 6, 1),
    ("1_.5", 1, 1),
    ("1._5", 2, 1),
    ("1.5_", 3, 1),
    ("1e1_0", 3, 1),
    ("10__%", 2, 2),
    ("1_e5", 1, 1),
])
def test_a_misplaced_underscore_is_pointed_at(literal, bad, width):
    text = f"plan p\nphase a {{\n  wrap {literal} ETH\n}}\n"
    diagnostic = only(text)
    line, column = at(text, literal)
    assert diagnostic.code == "SP100"
    assert literal[bad] == "_"
    assert (diagnostic.span.line, diagnostic.span.column) == (line, column + bad)
    assert diagnostic.span.end_column == column + bad + width
    assert diagnostic.message == (f"misplaced `_` in the number `{literal}`: underscores go "
                                  "between digits, one at a time")
    assert diagnostic.help == "write 40_000, not 40__000 or 40_000_"


def test_the_issue_s_underscore_examples_by_column():
    assert (only("plan p\nlet x = 1__0\nphase a { wrap 1 ETH }").span.column) == 10
    assert (only("plan p\nlet x = 10_\nphase a { wrap 1 ETH }").span.column) == 11


@pytest.mark.parametrize("literal", ["40_000", "1_000.000_1", "0.5", "1e5", "30bps", "93%"])
def test_well_placed_underscores_and_suffixes_parse(literal):
    assert parse(f"plan p\nlet x = {literal}\nphase a {{ wrap x ETH }}").plan is not None


# --- a chain of one precedence is not nesting --------------------------------------------------

@pytest.mark.parametrize("operator", ["+", "-", "*", "/"])
def test_a_flat_chain_of_101_terms_is_not_deep_nesting(operator):
    chain = f" {operator} ".join(["1"] * 101)
    result = parse(f"plan p\nlet x = {chain}\nphase a {{ wrap x ETH }}\n")
    assert result.plan is not None, result.diagnostics
    assert result.plan.lets[0].value.kind == "binop"


@pytest.mark.parametrize("operator", ["and", "or"])
def test_a_flat_chain_of_101_conditions_is_not_deep_nesting(operator):
    chain = f" {operator} ".join(["1 < 2"] * 101)
    assert parse(f"plan p\nphase a {{ assert {chain} }}\n").plan is not None


def test_mixed_precedence_chains_count_one_level_each():
    chain = " + ".join(["2 * 3 / 4"] * 150) + " - " + " - ".join(["-1"] * 40)
    assert parse(f"plan p\nlet x = {chain}\nphase a {{ wrap x ETH }}\n").plan is not None


@pytest.mark.parametrize("nested", [
    "(" * 101 + "1" + ")" * 101,
    "(" * 100 + "1" + " + 1)" * 100 + " + 1",  # a chain in parentheses is still nesting
    "1 - (" * 100 + "1" + ")" * 100,
    "-" * 101 + "1",
])
def test_real_nesting_beyond_100_levels_is_still_sp110(nested):
    text = f"plan p\nlet x = {nested}\nphase a {{ wrap x ETH }}\n"
    diagnostic = only(text)
    assert diagnostic.code == "SP110"
    assert diagnostic.span.line == 2
    assert diagnostic.message == f"expression nested more than {MAX_EXPRESSION_DEPTH} levels deep"


def test_nesting_of_exactly_100_levels_parses():
    text = "plan p\nlet x = " + "(" * 98 + "1 + 1" + ")" * 98 + "\nphase a { wrap x ETH }\n"
    assert parse(text).plan is not None


def test_a_chain_too_long_for_any_tree_walk_is_sp110():
    longest = " + ".join(["1"] * (MAX_EXPRESSION_HEIGHT + 1))
    assert parse(f"plan p\nlet x = {longest}\nphase a {{ wrap x ETH }}\n").plan is not None
    text = f"plan p\nlet x = {longest} + 1\nphase a {{ wrap x ETH }}\n"
    diagnostic = only(text)
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == ("SP110", 2, 9)
    assert diagnostic.message == \
        f"expression more than {MAX_EXPRESSION_HEIGHT} operations long"
    assert diagnostic.help == "split it with `let` constants"
