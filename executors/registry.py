"""Finding executors: the `stratplan.executors` entry-point group, built-ins as fallback."""

from __future__ import annotations

from importlib.metadata import entry_points

from stratplan.executors.cex import CexExecutor
from stratplan.executors.contract import ContractExecutor
from stratplan.executors.protocol import Executor
from stratplan.executors.wallet import WalletExecutor

GROUP = "stratplan.executors"
BUILTIN: tuple[type, ...] = (WalletExecutor, CexExecutor, ContractExecutor)


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
    for point in entry_points(group=GROUP):
        try:
            loaded = point.load()
            executor = loaded() if isinstance(loaded, type) else loaded
        except Exception as exc:  # a broken plugin must not crash the tool
            raise RegistryError(f"executor plugin {point.name!r} ({point.value}) failed to "
                                f"load: {exc}") from None
        if not isinstance(executor, Executor):
            raise RegistryError(f"executor plugin {point.name!r} does not implement Executor")
        plugins.append(executor)
    for executor in plugins:
        if type(executor) in BUILTIN:
            continue
        for family in executor.families:
            table[family] = executor
    return table
