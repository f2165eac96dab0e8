"""The language server's tokens: the grammar's lexer, going on where the text does not lex."""

from __future__ import annotations

from importlib import resources

from lark import Lark
from lsprotocol import types

from stratplan.dsl.keywords import keyword_terminals, keywords, starters, words_before_names
from stratplan.dsl.lexer import FastContextualLexer
from stratplan.dsl.parser import grammar_text, parse
from stratplan.executors.market import default_market
from stratplan.lsp.analysis import market_of_text
from stratplan.lsp.completion import VENUE_WORDS, completions
from stratplan.lsp.symbols import definition, outline
from stratplan.lsp.tokens import BAD, COMMENT, OPEN_STRING, code_at, line_tokens, tokens, word_at
from tests.conftest import CONFORMANCE, EXAMPLES


def _parsers_tokens(lark: Lark, text: str) -> list[tuple[str, str, int, int]]:
    """The tokens the parser's own lexer (dsl/lexer.py, contextual) hands to the parser."""
    return [(t.type, str(t), t.line or 0, t.column or 0)
            for t in lark.parse_interactive(text).iter_parse() if t.type != "$END"]


def test_on_plans_that_parse_the_tokens_are_the_parsers():
    lark = Lark(grammar_text(), parser="lalr", lexer="contextual",
                _plugins={"ContextualLexer": FastContextualLexer})
    words = keyword_terminals()
    plans = [p for p in [*sorted(EXAMPLES.glob("*.plan")), *sorted(CONFORMANCE.glob("*.plan"))]
             if parse(p.read_text(encoding="utf-8")).ok]
    assert len(plans) >= 10
    for path in plans:
        text = path.read_text(encoding="utf-8")
        ours = [t for t in tokens(text) if t.kind != COMMENT]
        theirs = _parsers_tokens(lark, text)
        assert [(t.text, t.line, t.column) for t in ours] == \
            [(text, line, column) for _, text, line, column in theirs], path.name
        # Same terminals, but for a keyword where the parser wants a NAME (`phase spot`).
        assert all(t.kind == kind or (kind == "NAME" and t.kind in words)
                   for t, (kind, *_) in zip(ours, theirs, strict=True)), path.name


def test_lexing_goes_on_past_what_no_terminal_matches():
    text = 'plan t "unclosed # not a comment\nphase p { supply 0.5weETH é to aave } # SP400\n'
    found = [(t.kind, t.text) for t in tokens(text)]
    assert found == [
        ("PLAN", "plan"), ("NAME", "t"), (OPEN_STRING, '"unclosed # not a comment'),
        ("PHASE", "phase"), ("NAME", "p"), ("LBRACE", "{"), ("SUPPLY", "supply"),
        (BAD, "0.5weETH"), (BAD, "é"), ("TO", "to"), ("NAME", "aave"), ("RBRACE", "}"),
        (COMMENT, "# SP400")]
    assert [t.column for t in tokens(text)][-3:] == [32, 37, 39]
    assert word_at(text, 2, 12) is not None and word_at(text, 2, 12).text == "supply"
    assert word_at(text, 2, 20) is None  # inside `0.5weETH`, which is no word
    assert code_at(text, 2, 44) == "SP400" and code_at(text, 2, 38) is None


def test_a_line_of_noise_is_lexed_in_bounded_steps():
    found = line_tokens("é " * 5000 + "phase", 1)
    assert len(found) <= 256 and found[-1].kind == BAD and found[-1].text.endswith("phase")


def test_outline_and_definition_go_on_after_a_syntax_error():
    text = ("plan t\nphase a {\n  supply 1 ETH é to\n  wrap 0.5weETH\n}\n"
            "phase b after a {\n  wrap 1 ETH\n}\nphase c after b {\n")
    assert [(s.kind, s.name) for s in outline(text).walk()] == [
        ("phase", "a"), ("phase", "b"), ("phase", "c")]
    target = definition(text, 9, 15)  # `after b`
    assert target is not None and (target.line, target.column) == (6, 7)


def test_market_of_text_reads_use_market_from_text_that_does_not_parse(tmp_path):
    market = resources.files("stratplan.executors").joinpath(
        "data/default_market.yaml").read_text(encoding="utf-8")
    (tmp_path / "m.yaml").write_text(market.replace("okx:", "kraken:"), encoding="utf-8")
    broken = "plan t\n  use market\n  \"m.yaml\"\nphase p {\n  spot buy\n"
    assert "kraken" in market_of_text(broken, tmp_path).venues
    for ignored in ('plan t\n# use market "m.yaml"\n', 'plan t use market "m.yaml"\n',
                    'plan t\nuse market "m.yaml\n', 'plan t\nuse market "../m.yaml"\n'):
        assert market_of_text(ignored, tmp_path).venues == default_market().venues, ignored


def _labels(text: str, line: int, column: int) -> set[str]:
    return {item.label for item in completions(text, line, column, None)}


def test_completion_reads_the_token_before_the_cursor():
    venues = set(default_market().venues)
    line = "  transfer 1 ETH from wallet to "
    text = f"plan t\nphase a {{\n{line}\n}}\nphase b after a, \n"
    assert _labels(text, 3, len(line) + 1) == venues
    assert _labels(text.replace(line, line + "bin"), 3, len(line) + 4) == venues
    assert _labels(text.replace(line, line + " # to"), 3, len(line) + 6) == venues
    assert _labels(text, 5, 18) == {"a"}  # phase b is no phase until its `{`
    everything = _labels(text, 3, 3)
    assert keywords() <= everything and {"ETH", "BTC/USDT", "health", "binance"} <= everything
    keyword_items = [i.label for i in completions(text, 3, 3, None)
                     if i.kind == types.CompletionItemKind.Keyword]
    assert keyword_items == sorted(keywords())


def test_the_lists_of_words_come_from_the_grammar():
    assert words_before_names() == {"plan", "phase", "trigger", "atomic", "let", "set", "as",
                                    "after", "via", "on", "from", "to"}
    assert VENUE_WORDS <= words_before_names()
    assert starters("statement") == {
        "transfer", "spot", "perp", "stake", "unstake", "supply", "withdraw", "borrow",
        "repay", "swap", "wrap", "unwrap", "flash", "atomic", "repeat", "assert"}
    assert starters("start") == {"plan"}
    assert {"series", "trigger", "every", "when", "cooldown", "all", "max"} <= keywords()
