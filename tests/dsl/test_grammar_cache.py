"""Issue 17: the parser loaded from the grammar cache parses exactly as a freshly built one."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratplan.dsl import parser as parser_module
from stratplan.dsl.grammar_cache import build_lark, grammar_cache_path, grammar_text
from stratplan.dsl.parser import parse
from stratplan.dsl.strategies import plan_texts

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.plan"))


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """A parser built from the grammar, and one loaded from a cache file."""
    path = tmp_path_factory.mktemp("cache") / "grammar.lark"
    fresh = build_lark(None)
    build_lark(path)  # builds and writes the file
    assert path.is_file()
    return fresh, build_lark(path)  # loads it


def _outcome(lark, text):
    """Everything parse says: the plan (models, spans, comments), diagnostics, noqa."""
    saved = parser_module.plan_lark
    parser_module.plan_lark = lambda: lark  # type: ignore[assignment]
    try:
        result = parse(text)
    finally:
        parser_module.plan_lark = saved
    return result.plan, result.diagnostics, result.noqa


def _same(twins, text):
    fresh, cached = twins
    assert _outcome(cached, text) == _outcome(fresh, text)


def test_examples_parse_the_same(twins):
    assert twins[1].parser.lexer.__class__.__name__ == "FastContextualLexer"
    for path in EXAMPLES:
        _same(twins, path.read_text(encoding="utf-8"))


@given(plan_texts())
@settings(max_examples=60, deadline=None)
def test_generated_plans_parse_the_same(twins, text):
    _same(twins, text)


@given(plan_texts(), st.data())
@settings(max_examples=100, deadline=None)
def test_edited_plans_parse_and_fail_the_same(twins, text, data):
    """Random deletions and insertions: about half are syntax errors, compared with their
    messages and positions."""
    at = data.draw(st.integers(0, len(text)))
    cut = data.draw(st.integers(0, 5))
    insert = data.draw(st.sampled_from(["", "{", "}", "(", ")", ",", "x", "1", "\"", "#", "\n"]))
    _same(twins, text[:at] + insert + text[at + cut:])


def test_a_damaged_cache_file_is_rebuilt(tmp_path):
    path = tmp_path / "grammar.lark"
    path.write_bytes(b"not a pickle\n\x00\x01")
    lark = build_lark(path)
    assert _outcome(lark, "plan p\nphase a { wrap 1 ETH }\n")[0] is not None


def test_a_folder_that_cannot_be_written_only_costs_the_build(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    lark = build_lark(blocker / "sub" / "grammar.lark")  # its parent is a file
    assert _outcome(lark, "plan p\nphase a { wrap 1 ETH }\n")[0] is not None
    assert not list(tmp_path.glob(".*"))


def test_the_cache_file_is_named_by_the_grammar_and_can_be_turned_off(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = grammar_cache_path(grammar_text())
    assert path is not None and path.parent == tmp_path / "stratplan"
    assert grammar_cache_path(grammar_text() + " ") != path
    monkeypatch.setenv("STRATPLAN_GRAMMAR_CACHE", "0")
    assert grammar_cache_path(grammar_text()) is None
