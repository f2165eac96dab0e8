"""Finding executors: the `stratplan.executors` entry-point group, built-ins as fallback.

Reading the group means importing `importlib.metadata` and reading the entry points of
every installed distribution: ~12 ms, about a twentieth of a small lint (issue 17). So the
group's entry points (their names and values, not the code) are kept in the user's cache
folder as JSON, under a key made of the import path and, in each of its folders, every
`*.dist-info` and `*.egg-info` folder with the modification time of its
`entry_points.txt`: installing, upgrading or removing a distribution, or rewriting its
entry points in place (a legacy editable install), changes the key and the group is read
again. Distributions that a custom import hook serves from elsewhere are not seen by the
key: `STRATPLAN_PLUGIN_CACHE=0` turns the cache off. A plugin's code is always imported
afresh; the built-ins, which the project registers in the same group, are not imported
twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Any

from stratplan.dsl.usercache import cache_folder, read_cached, write_atomically
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
    from the cache when nothing the key covers has changed since it was written."""
    if os.environ.get("STRATPLAN_PLUGIN_CACHE") == "0":
        return _read_group()
    key = _path_key()
    name = hashlib.sha256(sys.executable.encode()).hexdigest()[:24]
    path = cache_folder() / f"plugins-{name}.json"
    try:
        kept = json.loads(read_cached(path) or b"null")
        if kept["key"] == key:
            points = [(str(name), str(value)) for name, value in kept["points"]]
            if set(points) <= _declared(key):
                return points
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent, stale, damaged or forged: read the group again
    points = _read_group()
    write_atomically(path, json.dumps({"key": key, "points": points}).encode())
    return points


def _read_group() -> list[tuple[str, str]]:
    from importlib.metadata import entry_points

    return [(point.name, point.value) for point in entry_points(group=GROUP)]


_METADATA_FOLDERS = (".dist-info", ".egg-info")


def _path_key() -> list[Any]:
    """The import path (as text), and in each of its folders the metadata folders with the
    time of their entry points (None where there is none). Entries that are not text or a
    path, as `importlib.metadata` would skip them, are skipped."""
    key: list[Any] = [sys.version]
    for entry in sys.path:
        try:
            folder = os.fsdecode(entry)
        except TypeError:
            continue
        found: list[Any] = []
        try:
            with os.scandir(folder or ".") as children:
                for child in children:
                    if child.name.endswith(_METADATA_FOLDERS):
                        found.append([child.name, _stamp(os.path.join(child.path,
                                                                      "entry_points.txt"))])
        except OSError:  # not a folder (a zip file, a missing folder): its time is enough
            found.append(_stamp(folder or "."))
        found.sort(key=str)
        key.append([folder, found])
    return key


def _declared(key: list[Any]) -> set[tuple[str, str]]:
    """Every (name, value) of the group that an `entry_points.txt` on the path declares.

    The cache only saves importing `importlib.metadata`; it never decides which code is
    imported: a point in the cache that no installed distribution declares (a forged
    `this:s`) sends the whole group to be read again."""
    declared: set[tuple[str, str]] = set()
    for folder, found in key[1:]:
        for item in found:
            if isinstance(item, list) and item[1] is not None:
                declared |= _group_in(os.path.join(folder or ".", item[0], "entry_points.txt"))
    return declared


def _group_in(path: str) -> set[tuple[str, str]]:
    """The group's entries in one `entry_points.txt` (an INI file: `[group]`, `name = value`)."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return set()
    entries, inside = set(), False
    for line in lines:
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == GROUP
        elif inside and "=" in line and not line.startswith(("#", ";")):
            name, _, value = line.partition("=")
            entries.add((name.strip(), value.strip()))
    return entries


def _stamp(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
