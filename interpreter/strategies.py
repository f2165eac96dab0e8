"""Deprecated import path (kept because the v2 README and docs/fuzzing.md showed it): the
Hypothesis strategies now live in `stratplan.interpreter.testing.strategies`."""

import warnings

from stratplan.interpreter.testing.strategies import *  # noqa: F403
from stratplan.interpreter.testing.strategies import __all__  # noqa: F401

warnings.warn("stratplan.interpreter.strategies moved to stratplan.interpreter.testing.strategies",
              DeprecationWarning, stacklevel=2)
