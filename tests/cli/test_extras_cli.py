"""Issue 22, item 6: `pip install stratplan` stays light; a command that needs an extra
that is not installed says which one, in one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
sys.modules[{module!r}] = None  # as if it were not installed
from stratplan.cli import main
sys.exit(main({argv!r}))
"""


@pytest.mark.parametrize(("module", "argv", "extra"), [
    ("matplotlib", ["backtest", "examples/btc_basis_over_time.plan", "--plot", "{out}"], "plot"),
    ("pygls", ["lsp"], "lsp"),
])
def test_a_missing_extra_is_one_line_and_exit_2(tmp_path, module, argv, extra):
    argv = [a.replace("{out}", str(tmp_path / "p.png")) for a in argv]
    run = subprocess.run([sys.executable, "-c", PROBE.format(module=module, argv=argv)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        f"stratplan: error: {'--plot' if extra == 'plot' else 'stratplan lsp'} needs "
        f"{module}, which is not installed: pip install 'stratplan[{extra}]'"]
    assert not (tmp_path / "p.png").exists()


def test_the_core_install_needs_no_extra():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    core = " ".join(config["dependencies"])
    for extra in ("matplotlib", "pygls", "hypothesis", "ray"):
        assert extra not in core
    assert {"plot", "lsp", "testing", "ray"} <= set(config["optional-dependencies"])
