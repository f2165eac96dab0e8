"""The parser's LALR tables, shipped inside the package as JSON (`grammar/plan.tables.json`).

Building Lark's tables from the grammar takes about 0.1 s, more than everything else a small
lint does. v2 kept them in the user's cache folder through Lark's own cache, a format that
runs code when it is loaded: a planted file there ran code (issue 22). Now the tables are data built into the
package (`python3 tools/grammar_tables.py` writes them; a test checks they equal a fresh
build), encoded in JSON that can only ever decode to lists, dicts, strings, numbers and
booleans. They are used only when they were built from this exact grammar text by this Lark
release; otherwise the tables are built in memory, as Lark does without a cache.

JSON has no tuples and no integer keys, and Lark's serialised tables have both, so every
object is a tag: `{"t": [...]}` a tuple, `{"d": [[key, value], ...]}` a dict; lists,
strings, integers, booleans and null are plain.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

FORMAT = 1


class TablesError(ValueError):
    """The shipped tables do not decode (a damaged or hand-edited file)."""


def grammar_digest(grammar: str) -> str:
    """The SHA-256 of the grammar text the tables were built from."""
    return hashlib.sha256(grammar.encode("utf-8")).hexdigest()


def _tagged(value: Any) -> Any:
    if isinstance(value, tuple):
        return {"t": [_tagged(v) for v in value]}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    if isinstance(value, dict):
        return {"d": [[_tagged(k), _tagged(v)] for k, v in value.items()]}
    if value is None or isinstance(value, (str, bool, int)):
        return value
    raise TablesError(f"a value of type {type(value).__name__} has no JSON form")


def _untag(obj: dict[str, Any]) -> Any:
    """json.loads' hook: every JSON object in the file is a tag (its inner values are
    already decoded). It runs once per object, thousands of times at every start: keep it
    lean. The file is package data, as trusted as the code beside it; the checks here only
    turn a damaged file into TablesError."""
    if len(obj) == 1:
        items = obj.get("t")
        if items.__class__ is list:
            return tuple(items)
        pairs = obj.get("d")
        if pairs.__class__ is list:
            try:
                return dict(pairs)
            except (TypeError, ValueError):  # not pairs, or a key that cannot be one
                pass
    raise TablesError("an object that is not a tagged value")


def encode(grammar: str, lark_version: str, data: dict[str, Any], memo: dict[Any, Any]) -> str:
    """The file's text: what the tables were built from, then Lark's serialised parser."""
    top = {"format": FORMAT, "grammar_sha256": grammar_digest(grammar), "lark": lark_version,
           "data": data, "memo": memo}
    return json.dumps(_tagged(top), separators=(",", ":")) + "\n"


def decode(text: str, grammar: str, lark_version: str) -> dict[str, Any] | None:
    """Lark's serialised parser (`{"data": ..., "memo": ...}`), or None when the file was
    built from another grammar or Lark release; TablesError when it does not decode."""
    try:
        top = json.loads(text, object_hook=_untag)
    except TablesError:
        raise
    except ValueError as exc:
        raise TablesError(f"not JSON: {exc}") from None
    if not isinstance(top, dict):
        raise TablesError("not a tables file")
    if (top.get("format"), top.get("grammar_sha256"), top.get("lark")) != (
            FORMAT, grammar_digest(grammar), lark_version):
        return None
    data, memo = top.get("data"), top.get("memo")
    if not isinstance(data, dict) or not isinstance(memo, dict):
        raise TablesError("no parser data in the tables")
    return {"data": data, "memo": memo}
