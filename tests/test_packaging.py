"""One import package: what `pip install .` puts in site-packages, and clean imports."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _fresh(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run code in a new interpreter, away from the repository (no `dsl` folder beside it)."""
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("code", [
    "import hypothesis\nfrom stratplan.interpreter.testing.strategies import valid_plans\n"
    "print(valid_plans().example().name)",
    "from stratplan.interpreter.testing.strategies import valid_plans\nimport hypothesis\n"
    "print(valid_plans().example().name)",
    "from stratplan.dsl.strategies import plans\nimport hypothesis\nprint(type(plans()).__name__)",
    # The entry point registers plans() for st.from_type(Plan), resolved when first drawn.
    "from hypothesis import strategies as st\nfrom stratplan.dsl.models import Plan\n"
    "print(type(st.from_type(Plan).example()).__name__)",
], ids=["hypothesis-first", "strategies-first", "dsl-strategies-first", "from-type"])
def test_strategies_import_in_a_fresh_interpreter_in_either_order(code, tmp_path):
    run = _fresh(code, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout.strip() != ""


def test_dsl_loads_no_venue_and_no_engine_code(tmp_path):
    modules = sorted(p.stem for p in (ROOT / "dsl").glob("*.py") if p.stem != "__init__")
    code = "import sys\n" + "".join(f"import stratplan.dsl.{m}\n" for m in modules) + (
        "print(sorted(m for m in sys.modules if m.startswith(('stratplan.executors', "
        "'stratplan.interpreter'))))")
    run = _fresh(code, tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_nothing_but_stratplan_at_the_top_of_the_wheel(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True,
                           timeout=600)
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("stratplan-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"stratplan"}
    for data in ("stratplan/grammar/plan.lark", "stratplan/executors/data/default_market.yaml",
                 "stratplan/interpreter/lint/explain/SP300.md", "stratplan/dsl/parser.py"):
        assert data in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "stratplan.executors.wallet:WalletExecutor" in text
    assert "stratplan.dsl.hypothesis_hook:setup" in text


def test_every_package_folder_is_in_the_packages_list():
    """setuptools' package-dir layout needs every subpackage listed: one missing installs in
    an editable checkout and is absent from a wheel (interpreter/journal/ was, once)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    for package, folder in config["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            assert ".".join((package, *parts)) in listed, init.parent
