"""The fast contextual lexer makes exactly the tokens, comments and errors Lark's own does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from lark import Lark, Token
from lark.exceptions import UnexpectedInput

from stratplan.dsl.grammar import grammar_text, plan_lark
from stratplan.dsl.lexer import FastContextualLexer
from stratplan.dsl.strategies import edited_plan_texts, plan_texts

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.plan"))


def _twin(fast: bool) -> tuple[Lark, list[tuple[Any, ...]]]:
    comments: list[tuple[Any, ...]] = []
    plugins = {"ContextualLexer": FastContextualLexer} if fast else {}
    lark = Lark(grammar_text(), parser="lalr", lexer="contextual", keep_all_tokens=True,
                maybe_placeholders=True, _plugins=plugins,
                lexer_callbacks={"COMMENT": lambda tok: comments.append(
                    (str(tok), tok.line, tok.column, tok.start_pos))})
    return lark, comments


STOCK, STOCK_COMMENTS = _twin(fast=False)
FAST, FAST_COMMENTS = _twin(fast=True)


def _token(tok: Token) -> tuple[Any, ...]:
    return (tok.type, str(tok), tok.value, tok.start_pos, tok.line, tok.column, tok.end_line,
            tok.end_column, tok.end_pos)


def _outcome(lark: Lark, comments: list[tuple[Any, ...]], text: str) -> tuple[Any, ...]:
    """Every token with its position, or the error with all it says; and the comments."""
    comments.clear()
    try:
        tree = lark.parse(text)
    except UnexpectedInput as exc:
        token = getattr(exc, "token", None)
        found = sorted(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
        return ("error", type(exc).__name__, exc.line, exc.column, exc.pos_in_stream,
                None if token is None else _token(token), found, list(comments))
    tokens = [_token(t) for t in tree.scan_values(lambda v: isinstance(v, Token))]
    return ("ok", tokens, list(comments))


def _same(text: str) -> tuple[Any, ...]:
    stock = _outcome(STOCK, STOCK_COMMENTS, text)
    assert _outcome(FAST, FAST_COMMENTS, text) == stock
    return stock


def test_parse_uses_the_fast_lexer_and_plain_rule_names():
    lark = plan_lark()
    assert isinstance(lark.parser.lexer, FastContextualLexer)
    assert all(type(rule.origin.name) is str for rule in lark.rules)


def test_the_examples_lex_alike_and_every_state_they_reach_takes_the_fast_path():
    for path in EXAMPLES:
        assert _same(path.read_text(encoding="utf-8"))[0] == "ok", path.name
    lexer = FAST.parser.lexer
    assert isinstance(lexer, FastContextualLexer)
    reached = lexer._scans
    assert len(reached) > 20
    assert all(scan is not None for scan in reached.values())


def test_positions_across_lines_comments_tabs_and_crlf():
    text = ('plan p "a # not a comment"\r\n# first\n\n\tphase a {   # second\n'
            '  transfer  1_000.5 USDT from wallet to binance\n}\n   ')
    outcome = _same(text)
    assert outcome[0] == "ok"
    assert [c[0] for c in outcome[2]] == ["# first", "# second"]


@given(plan_texts())
def test_property_plans_lex_alike(text):
    assert _same(text)[0] == "ok"


@given(edited_plan_texts())
def test_property_edited_plans_lex_or_fail_alike(text):
    _same(text)


@given(st.text(max_size=200))
def test_property_any_text_lexes_or_fails_alike(text):
    _same(text)


def test_lark_tables_it_does_not_understand_leave_lark_s_own_loop_working(monkeypatch):
    def unknown_layout(*args: Any) -> None:
        raise AttributeError("a different Lark release")

    monkeypatch.setattr("stratplan.dsl.lexer._state_scan", unknown_layout)
    lark, comments = _twin(fast=True)
    text = EXAMPLES[0].read_text(encoding="utf-8")
    assert _outcome(lark, comments, text) == _outcome(STOCK, STOCK_COMMENTS, text)
    scans = lark.parser.lexer._scans
    assert scans and all(scan is None for scan in scans.values())


def test_scanner_tables_are_lark_s_own_in_every_parser_state():
    from stratplan.dsl.lexer import scanner_tables

    lexer = FAST.parser.lexer
    assert isinstance(lexer, FastContextualLexer)
    checked = 0
    for state_lexer in {id(x): x for x in lexer.lexers.values()}.values():
        tables = scanner_tables(state_lexer)
        assert tables is not None
        terminals, callbacks = tables
        lark_scanner = state_lexer.scanner  # Lark's own, compiled
        assert [t.name for t in terminals] == [t.name for t in lark_scanner.terminals]
        assert [t.pattern for t in terminals] == [t.pattern for t in lark_scanner.terminals]
        assert callbacks.keys() == state_lexer.callback.keys()
        for name, callback in callbacks.items():
            theirs = state_lexer.callback[name]
            assert type(callback) is type(theirs)
            if hasattr(callback, "scanner"):  # a keyword check: the same keywords in order
                assert [t.name for t in callback.scanner.terminals] == \
                    [t.name for t in theirs.scanner.terminals]
        checked += 1
    assert checked > 20
