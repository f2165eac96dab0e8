"""Benchmarks: realistic generated plans timed against CPython's parser and YAML loading."""
