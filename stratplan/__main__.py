"""`python -m stratplan`."""

from stratplan.launch import run

run()
