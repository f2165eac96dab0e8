"""Shared fixtures: where the conformance cases and examples are; hypothesis profiles."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = Path(__file__).resolve().parent / "data"
CONFORMANCE = Path(os.environ.get("STRATPLAN_CONFORMANCE",
                                  ROOT.parent / "shared" / "conformance-v3"))

# "ci" keeps the suite inside CI's budget; "long" is the documented soak run:
#   python -m pytest tests -k "property or fuzz" --hypothesis-profile=long
settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("long", max_examples=100_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("soak", max_examples=20_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# LANGUAGE.md's flash-loan loop (15 ETH into weETH on aave, 48 WETH borrowed in one atomic
# block), after its `plan` line: the backtest, v3 venue and liquidation tests all start here.
FLASH_LOOP_BODY = """holdings { wallet: 15 ETH }
phase entry {
  atomic leverage via instadapp {
    flash borrow 48 WETH from balancer
    unwrap all WETH
    stake all ETH on etherfi -> weETH
    supply all weETH to aave
    borrow 48 WETH from aave
    flash repay all WETH to balancer
  }
}
"""

def conformance_cases() -> list[Path]:
    """Every conformance plan; the folder must exist (it sits beside the project)."""
    if not CONFORMANCE.is_dir():
        raise RuntimeError(f"conformance cases not found at {CONFORMANCE}; "
                           "set STRATPLAN_CONFORMANCE to the folder")
    return sorted(CONFORMANCE.glob("*.plan"))


# Shared v2 cases whose features belong to issues still open: each is expected to fail
# (strict xfail: the day one passes, the suite says so and the entry must go).
# name -> (issue, what is missing)
PENDING_V2: dict[str, tuple[int, str]] = {}
# Of those, the ones whose text the v1 grammar cannot parse at all.
PENDING_V2_SYNTAX: set[str] = set()


def pending(path: Path, table: Any = PENDING_V2) -> Any:
    """pytest.param(path), marked strict-xfail when the shared case waits for an open issue."""
    if path.parent == CONFORMANCE and path.name in table:
        why = PENDING_V2.get(path.name, (0, ""))
        return pytest.param(path, marks=pytest.mark.xfail(
            strict=True, reason=f"issue {why[0]}: {why[1]}"))
    return pytest.param(path)


def example_plans() -> list[Path]:
    """The shipped examples."""
    return sorted(EXAMPLES.glob("*.plan"))


@pytest.fixture
def tmp_plan(tmp_path: Path):
    """Write a plan text to a temporary file and return its path."""
    def write(text: str, name: str = "plan.plan") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path
    return write


def in_child(work: Callable[[], int], env: dict[str, str] | None = None) -> int:
    """Run `work()` in a forked child, its output discarded; its exit code (the child's
    return value, or 137 from a failpoint): the journal tests crash runs this way."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            os.environ.update(env or {})
            code = work()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
