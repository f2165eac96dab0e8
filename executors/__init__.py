"""Executors: one per instruction family, the market model, and the ledger protocol."""

from stratplan.executors.errors import ExecutionError, MarketError
from stratplan.executors.ledger import Ledger
from stratplan.executors.market import Market, default_market, load_market
from stratplan.executors.protocol import ExecutionResult, Executor, Options, Order

__all__ = ["ExecutionError", "ExecutionResult", "Executor", "Ledger", "Market", "MarketError",
           "Options", "Order", "default_market", "load_market"]
