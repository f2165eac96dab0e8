"""The executor registry's cache of the entry-point group (issue 17): what it keeps is
what importlib.metadata reads, and it is read again whenever the import path changes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from stratplan.executors import registry
from stratplan.executors.cex import CexExecutor

PLUGIN = '''
from stratplan.executors.cex import CexExecutor


class LoudCex(CexExecutor):
    """A plugin replacing the built-in CEX executor."""
'''


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("STRATPLAN_PLUGIN_CACHE", raising=False)
    return tmp_path / "cache" / "stratplan"


def _install(site: Path, name: str) -> None:
    """A distribution as pip leaves it: a module and a dist-info with entry points."""
    (site / f"{name}.py").write_text(PLUGIN)
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[stratplan.executors]\nloud = {name}:LoudCex\n")


def test_the_cache_holds_what_importlib_metadata_reads(cache):
    read = registry._read_group()
    assert registry.entry_point_values() == read
    (kept,) = cache.glob("plugins-*.json")
    assert [tuple(p) for p in json.loads(kept.read_text())["points"]] == read
    # The project's own built-ins are registered in the group and recognised as such.
    assert {value for _, value in read} >= registry.BUILTIN_VALUES


def test_a_warm_cache_does_not_read_the_group(cache, monkeypatch):
    first = registry.entry_point_values()

    def refuse() -> list[tuple[str, str]]:
        raise AssertionError("the group was read again")

    monkeypatch.setattr(registry, "_read_group", refuse)
    assert registry.entry_point_values() == first


def test_installing_a_plugin_is_seen_at_once_and_replaces_the_builtin(cache, tmp_path,
                                                                      monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = registry.discover()
    assert type(before["cex_trade"]) is CexExecutor
    _install(site, "loud_plugin")
    after = registry.discover()
    assert type(after["cex_trade"]).__name__ == "LoudCex"
    assert ("loud", "loud_plugin:LoudCex") in registry.entry_point_values()
    sys.modules.pop("loud_plugin", None)


def test_a_damaged_cache_is_read_again_and_replaced(cache):
    expected = registry._read_group()
    registry.entry_point_values()
    (kept,) = cache.glob("plugins-*.json")
    for damage in (b"{not json", b"[]", b'{"key": 1}', json.dumps(
            {"key": registry._path_key(), "points": 7}).encode()):
        kept.write_bytes(damage)
        assert registry.entry_point_values() == expected
        assert json.loads(kept.read_text())["key"] == registry._path_key()


def test_the_cache_can_be_turned_off_and_an_unwritable_folder_costs_only_the_read(
        cache, monkeypatch, tmp_path):
    monkeypatch.setenv("STRATPLAN_PLUGIN_CACHE", "0")
    assert registry.entry_point_values() == registry._read_group()
    assert not cache.exists()
    monkeypatch.delenv("STRATPLAN_PLUGIN_CACHE")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert registry.entry_point_values() == registry._read_group()


def test_entry_points_rewritten_in_place_are_read_again(cache, tmp_path, monkeypatch):
    # A legacy editable install rewrites entry_points.txt inside an existing folder.
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    _install(site, "quiet_plugin")
    assert ("loud", "quiet_plugin:LoudCex") in registry.entry_point_values()
    points = site / "quiet_plugin-1.0.dist-info" / "entry_points.txt"
    points.write_text("[stratplan.executors]\nrenamed = quiet_plugin:LoudCex\n")
    os.utime(points, ns=(0, points.stat().st_mtime_ns + 10**9))  # a later time, whatever
    # the clock's granularity
    found = registry.entry_point_values()
    assert ("renamed", "quiet_plugin:LoudCex") in found
    assert ("loud", "quiet_plugin:LoudCex") not in found
    sys.modules.pop("quiet_plugin", None)


def test_import_path_entries_that_are_paths_or_bytes_or_odd_objects(cache, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setattr(sys, "path", [Path(tmp_path), *sys.path])
    assert [str(tmp_path), []] in registry._path_key()  # a Path reads as its folder
    assert registry.entry_point_values() == registry._read_group()
    # The key never fails on what sys.path may hold (importlib.metadata has its own limits).
    monkeypatch.setattr(sys, "path", [os.fsencode(str(tmp_path)), None, *sys.path])
    key = registry._path_key()
    assert key.count([str(tmp_path), []]) == 2  # the bytes and the Path; None is skipped
    assert len(key) == len(sys.path)  # sys.version, then every entry but None
