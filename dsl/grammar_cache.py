"""The Lark parser of plans, built once per process: the grammar shipped in the package,
Lark's options (the tree builder inlined, the fast lexer, the comment callback), and the
analysed grammar kept between processes in the user's cache folder."""

from __future__ import annotations

import hashlib
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

from lark import Lark
from lark import __version__ as lark_version

from stratplan.dsl.builder import BUILDER, COMMENTS
from stratplan.dsl.comments import RawComment
from stratplan.dsl.lexer import FastContextualLexer
from stratplan.dsl.packagedata import data_text
from stratplan.dsl.usercache import cache_folder, partial_path


@cache
def grammar_text() -> str:
    """The grammar shipped inside the installed package."""
    return data_text("stratplan.grammar", "plan.lark")


def _lark_options() -> dict[str, Any]:
    return {
        "parser": "lalr", "lexer": "contextual", "keep_all_tokens": True,
        "maybe_placeholders": True, "transformer": BUILDER,
        "_plugins": {"ContextualLexer": FastContextualLexer},
        "lexer_callbacks": {"COMMENT": lambda tok: COMMENTS.append(
            RawComment(tok.line, tok.column, str(tok.value).rstrip()))},
    }


def grammar_cache_path(grammar: str) -> Path | None:
    """Where the analysed grammar is kept between processes: the user's cache folder
    ($XDG_CACHE_HOME/stratplan, else ~/.cache/stratplan), one file per grammar text, Lark
    release and Python version; None when STRATPLAN_GRAMMAR_CACHE=0."""
    if os.environ.get("STRATPLAN_GRAMMAR_CACHE") == "0":
        return None
    key = hashlib.sha256("\0".join([grammar, lark_version, sys.version]).encode()).hexdigest()
    return cache_folder() / f"grammar-{key[:24]}.lark"


def build_lark(cache_path: Path | None) -> Lark:
    """The parser. Building Lark's LALR tables from the grammar takes about 0.1 s, longer
    than everything else a small lint does, so the built parser is kept in `cache_path`
    (Lark's own cache: the file starts with the SHA-256 of the grammar and Lark's options,
    checked on load; a stale or damaged file is rebuilt). The file is written beside its
    final name and renamed, so a concurrent process never reads half of it; a folder that
    cannot be written only costs the build. The transformer, the lexer plugin and the
    comment callback are not in the file: they are attached on load."""
    text = grammar_text()
    if cache_path is None:
        lark = Lark(text, cache=False, **_lark_options())
    elif cache_path.is_file():
        lark = Lark(text, cache=str(cache_path), **_lark_options())
    else:
        partial: Path | None = partial_path(cache_path)
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            partial = None
        lark = Lark(text, cache=str(partial) if partial else False, **_lark_options())
        if partial is not None:
            try:
                os.replace(partial, cache_path)
            except OSError:  # Lark could not write it: parse without a cache
                partial.unlink(missing_ok=True)
    # Lark's grammar loader leaves rule names as Tokens (a str subclass whose `==` is
    # Python code); the LALR loop looks up the next state by that name after every
    # reduction. Equal plain strings make that lookup C-fast (about 5% of a parse).
    for rule in lark.rules:
        rule.origin.name = str(rule.origin.name)
    return lark


@cache
def plan_lark() -> Lark:
    """The parser `parse` uses: built, or loaded from the cache, on first use."""
    return build_lark(grammar_cache_path(grammar_text()))
