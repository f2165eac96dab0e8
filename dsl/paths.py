"""Where a plan's `use market "..."` and `use series "..."` files are: beside the plan.

LANGUAGE.md: a path in a plan is relative to the plan's folder and must stay inside it (a
plan shared with a colleague must not read their `~/.ssh`). The linter, the backtest's
series check and the language server resolve paths here, so that they agree.
"""

from __future__ import annotations

from pathlib import Path


class OutsideFolder(ValueError):
    """The path leaves the plan's folder (through `..`, an absolute path or a symlink)."""


def inside_plan_folder(plan_dir: Path | None, relative: str) -> Path:
    """The resolved file a plan names, or OutsideFolder; OSError, RuntimeError (a symlink
    loop) or ValueError (a NUL) when the path cannot be resolved at all."""
    folder = (plan_dir or Path.cwd()).resolve()
    target = (folder / relative).resolve()
    if not target.is_relative_to(folder):
        raise OutsideFolder(relative)
    return target
