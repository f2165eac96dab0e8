"""A cached sweep row is used only with the shape a sweep writes (interpreter/sweep/rows.py):
an entry without its status, with a summary that is a list, a metric that is not a number,
or nested without end is recomputed, never a crash (issue 23)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from stratplan.interpreter.sweep.rows import cached_row
from stratplan.interpreter.sweep.run import Cache

KEY = "ab" * 32
ROW: dict[str, Any] = {
    "key": KEY, "status": "ok", "error": None, "deterministic": True,
    "summary": {"value_start": "51000", "value_end": "50941.2", "return": "-0.0011",
                "apr": "-0.14", "cagr": "-0.13", "max_drawdown": "0.0011",
                "max_drawdown_from": "2024-01-01T00:00:00Z",
                "max_drawdown_to": "2024-01-04T00:00:00Z", "sharpe": "-12", "sortino": None,
                "min_health": {"aave": {"value": "1.66", "time": "2024-01-01T00:00:00Z"}},
                "liquidations": 0, "firings": {"daily": 3},
                "benchmark": {"value_end": "51000", "return": "0"}},
    "pnl": {"price": "-29.3", "funding": "0", "gas": "-45.288", "total": "-58.77"},
}


def _damaged(path: str, value: Any) -> dict[str, Any]:
    row = copy.deepcopy(ROW)
    target = row
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[part]
    if value is KeyError:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value
    return row


def test_a_row_of_the_written_shape_is_used():
    assert cached_row(copy.deepcopy(ROW), KEY) == ROW
    error = {"key": KEY, "status": "error", "summary": None, "pnl": None,
             "error": "line 3: SP104", "deterministic": True}
    assert cached_row(error, KEY) == error


@pytest.mark.parametrize(("path", "value"), [
    ("status", KeyError), ("status", "great"), ("summary", [1, 2]), ("summary", None),
    ("summary.return", "abc"), ("summary.return", True), ("summary.return", KeyError),
    ("summary.min_health", [1]), ("summary.min_health.aave", "1"),
    ("summary.firings.daily", -1), ("summary.firings.daily", "3"), ("summary.firings", None),
    ("pnl", {"total": 1.5}), ("pnl.price", "nan"), ("error", 5), ("deterministic", False),
    ("key", "other"), ("extra", 1), ("summary.benchmark", {"x": [1]}),
])
def test_a_damaged_row_is_not_used(path, value):
    assert cached_row(_damaged(path, value), KEY) is None


def test_the_cache_recomputes_an_entry_it_cannot_use(tmp_path):
    cache = Cache(tmp_path)
    cache.put(KEY, {k: v for k, v in ROW.items() if k != "key"})
    assert cache.get(KEY) == ROW
    entry = tmp_path / KEY[:2] / f"{KEY}.json"
    for text in (json.dumps(_damaged("summary", [1, 2])), "[" * 100_000 + "]" * 100_000,
                 "{bad", ""):
        entry.write_text(text)
        assert cache.get(KEY) is None
