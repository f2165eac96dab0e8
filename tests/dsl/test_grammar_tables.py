"""Issues 17 and 22: the parser loaded from the LALR tables shipped in the package
(grammar/plan.tables.json, plain JSON) parses exactly as a freshly built one, and tables that
do not fit, or do not decode, only cost the build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lark import __version__ as lark_version

from stratplan.dsl import grammar as grammar_module
from stratplan.dsl import grammar_tables
from stratplan.dsl import parser as parser_module
from stratplan.dsl.grammar import build_lark, grammar_text, shipped_tables
from stratplan.dsl.parser import parse
from stratplan.dsl.strategies import plan_texts

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.plan"))


@pytest.fixture(scope="module")
def twins():
    """A parser built from the grammar, and one loaded from the shipped tables."""
    shipped = shipped_tables()
    if _tables_lark() == lark_version:
        assert shipped is not None, "grammar/plan.tables.json is stale: run tools/grammar_tables.py"
    else:  # CI's run against the newest Lark: the tables are not used, the build is
        assert shipped is None
    return build_lark(use_tables=False), build_lark()


def _tables_lark() -> str:
    """The Lark release the shipped tables were built by."""
    top = json.loads(grammar_module.data_text("stratplan.grammar", grammar_module.TABLES))
    return str(dict(top["d"])["lark"])


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


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"d": [["format", 1]]}',
                                  '{"d": 5}', '{"x": 1, "y": 2}', '{"d": [[[1], 2]]}'])
def test_tables_that_do_not_decode_only_cost_the_build(monkeypatch, text):
    real = grammar_module.data_text
    monkeypatch.setattr(grammar_module, "data_text", lambda package, name: text
                        if name == grammar_module.TABLES else real(package, name))
    assert shipped_tables() is None
    assert _outcome(build_lark(), "plan p\nphase a { wrap 1 ETH }\n")[0] is not None


def test_tables_of_another_grammar_or_lark_are_not_used():
    shipped = grammar_module.data_text("stratplan.grammar", grammar_module.TABLES)
    built_by = _tables_lark()
    assert grammar_tables.decode(shipped, grammar_text(), built_by) is not None
    assert grammar_tables.decode(shipped, grammar_text() + " ", built_by) is None
    assert grammar_tables.decode(shipped, grammar_text(), built_by + ".post9") is None


def test_the_tables_are_plain_json_that_decodes_to_plain_values():
    shipped = grammar_module.data_text("stratplan.grammar", grammar_module.TABLES)
    decoded = grammar_tables.decode(shipped, grammar_text(), _tables_lark())
    assert decoded is not None

    def plain(value: object) -> bool:
        if isinstance(value, dict):
            return all(plain(k) and plain(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, str | int | bool)

    assert plain(decoded)


def test_a_lark_whose_loader_changed_only_costs_the_build(monkeypatch):
    from lark import Lark

    def broken(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise AttributeError("_load is gone")

    monkeypatch.setattr(Lark, "_load", broken)
    assert shipped_tables() is None
    assert _outcome(build_lark(), "plan p\nphase a { wrap 1 ETH }\n")[0] is not None
