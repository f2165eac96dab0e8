"""Parameter sweeps: `--set` values and grids of them, many backtests on a process pool or
Ray, and the result cache."""
