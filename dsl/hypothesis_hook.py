"""The `hypothesis` entry point: `st.from_type(Plan)` draws `plans()`.

Hypothesis runs this hook at the end of its own import, which may happen while
`stratplan.dsl.strategies` is itself being imported (a script importing the strategies
first). So the hook imports only the models and resolves the strategy when first drawn.
"""

from __future__ import annotations

from typing import Any


def _plans(_: type) -> Any:
    from stratplan.dsl.strategies import plans

    return plans()


def setup() -> None:
    from hypothesis import strategies as st

    from stratplan.dsl.models import Plan

    st.register_type_strategy(Plan, _plans)
