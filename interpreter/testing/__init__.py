"""Testing helpers for users: Hypothesis strategies (plans, markets, series) and
`check_executor`, the invariants any executor must keep."""

from stratplan.interpreter.testing.executors import check_executor

__all__ = ["check_executor"]
