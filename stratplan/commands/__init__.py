"""The `stratplan` commands: one module each, holding the command's `register(sub)` (its
argparse subparser) and its `cmd_*` function(s), which `stratplan.cli` calls with the parsed
arguments and whose return value is the exit code.

`common` holds what several commands share (the usage error, reading plans, the shared
options); `time_options` what `backtest`, `sweep` and `series` share (the series a backtest
runs over, durations). What the commands print is drawn by `stratplan.render`.

`stratplan.cli` imports only the module of the command a command line names (all of them for
`--help`), so a module's top imports only what registering its options needs and what is
light; the engines, models and rich are imported inside the `cmd_*` function (issue 17:
startup; tests/cli/test_startup.py).
"""
