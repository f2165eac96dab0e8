"""`python -m stratplan`."""

from stratplan.cli import run

run()
