#!/usr/bin/env python3
"""Write `grammar/plan.tables.json`: the parser's LALR tables for the grammar and the
installed Lark release, shipped in the package so that no process builds them (dsl/grammar.py).

    python3 tools/grammar_tables.py          # write it (after editing the grammar or
                                             # moving to another Lark release)
    python3 tools/grammar_tables.py --check  # exit 1 when it does not fit the grammar and
                                             # the installed Lark
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "grammar" / "plan.tables.json"


def main() -> int:
    from stratplan.dsl.grammar import shipped_tables, tables_text

    if sys.argv[1:] == ["--check"]:
        # Lark numbers its states in a different order at each build, so the file is
        # checked by what it was built from (the grammar's digest, the Lark release) and
        # by loading it, not by comparing text.
        if shipped_tables() is None:
            print(f"{TARGET.relative_to(ROOT)} is stale: run python3 tools/grammar_tables.py")
            return 1
        return 0
    TARGET.write_text(tables_text(), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
