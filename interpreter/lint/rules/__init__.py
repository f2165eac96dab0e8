"""The static rules (SP101-SP110, SP200-SP207, SP400, SP401), registered in one table.

Each rule is a small function of a RuleContext that yields diagnostics, registered with
`@rule(code)` in the module of its family: `names` (SP101-SP103), `values` (SP104, SP110
for constants), `structure` (SP105-SP110), `atomic` (SP200-SP207), `advice` (SP400,
SP401). The context walks the plan once (`visits`) and every rule reads that walk, so
adding a rule means adding one function to its family's module, its tests, and its page in
`explain/`. Importing this package registers every rule, in the order below: the order of
the table (`registry.RULES`), which `run_rules` keeps for diagnostics at the same place.
"""

from __future__ import annotations

# The families, imported for their registrations, in the table's order (keep it).
# isort: off
from stratplan.interpreter.lint.rules import names  # noqa: F401
from stratplan.interpreter.lint.rules import values  # noqa: F401
from stratplan.interpreter.lint.rules import structure  # noqa: F401
from stratplan.interpreter.lint.rules import atomic  # noqa: F401
from stratplan.interpreter.lint.rules import advice  # noqa: F401
# isort: on
from stratplan.interpreter.lint.rules.advice import contract_runs
from stratplan.interpreter.lint.rules.registry import (
    OPTIONS,
    RULES,
    Check,
    Place,
    Rule,
    RuleContext,
    diag,
    rule,
    run_rules,
)

__all__ = ["OPTIONS", "RULES", "Check", "Place", "Rule", "RuleContext", "contract_runs", "diag",
           "rule", "run_rules"]
