"""Issue 22, item 6: the fast parse loop and lexer read Lark internals; a Lark without them
(another release) must not stop the tool: parsing falls back to Lark's own loop, with the
same results. Simulated by removing the internals before stratplan is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, sys
from pathlib import Path
if sys.argv[1] == "stripped":
    # What another Lark release looks like to stratplan: the modules without the names
    # (Lark's own code keeps its references, so Lark itself still works).
    import importlib, types
    hidden = {"lark.lexer": {"_create_unless", "UnlessCallback"},
              "lark.parse_tree_builder": {"ExpandSingleChild"},
              "lark.parsers.lalr_analysis": {"Shift"}}
    for name, names in hidden.items():
        real = importlib.import_module(name)
        proxy = types.ModuleType(name)
        proxy.__dict__.update({k: v for k, v in vars(real).items() if k not in names})
        sys.modules[name] = proxy
from stratplan.dsl import lalr, lexer
from stratplan.dsl.grammar import plan_lark
from stratplan.dsl.parser import parse
out = {"fast_loop": lalr.Shift is not None, "fast_lexer": lexer._create_unless is not None}
for path in sorted(Path(sys.argv[2]).glob("*.plan")):
    result = parse(path.read_bytes(), path.name)
    out[path.name] = [result.plan.model_dump(mode="json") if result.plan else None,
                      [d.model_dump(mode="json") for d in result.diagnostics]]
bad = parse("plan p\nphase a {\n  wrap 1 ETH from\n}\n")
out["bad"] = [d.model_dump(mode="json") for d in bad.diagnostics]
print(json.dumps(out, sort_keys=True))
"""


def _probe(mode: str) -> dict[str, object]:
    run = subprocess.run([sys.executable, "-c", PROBE, mode, str(ROOT / "examples")],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    result: dict[str, object] = json.loads(run.stdout)
    return result


def test_a_lark_without_the_internals_parses_the_same():
    normal, stripped = _probe("normal"), _probe("stripped")
    assert (normal.pop("fast_loop"), normal.pop("fast_lexer")) == (True, True)
    assert (stripped.pop("fast_loop"), stripped.pop("fast_lexer")) == (False, False)
    assert stripped == normal
    assert normal["bad"]  # the syntax error is reported, not raised
