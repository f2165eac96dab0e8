#!/usr/bin/env python3
"""Run mypy on the package as it installs (`stratplan.dsl`, ...), from the repository's folders.

The folders `dsl/`, `interpreter/`, `executors/` and `grammar/` sit at the top of the
repository and install as subpackages of `stratplan` (setuptools' `package-dir`). mypy
cannot follow setuptools' editable import hook, so it would not find `stratplan.dsl` and,
with `ignore_missing_imports`, would silently type it as Any. This builds the installed
layout as a tree of symbolic links in `build/typecheck/` and runs mypy there, with the
project's own configuration; messages name the repository's files.

Usage: python tools/typecheck.py [MYPY ARGS...]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_dirs() -> dict[str, str]:
    """{"stratplan.dsl": "dsl", ...}: the project's setuptools `package-dir`."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    return dict(config["tool"]["setuptools"]["package-dir"])


def build_tree(mapping: dict[str, str]) -> Path:
    """build/typecheck/stratplan/...: links to the repository's files, laid out as installed,
    subpackages included (`interpreter/lint/rules/`, `stratplan/commands/`, ...)."""
    tree = ROOT / "build" / "typecheck"
    shutil.rmtree(tree, ignore_errors=True)
    for package, folder in mapping.items():
        target = tree.joinpath(*package.split("."))
        for source in (ROOT / folder).rglob("*.py"):
            link = target / source.relative_to(ROOT / folder)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source)
    return tree


def main() -> int:
    mapping = package_dirs()
    tree = build_tree(mapping)
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
               *sys.argv[1:]]
    run = subprocess.run(command, cwd=tree, capture_output=True, text=True)
    # Report the repository's paths, not the links' (longest package first: stratplan.dsl
    # before stratplan).
    out = run.stdout
    for package in sorted(mapping, key=len, reverse=True):
        linked = package.replace(".", "/") + "/"
        out = "\n".join(line.replace(linked, mapping[package] + "/", 1)
                        if line.startswith(linked) else line for line in out.split("\n"))
    sys.stdout.write(out)
    sys.stderr.write(run.stderr)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
