"""Executors: one per instruction family, the market model, and the ledger protocol.

The names below are loaded on first use (PEP 562): importing `stratplan.executors.errors`
does not load the market models (issue 17).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratplan.executors.errors import ExecutionError, MarketError
    from stratplan.executors.ledger import Ledger
    from stratplan.executors.market import Market, default_market, load_market
    from stratplan.executors.protocol import ExecutionResult, Executor, Options, Order

_WHERE = {"ExecutionError": "errors", "MarketError": "errors", "Ledger": "ledger",
          "Market": "market", "default_market": "market", "load_market": "market",
          "ExecutionResult": "protocol", "Executor": "protocol", "Options": "protocol",
          "Order": "protocol"}

__all__ = ["ExecutionError", "ExecutionResult", "Executor", "Ledger", "Market", "MarketError",
           "Options", "Order", "default_market", "load_market"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
