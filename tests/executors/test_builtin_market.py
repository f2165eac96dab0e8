"""Issue 22: the built-in market ships as constructor calls (executors/builtin_market.py),
not as a pickle in the user's cache. It must be the market validated from the YAML (every
field, the fields set and the nested models' types), and stale when the YAML changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from stratplan.executors import market as market_module
from stratplan.executors.market import default_market, validated_default_market

ROOT = Path(__file__).resolve().parents[2]


def _same(a: Any, b: Any, where: str = "market") -> None:
    """Equal values of the same types, models compared field by field with their fields set."""
    assert type(a) is type(b), where
    if isinstance(a, BaseModel):
        assert a.model_fields_set == b.model_fields_set, where
        for name in type(a).model_fields:
            _same(getattr(a, name), getattr(b, name), f"{where}.{name}")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b and str(a) == str(b), where  # Decimals: same value and exponent


def test_the_shipped_market_is_the_validated_one():
    shipped, validated = default_market(), validated_default_market()
    _same(shipped, validated)
    assert shipped.model_dump() == validated.model_dump()
    assert shipped.gas_eth(21_000) == validated.gas_eth(21_000)


def test_the_shipped_module_is_what_the_generator_writes_today():
    run = subprocess.run([sys.executable, "tools/builtin_market.py", "--check"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_an_edited_yaml_is_validated_not_served_from_the_module(monkeypatch):
    real = market_module.data_text

    def edited(package: str, resource: str) -> str:
        text = real(package, resource)
        return text.replace("BTC: 67800", "BTC: 70000") if resource.endswith(".yaml") else text

    monkeypatch.setattr(market_module, "data_text", edited)
    default_market.cache_clear()
    try:
        assert default_market().prices["BTC"] == 70000
    finally:
        monkeypatch.undo()
        default_market.cache_clear()
    assert default_market().prices["BTC"] == 67800
