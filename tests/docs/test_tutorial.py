"""docs/tutorial.md stays true: docs/make_tutorial.py follows it again in an empty folder,
and what every command prints now must be what the committed page shows.

When this fails after a change to stratplan's output (a venue rule, a report's layout),
read the diff: if the new output is right, run `python3 docs/make_tutorial.py` and commit
docs/tutorial.md with its figures; if the prose around a block no longer fits, edit
docs/tutorial/source.md first.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def load_maker():
    spec = importlib.util.spec_from_file_location("make_tutorial", DOCS / "make_tutorial.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


maker = load_maker()


def test_tutorial_is_current():
    pytest.importorskip("matplotlib")  # the tutorial draws two plots (the `plot` extra)
    rebuilt = maker.build(figures=None)
    committed = (DOCS / "tutorial.md").read_text(encoding="utf-8")
    diff = maker.differences(committed, rebuilt)
    assert not diff, ("docs/tutorial.md is stale; if the new output is right, run "
                      "`python3 docs/make_tutorial.py` and commit it:\n" + diff)


def test_tutorial_figures_and_links_exist():
    text = (DOCS / "tutorial.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#]+)\)", text)
    assert "tutorial/backtest.png" in targets and "tutorial/sweep.png" in targets
    for target in targets:
        assert (DOCS / target).is_file(), target


def test_the_comparison_ignores_timing_and_line_ends_only():
    page = "```console\n$ stratplan sweep p.plan\ndone in 1.52 s\nreturn 3.27%\n```\n"
    assert maker.differences(page, page.replace("1.52 s", "0.9 s")) == ""
    assert maker.differences(page, page.replace("\n", "\r\n")) == ""
    assert maker.differences(page, page.replace("3.27%", "3.28%")) != ""
    assert maker.differences(page, page.replace("$ stratplan sweep", "$ stratplan run")) != ""


def test_a_command_that_changes_its_exit_status_stops_the_build(tmp_path):
    run = maker.parse_run("true\nexit: 1\n")
    env = maker.environment(tmp_path, tmp_path)
    with pytest.raises(maker.TutorialError, match="exited 0, the tutorial says 1"):
        maker.execute(run, tmp_path, tmp_path, env)


def test_prose_that_output_no_longer_supports_stops_the_build(tmp_path):
    run = maker.parse_run("echo 2 firings\nexpect: 1 firing\n")
    env = maker.environment(tmp_path, tmp_path)
    with pytest.raises(maker.TutorialError, match="no longer prints"):
        maker.execute(run, tmp_path, tmp_path, env)
