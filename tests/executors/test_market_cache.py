"""Issue 17: the built-in market read back from its cache is the market validated from YAML
(every field, the fields set and the nested models' types), and a bad cache costs only the
validation."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from stratplan.executors.market import (
    Market,
    cached_default_market,
    default_market,
    default_market_cache_path,
    market_from_text,
)

ROOT = Path(__file__).resolve().parents[2]
TEXT = resources.files("stratplan.executors").joinpath("data/default_market.yaml").read_text(
    "utf-8")


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


def test_the_market_read_back_from_the_cache_is_the_validated_one(tmp_path):
    path = tmp_path / "market.pickle"
    validated = market_from_text(TEXT, "built-in market")
    written = cached_default_market(TEXT, path)  # validates and writes
    assert path.is_file()
    read = cached_default_market(TEXT, path)  # reads
    for market in (written, read):
        assert market == validated
        _same(market, validated)
        assert market.model_dump() == validated.model_dump()
    # What the engine asks of it answers the same.
    assert read.gas_eth(21_000) == validated.gas_eth(21_000)
    assert {v: type(t) for v, t in read.venues.items()} == \
        {v: type(t) for v, t in validated.venues.items()}


def test_default_market_is_the_validated_market_in_a_fresh_process_with_and_without_cache(
        tmp_path):
    probe = ("import pickle, sys\nfrom stratplan.executors.market import default_market\n"
             "sys.stdout.buffer.write(pickle.dumps(default_market().model_dump()))")
    dumps = []
    for setting in ("0", "1", "1"):  # no cache, then written, then read
        env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "STRATPLAN_MARKET_CACHE": setting}
        run = subprocess.run([sys.executable, "-c", probe], capture_output=True, env=env,
                             cwd=ROOT, timeout=120, check=True)
        dumps.append(pickle.loads(run.stdout))
    assert dumps[0] == dumps[1] == dumps[2] == default_market().model_dump()
    assert list((tmp_path / "stratplan").glob("market-*.pickle"))


@pytest.mark.parametrize("content", [b"", b"not a pickle", pickle.dumps({"prices": {}}),
                                     pickle.dumps(Market)])
def test_a_damaged_or_foreign_cache_file_is_validated_again_and_replaced(tmp_path, content):
    path = tmp_path / "market.pickle"
    path.write_bytes(content)
    market = cached_default_market(TEXT, path)
    _same(market, market_from_text(TEXT, "built-in market"))
    assert type(pickle.loads(path.read_bytes())) is Market


def test_an_unwritable_cache_folder_costs_only_the_validation(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    market = cached_default_market(TEXT, blocker / "sub" / "market.pickle")
    _same(market, market_from_text(TEXT, "built-in market"))


def test_the_cache_name_follows_the_text_and_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("STRATPLAN_MARKET_CACHE", raising=False)
    first = default_market_cache_path(TEXT)
    assert first is not None and first.parent == tmp_path / "stratplan"
    assert default_market_cache_path(TEXT + "\n# edited\n") != first
    monkeypatch.setenv("STRATPLAN_MARKET_CACHE", "0")
    assert default_market_cache_path(TEXT) is None
