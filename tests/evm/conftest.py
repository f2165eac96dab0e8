"""The EVM suite's fixtures: the contracts (fetched and built on first use), one chain per
Aave version for the session, and a snapshot around every example.

Without titanoboa the suite is skipped (`pip install "stratplan[test]"` brings it); without
the cached contracts it runs `stratplan evm setup`, which needs npm: with no npm it says so
in one line, and fails when `CI` is set (CI must run it) or skips otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

boa = pytest.importorskip("boa", reason="the evm extra (titanoboa) is not installed")

from stratplan.executors.evm import setup  # noqa: E402
from stratplan.executors.market import default_market  # noqa: E402


def _contracts(aave: str) -> None:
    try:
        setup.setup(aave)
    except setup.SetupError as exc:
        message = f"EVM suite: contracts for Aave {aave} unavailable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


_WORLDS: dict[str, Any] = {}


def world_for(aave: str) -> Any:
    """The session's chain with the built-in market for one Aave version."""
    if aave not in _WORLDS:
        _contracts(aave)
        from stratplan.executors.evm.world import build_world
        from tests.evm.harness import scenario_market
        _WORLDS[aave] = build_world(scenario_market(default_market()), aave)
    return _WORLDS[aave]


@pytest.fixture(scope="session")
def world36() -> Any:
    """Aave v3.6 (the default) on a chain with the built-in market, gas free."""
    return world_for("v3.6")


@pytest.fixture(scope="session")
def world30() -> Any:
    """Aave v3.0 on a chain with the built-in market, gas free."""
    return world_for("v3.0")


@pytest.fixture
def fresh36(world36: Any) -> Iterator[Any]:
    """The v3.6 chain, returned to its state after the test."""
    snapshot = world36.chain.snapshot()
    market = world36.market
    try:
        yield world36
    finally:
        world36.chain.revert(snapshot)
        world36.market = market
