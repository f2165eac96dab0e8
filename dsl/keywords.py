"""The language's reserved words, read from its grammar (`grammar/plan.lark`).

A keyword is a string literal of the grammar that a NAME could also spell (`phase`,
`all`); the parser refuses a NAME spelling one, so keywords are reserved. Whatever needs a
list of them (completion in the language server, the editors' colouring) asks this module
rather than writing its own, so no list can drift from the grammar.

The grammar is compiled in Lark's lexer-only mode: its terminals, its rules in BNF and a
lexer over all of its terminals, without the parse tables (about 40 ms, once per process).
"""

from __future__ import annotations

import re
from functools import cache
from itertools import pairwise

from lark import Lark
from lark.grammar import Rule, Terminal
from lark.lexer import PatternStr

from stratplan.dsl.packagedata import data_text


@cache
def grammar_lexer() -> Lark:
    """The grammar compiled for lexing only: `.lex(text)` yields its tokens (whitespace and
    comments ignored, as the grammar says; `UnexpectedCharacters` where no terminal
    matches), `.terminals` and `.rules` are its definitions."""
    return Lark(data_text("stratplan.grammar", "plan.lark"), parser=None, lexer="basic")


@cache
def keyword_terminals() -> dict[str, str]:
    """{terminal: word} for every keyword, e.g. {"PHASE": "phase", "ALL": "all", ...}."""
    lark = grammar_lexer()
    name = re.compile(lark.get_terminal("NAME").pattern.to_regexp())
    return {t.name: t.pattern.value for t in lark.terminals
            if isinstance(t.pattern, PatternStr) and name.fullmatch(t.pattern.value)}


@cache
def keywords() -> frozenset[str]:
    """Every reserved word."""
    return frozenset(keyword_terminals().values())


def _rules() -> list[Rule]:
    rules: list[Rule] = grammar_lexer().rules
    return rules


@cache
def _first_terminals() -> dict[str, frozenset[str]]:
    """For each rule, the terminals a match of it can begin with (its FIRST set)."""
    rules = _rules()
    first: dict[str, set[str]] = {str(rule.origin.name): set() for rule in rules}
    nullable: set[str] = set()
    changed = True
    while changed:
        changed = False
        for rule in rules:
            origin = str(rule.origin.name)
            found = first[origin]
            size = len(found)
            empty = True
            for symbol in rule.expansion:
                if isinstance(symbol, Terminal):
                    found.add(symbol.name)
                    empty = False
                    break
                found |= first.get(symbol.name, set())
                if symbol.name not in nullable:
                    empty = False
                    break
            if empty and origin not in nullable:
                nullable.add(origin)
                changed = True
            changed |= len(found) != size
    return {origin: frozenset(found) for origin, found in first.items()}


def starters(rule: str) -> frozenset[str]:
    """The keywords a `rule` of the grammar can begin with: `starters("statement")` is
    every word that starts a statement (`transfer`, ..., `atomic`, `repeat`, `assert`)."""
    words = keyword_terminals()
    return frozenset(words[t] for t in _first_terminals()[rule] if t in words)


@cache
def words_before_names() -> frozenset[str]:
    """The keywords a NAME directly follows somewhere in the grammar (`phase NAME`,
    `from NAME`, `as NAME`, ...): after one of them a word is a name (or a venue)."""
    words = keyword_terminals()
    return frozenset(words[before.name]
                     for rule in _rules()
                     for before, after in pairwise(rule.expansion)
                     if before.name in words and after.name == "NAME")
