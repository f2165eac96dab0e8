"""Time series of prices and rates: the reader (the format a backtest consumes), the
importers of other formats and the synthetic generator."""
