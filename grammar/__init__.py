"""Package data: the stratplan grammar (plan.lark). Holds no Python logic."""
