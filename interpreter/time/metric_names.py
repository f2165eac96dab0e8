"""Summary metrics (LANGUAGE.md sections 8 and 9) a sweep can sort by, and which way is better.

`min_health.VENUE`, `firings.TRIGGER` and `pnl.PART` name the nested ones. Kept apart from
`interpreter/sweep.py` so that the CLI's `sweep --help` text loads nothing else (issue 17).
"""

HIGHER_BETTER = ("return", "apr", "cagr", "sharpe", "sortino", "value_end", "value_start")
LOWER_BETTER = ("max_drawdown", "liquidations")
METRICS = (*HIGHER_BETTER, *LOWER_BETTER)
PREFIXES = ("min_health.", "firings.", "pnl.")

__all__ = ["HIGHER_BETTER", "LOWER_BETTER", "METRICS", "PREFIXES"]
