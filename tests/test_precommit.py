"""The pre-commit hooks, run by the real `pre-commit try-repo` on a temporary repository
holding good and bad plans.

pre-commit installs stratplan from this source tree into a fresh environment of its own
(dependencies from PyPI, as for users); try-repo builds that environment anew on every
call, so the test makes two calls: every hook on every file, then every hook on the good
plan alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

PARTS = ["pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "stratplan", "dsl",
         "interpreter", "executors", "grammar"]
GOOD = """plan good

holdings {
  wallet: 10 ETH
}

phase p {
  stake 5 ETH on etherfi -> weETH
}
"""
BAD_LINT = """plan bad

holdings {
  wallet: 1 ETH
}

phase p {
  transfer 5 ETH from wallet to kraken
}
"""
BAD_LAYOUT = "plan messy\nholdings {wallet: 10 ETH}\nphase p { stake 5 ETH on etherfi -> weETH }\n"
GIT_ENV = {"GIT_AUTHOR_NAME": "stratplan tests", "GIT_AUTHOR_EMAIL": "tests@stratplan.invalid",
           "GIT_COMMITTER_NAME": "stratplan tests",
           "GIT_COMMITTER_EMAIL": "tests@stratplan.invalid",
           "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})


def _hook_repository(repo: Path) -> Path:
    """This source tree (the working copy, not only what is committed) as a git repository."""
    repo.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for part in PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, repo / part, ignore=ignore)
        else:
            shutil.copy2(source, repo / part)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "stratplan hooks under test")
    return repo


def _try_repo(hook_repo: Path, target: Path, *files: str) -> subprocess.CompletedProcess[str]:
    selection = ["--files", *files] if files else ["--all-files"]
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), "--color=never",
         *selection],
        cwd=target, capture_output=True, text=True, timeout=1200,
        env={**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(hook_repo.parent / "home")})


def test_the_hooks_file_declares_both_hooks():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    by_id = {hook["id"]: hook for hook in hooks}
    assert set(by_id) == {"stratplan-lint", "stratplan-fmt"}
    assert by_id["stratplan-fmt"]["entry"] == "stratplan fmt --check"
    assert all(hook["language"] == "python" and hook["files"] == r"\.plan$" for hook in hooks)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_try_repo_passes_good_plans_and_fails_bad_ones(tmp_path):
    hook_repo = _hook_repository(tmp_path / "hooks")
    target = tmp_path / "plans"
    target.mkdir()
    _git(target, "init", "-q", "-b", "main")
    files = {"good.plan": GOOD, "bad.plan": BAD_LINT, "messy.plan": BAD_LAYOUT, "notes.txt": "x"}
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
    _git(target, "add", "-A")

    failed = _try_repo(hook_repo, target)
    out = failed.stdout
    assert failed.returncode == 1, out + failed.stderr
    # try-repo runs the hooks in id order: stratplan-fmt, then stratplan-lint.
    fmt = out[out.index("stratplan fmt --check...."):out.index("stratplan lint....")]
    lint = out[out.index("stratplan lint...."):]
    assert "Failed" in lint and "bad.plan:8:33: error[SP101] unknown venue `kraken`" in lint
    assert "good.plan" not in lint and "messy.plan" not in lint
    assert "Failed" in fmt and "would reformat messy.plan" in fmt
    assert "would reformat good.plan" not in fmt and "would reformat bad.plan" not in fmt
    assert (target / "messy.plan").read_text(encoding="utf-8") == BAD_LAYOUT  # check mode

    passed = _try_repo(hook_repo, target, "good.plan")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.count("Passed") == 2
