"""The Lark parser of plans, built once per process: the grammar shipped in the package,
Lark's options (the tree builder inlined, the fast lexer, the comment callback), and the
LALR tables shipped beside the grammar (`grammar/plan.tables.json`, see grammar_tables.py).

Nothing is read from the user's cache folder: the tables are package data, used only when
they were built from this grammar by this Lark release, and loaded through Lark's own
deserialiser from plain JSON values. Otherwise (another Lark, an edited grammar, a damaged
file, a Lark whose loader changed) the tables are built in memory, with the same results.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from lark import Lark
from lark import __version__ as lark_version

from stratplan.dsl.builder import BUILDER, COMMENTS
from stratplan.dsl.comments import RawComment
from stratplan.dsl.grammar_tables import TablesError, decode, encode
from stratplan.dsl.lexer import FastContextualLexer
from stratplan.dsl.packagedata import data_text

TABLES = "plan.tables.json"
# Options that Lark attaches on load rather than keeping with the tables (Lark's own
# `_LOAD_ALLOWED_OPTIONS`, the ones it leaves out of a saved parser).
_ATTACHED = ("transformer", "_plugins", "lexer_callbacks", "postlex", "use_bytes", "debug",
             "g_regex_flags", "regex", "propagate_positions", "tree_class")


@cache
def grammar_text() -> str:
    """The grammar shipped inside the installed package."""
    return data_text("stratplan.grammar", "plan.lark")


def _attached_options() -> dict[str, Any]:
    return {
        "transformer": BUILDER,
        "_plugins": {"ContextualLexer": FastContextualLexer},
        "lexer_callbacks": {"COMMENT": lambda tok: COMMENTS.append(
            RawComment(tok.line, tok.column, str(tok.value).rstrip()))},
    }


def _lark_options() -> dict[str, Any]:
    return {"parser": "lalr", "lexer": "contextual", "keep_all_tokens": True,
            "maybe_placeholders": True, **_attached_options()}


def shipped_tables() -> Lark | None:
    """The parser loaded from the shipped tables, or None when they do not fit this grammar
    and Lark release, or cannot be loaded."""
    text = grammar_text()
    try:
        parsed = decode(data_text("stratplan.grammar", TABLES), text,
                                       lark_version)
    except (OSError, TablesError):
        return None
    if parsed is None:
        return None
    try:
        # Lark's loader for a saved parser; `Lark.load` takes only a file. Any change in it
        # (another release) switches to building the tables.
        loaded: Lark = Lark.__new__(Lark)._load(parsed, **_attached_options())
    except Exception:
        return None
    return loaded


def tables_text() -> str:
    """What `grammar/plan.tables.json` holds for this grammar and Lark release (written by
    `tools/grammar_tables.py`)."""
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    lark = Lark(grammar_text(), **_lark_options())
    data, memo = lark.memo_serialize([TerminalDef, Rule])
    data["options"] = {k: v for k, v in data["options"].items() if k not in _ATTACHED}
    return encode(grammar_text(), lark_version, data, memo)


def build_lark(use_tables: bool = True) -> Lark:
    """The parser: from the shipped tables when they fit, else built from the grammar
    (about 0.1 s, longer than everything else a small lint does)."""
    lark = shipped_tables() if use_tables else None
    if lark is None:
        try:
            lark = Lark(grammar_text(), **_lark_options())
        except Exception:  # a Lark without `_plugins`: its own contextual lexer
            options = _lark_options()
            del options["_plugins"]
            lark = Lark(grammar_text(), **options)
    # Lark's grammar loader leaves rule names as Tokens (a str subclass whose `==` is
    # Python code); the LALR loop looks up the next state by that name after every
    # reduction. Equal plain strings make that lookup C-fast (about 5% of a parse).
    for rule in lark.rules:
        rule.origin.name = str(rule.origin.name)
    return lark


@cache
def plan_lark() -> Lark:
    """The parser `parse` uses, built on first use."""
    return build_lark()
