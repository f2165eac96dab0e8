"""The `stratplan` commands: one module each, holding the command's `register(sub)` (its
argparse subparser) and its `cmd_*` function, which `stratplan.cli` calls with the parsed
arguments and whose return value is the exit code.

`common` holds what several commands share (the usage error, reading plans, the shared
options); `time_options` what `backtest`, `sweep` and `series` share (the series a backtest
runs over, durations). What the commands print is drawn by `stratplan.render`.

A command module imports only argparse and `common` at its top: `stratplan.cli` imports the
module of the command a command line names, and nothing else (issue 17: startup).
"""
