"""Interpreter: DAG, static rules, dry run, dispatch, position monitor, reports."""
