"""Finding executors: the `stratplan.executors` entry-point group, built-ins as fallback.

Reading the group means importing `importlib.metadata` and reading the entry points of
every installed distribution: ~12 ms, about a twentieth of a small lint (issue 17). So the
group's entry points (their names and values, not the code) are kept in the user's cache
folder as JSON, under the import path and the modification time of each of its folders:
installing, upgrading or removing a distribution adds or removes a `*.dist-info` folder,
which changes its parent's time, and the group is read again. `STRATPLAN_PLUGIN_CACHE=0`
turns the cache off. A plugin's code is always imported afresh; the built-ins, which the
project registers in the same group, are not imported twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Any

from stratplan.dsl.usercache import cache_folder, write_atomically
from stratplan.executors.cex import CexExecutor
from stratplan.executors.contract import ContractExecutor
from stratplan.executors.protocol import Executor
from stratplan.executors.wallet import WalletExecutor

GROUP = "stratplan.executors"
BUILTIN: tuple[type, ...] = (WalletExecutor, CexExecutor, ContractExecutor)
# The values under which the project registers its built-ins (pyproject.toml).
BUILTIN_VALUES = frozenset(f"{cls.__module__}:{cls.__qualname__}" for cls in BUILTIN)


class RegistryError(Exception):
    """An executor plugin that cannot be loaded; the message is one line."""


def discover() -> dict[str, Executor]:
    """Family -> executor; a third-party plugin replaces the built-in of its family."""
    table: dict[str, Executor] = {}
    for cls in BUILTIN:
        executor = cls()
        for family in executor.families:
            table[family] = executor
    plugins = []
    for name, value in entry_point_values():
        if value in BUILTIN_VALUES:
            continue
        try:
            loaded = _load(name, value)
            executor = loaded() if isinstance(loaded, type) else loaded
        except Exception as exc:  # a broken plugin must not crash the tool
            raise RegistryError(f"executor plugin {name!r} ({value}) failed to "
                                f"load: {exc}") from None
        if not isinstance(executor, Executor):
            raise RegistryError(f"executor plugin {name!r} does not implement Executor")
        plugins.append(executor)
    for executor in plugins:
        if type(executor) in BUILTIN:
            continue
        for family in executor.families:
            table[family] = executor
    return table


def _load(name: str, value: str) -> Any:
    from importlib.metadata import EntryPoint

    return EntryPoint(name=name, value=value, group=GROUP).load()


def entry_point_values() -> list[tuple[str, str]]:
    """(name, value) of each entry point of the group, in `importlib.metadata`'s order,
    from the cache when the import path has not changed since it was written."""
    if os.environ.get("STRATPLAN_PLUGIN_CACHE") == "0":
        return _read_group()
    key = _path_key()
    path = cache_folder() / f"plugins-{hashlib.sha256(sys.executable.encode()).hexdigest()[:24]}.json"
    try:
        kept = json.loads(path.read_bytes())
        if kept["key"] == key:
            return [(str(name), str(value)) for name, value in kept["points"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent, stale or damaged: read the group again
    points = _read_group()
    write_atomically(path, json.dumps({"key": key, "points": points}).encode())
    return points


def _read_group() -> list[tuple[str, str]]:
    from importlib.metadata import entry_points

    return [(point.name, point.value) for point in entry_points(group=GROUP)]


def _path_key() -> list[Any]:
    """The import path, each folder with its modification time (None if unreadable)."""
    key: list[Any] = [sys.version]
    for entry in sys.path:
        try:
            stamp: int | None = os.stat(entry or ".").st_mtime_ns
        except OSError:
            stamp = None
        key.append([entry, stamp])
    return key
