"""Issue 22, item 6: without an optional dependency, what needs it says which extra to
install, in one line, instead of a traceback of ImportErrors."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
sys.modules["hypothesis"] = None  # as if it were not installed
try:
    import {module}
except ImportError as exc:
    print(type(exc).__name__, exc)
"""


@pytest.mark.parametrize("module", ["stratplan.dsl.strategies",
                                    "stratplan.interpreter.testing",
                                    "stratplan.interpreter.testing.strategies"])
def test_the_testing_helpers_without_hypothesis_name_the_extra(module):
    run = subprocess.run([sys.executable, "-c", PROBE.format(module=module)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("MissingExtra ")
    assert "pip install 'stratplan[testing]'" in run.stdout


def test_require_names_the_extra():
    from stratplan.dsl.extras import MissingExtra, require

    assert require("json", "none", "x").dumps([]) == "[]"
    with pytest.raises(MissingExtra, match=r"needs no_such_module_.*stratplan\[plot\]"):
        require("no_such_module_xyz", "plot", "--plot")
