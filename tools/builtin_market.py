#!/usr/bin/env python3
"""Write `executors/builtin_market.py`: the built-in market, validated from
`executors/data/default_market.yaml` and written out as constructor calls.

Why: validating the market builds pydantic's validators for every market model, a tenth
of a small lint's time (issue 17). v2 kept the validated market pickled in the user's cache
folder, where a planted file ran code (issue 22). A module in the package is code the user
installed, not data a cache folder holds. Run this after editing the YAML or the market
models; tests/executors/test_builtin_market.py fails until you do.

    python3 tools/builtin_market.py          # write it
    python3 tools/builtin_market.py --check  # exit 1 when it is stale
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "executors" / "builtin_market.py"

HEADER = '''"""The built-in market (executors/data/default_market.yaml), as validated.

Written by `python3 tools/builtin_market.py`; do not edit. The market is built with
`model_construct` (no validation at start-up); tests/executors/test_builtin_market.py checks
that it is the market validated from the YAML, field by field.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

MARKET_SHA256 = {digest!r}


def build_market(models: Mapping[str, Any]) -> Any:
    """A new copy of the built-in market, from the market models by class name (passed in,
    so that this module imports nothing of the package's)."""
    return {body}
'''


def literal(value: Any, classes: set[str], indent: int) -> str:
    pad = " " * indent
    inner = " " * (indent + 4)
    if isinstance(value, BaseModel):
        name = type(value).__name__
        classes.add(name)
        fields_set = ", ".join(repr(f) for f in sorted(value.model_fields_set))
        fields = [f"{inner}_fields_set={{{fields_set}}}," if fields_set else f"{inner}_fields_set=set(),"]
        for field in type(value).model_fields:
            fields.append(f"{inner}{field}={literal(getattr(value, field), classes, indent + 4)},")
        return f"models[{name!r}].model_construct(\n" + "\n".join(fields) + f"\n{pad})"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{k!r}: {literal(v, classes, indent + 4)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]" if isinstance(value, list) else "()"
        items = [f"{inner}{literal(v, classes, indent + 4)}," for v in value]
        open_, close = ("[", "]") if isinstance(value, list) else ("(", ")")
        return open_ + "\n" + "\n".join(items) + f"\n{pad}{close}"
    if isinstance(value, Decimal):
        return f"Decimal({str(value)!r})"
    if value is None or isinstance(value, bool | int | str):
        return repr(value)
    raise TypeError(f"no literal for {type(value).__name__}")


def source() -> str:
    import hashlib

    from stratplan.executors.market import market_from_text

    text = (ROOT / "executors" / "data" / "default_market.yaml").read_text(encoding="utf-8")
    market = market_from_text(text, "built-in market")
    classes: set[str] = set()
    body = literal(market, classes, 4)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return HEADER.format(digest=digest, body=body)


def main() -> int:
    wanted = source()
    if sys.argv[1:] == ["--check"]:
        current = TARGET.read_text(encoding="utf-8") if TARGET.is_file() else ""
        if current != wanted:
            print(f"{TARGET.relative_to(ROOT)} is stale: run python3 tools/builtin_market.py")
            return 1
        return 0
    TARGET.write_text(wanted, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
