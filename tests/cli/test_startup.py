"""Issue 17: a command loads only what it uses (subprocesses: a fresh interpreter each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("networkx", "rich", "matplotlib", "ray", "pygls", "lsprotocol")


def _loaded(code: str) -> set[str]:
    """The top-level packages and stratplan modules loaded after running `code`."""
    probe = (f"{code}\nimport json, sys\n"
             "print(json.dumps(sorted(m for m in sys.modules if '.' not in m "
             "or m.startswith('stratplan.'))))")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, check=True)
    return set(json.loads(run.stdout.splitlines()[-1]))


def test_importing_the_cli_loads_no_heavy_dependency():
    loaded = _loaded("import stratplan.cli")
    assert not loaded & set(HEAVY)
    assert not {"lark", "yaml", "stratplan.dsl.parser", "stratplan.dsl.models"} & loaded


def test_version_builds_the_argument_parser_but_loads_no_parser_models_or_market():
    loaded = _loaded("import contextlib, io\nfrom stratplan.cli import main\n"
                     "with contextlib.redirect_stdout(io.StringIO()):\n"
                     "    try:\n        main(['--version'])\n"
                     "    except SystemExit:\n        pass")
    assert "stratplan.cli" in loaded
    assert not loaded & {*HEAVY, "lark", "pydantic", "yaml"}
    assert not {m for m in loaded if m.startswith(("stratplan.dsl.", "stratplan.executors."))}
    # `backtest` and `sweep` register their options without loading their engines.
    assert not loaded & {"stratplan.interpreter.sweep.run", "stratplan.interpreter.series.read",
                         "hashlib", "tempfile", "datetime"}


def test_lint_loads_no_graph_library_plotting_server_or_backtest():
    plan = ROOT / "examples" / "btc_basis.plan"
    loaded = _loaded("import contextlib, io\nfrom stratplan.cli import main\n"
                     "with contextlib.redirect_stdout(io.StringIO()):\n"
                     f"    assert main(['lint', '--format', 'json', {str(plan)!r}]) == 0")
    assert "stratplan.interpreter.lint.pipeline" in loaded
    assert not loaded & {"networkx", "matplotlib", "ray", "pygls", "rich"}
    assert "stratplan.interpreter.time.backtest" not in loaded
    assert not loaded & {"stratplan.interpreter.sweep.run", "stratplan.interpreter.series.read"}
    assert "asyncio" not in loaded  # every built-in executor is immediate: no event loop
    # The built-in market ships validated (executors/builtin_market.py): no YAML is loaded.
    assert "yaml" not in loaded


def test_a_lint_with_the_built_in_market_builds_no_market_validator(tmp_path):
    plan = ROOT / "examples" / "btc_basis.plan"
    code = ("import contextlib, io, sys\nfrom stratplan.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert main(['lint', {str(plan)!r}]) == 0\n"
            "from stratplan.executors.market import Market\n"
            "print('plugin' if 'pydantic.plugin._loader' in sys.modules else 'none',"
            " Market.__pydantic_complete__)")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=ROOT, env=env, timeout=120, check=True).stdout.split()
            for _ in range(2)]
    # The built-in market ships validated (executors/builtin_market.py): not even the first
    # lint in a new cache folder validates it.
    assert runs == [["none", "False"], ["none", "False"]]


def test_a_phase_cycle_still_loads_networkx_to_name_it(tmp_path):
    plan = tmp_path / "cycle.plan"
    plan.write_text("plan t\nholdings { wallet: 1 ETH }\nphase a after b { wrap 1 ETH }\n"
                    "phase b after a { wrap 1 ETH }\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "stratplan", "lint", str(plan)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "SP107" in run.stdout


def test_the_console_script_answers_version_before_loading_the_command_line():
    loaded = _loaded("import contextlib, io, sys\nsys.argv = ['stratplan', '--version']\n"
                     "from stratplan.launch import run\n"
                     "with contextlib.redirect_stdout(io.StringIO()):\n"
                     "    try:\n        run()\n    except SystemExit as done:\n"
                     "        assert done.code == 0\n")
    assert "stratplan.launch" in loaded
    # (pathlib and typing may come with the interpreter's own start: an editable install's
    # import hook loads them.)
    assert not loaded & {"stratplan.cli", "argparse", "difflib", *HEAVY}


def test_version_reads_the_same_from_the_launcher_and_from_argparse(capsys):
    import pytest

    from stratplan import __version__
    from stratplan.cli import main

    script = subprocess.run([sys.executable, "-m", "stratplan", "--version"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60, check=True)
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert script.stdout == capsys.readouterr().out == f"stratplan {__version__}\n"
    # Anything else after the program name goes through argparse, as before.
    other = subprocess.run([sys.executable, "-m", "stratplan", "--version", "lint"],
                           capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert other.stdout == f"stratplan {__version__}\n" and other.returncode == 0
