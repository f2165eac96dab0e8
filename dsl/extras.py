"""Optional dependencies (pyproject's extras) and the one error that names a missing one.

`pip install stratplan` brings what lint, run and backtest need; Hypothesis (the testing
helpers), matplotlib (`--plot`), pygls (`stratplan lsp`) and Ray (`sweep --engine ray`) are
extras. Code that needs one asks for it here first, so that a user without it reads which
extra to install instead of a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message says which extra brings it."""


def missing(module: str, extra: str, feature: str) -> MissingExtra:
    """The error for a feature whose optional dependency is not installed."""
    return MissingExtra(f"{feature} needs {module.split('.')[0]}, which is not installed: "
                        f"pip install 'stratplan[{extra}]'")


def require(module: str, extra: str, feature: str) -> ModuleType:
    """The module, imported; MissingExtra naming `pip install 'stratplan[EXTRA]'` without it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise missing(module, extra, feature) from None
