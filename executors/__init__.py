"""Executors: one per instruction family, the market model, and the ledger protocol."""

from executors.errors import ExecutionError, MarketError
from executors.ledger import Ledger
from executors.market import Market, default_market, load_market
from executors.protocol import ExecutionResult, Executor, Options, Order

__all__ = ["ExecutionError", "ExecutionResult", "Executor", "Ledger", "Market", "MarketError",
           "Options", "Order", "default_market", "load_market"]
