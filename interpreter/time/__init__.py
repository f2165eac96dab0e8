"""A plan over time: the backtest loop, triggers, the fast readings of a step and the
metrics of a finished backtest."""
