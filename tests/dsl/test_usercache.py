"""Issue 22: nothing in a cache folder runs as code or is trusted. Planted files never run,
a folder others can write (or another user owns) is not used, a symlink at a cache path is
neither read nor written through, and a sweep's key covers the code and the plugins."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from stratplan.dsl import usercache
from stratplan.executors import registry

ROOT = Path(__file__).resolve().parents[2]
PLAN = "plan p\n\nholdings {\n  wallet: 2 ETH\n}\n\nphase a {\n  transfer 1 ETH from wallet to binance\n}\n"


class Planted:
    """Unpickling this writes the marker file (what an attacker's pickle would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.write_text, (self.marker, "ran"))


def _stratplan(cache: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return subprocess.run([sys.executable, "-m", "stratplan", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_planted_pickle_at_every_cache_path_never_runs(tmp_path):
    (tmp_path / "p.plan").write_text(PLAN)
    cache = tmp_path / "cache"
    clean = _stratplan(cache, "run", "p.plan", "--format", "json", cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    folder = cache / "stratplan"
    marker = tmp_path / "marker"
    payload = pickle.dumps(Planted(marker))
    names = [p.name for p in folder.rglob("*") if p.is_file()]
    # v2's names too: the market and grammar caches that held pickles.
    names += ["market-0123456789abcdef01234567.pickle", "grammar-0123456789abcdef01234567.lark"]
    for name in names:
        (folder / name).write_bytes(payload)
    again = _stratplan(cache, "run", "p.plan", "--format", "json", cwd=tmp_path)
    assert not marker.exists()
    assert (again.returncode, again.stdout) == (0, clean.stdout)


def test_a_folder_others_can_write_is_not_a_cache(tmp_path):
    folder = tmp_path / "stratplan"
    folder.mkdir(mode=0o700)
    assert usercache.trusted_folder(folder)
    path = folder / "x.json"
    assert usercache.write_atomically(path, b"{}") is None
    assert usercache.read_cached(path) == b"{}"
    os.chmod(folder, 0o770)  # group-writable: someone else could plant a file
    assert not usercache.trusted_folder(folder)
    assert usercache.read_cached(path) is None
    assert isinstance(usercache.write_atomically(folder / "y.json", b"{}"),
                      usercache.UntrustedFolder)
    assert not (folder / "y.json").exists()


def test_a_folder_another_user_owns_is_not_a_cache(tmp_path, monkeypatch):
    folder = tmp_path / "stratplan"
    folder.mkdir(mode=0o700)
    (folder / "x.json").write_bytes(b"{}")
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(folder).st_uid + 1)
    assert not usercache.trusted_folder(folder)
    assert usercache.read_cached(folder / "x.json") is None


def test_a_new_cache_folder_is_private(tmp_path):
    path = tmp_path / "a" / "stratplan" / "f.json"
    assert usercache.write_atomically(path, b"1") is None
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    assert os.stat(path).st_mode & 0o077 == 0  # mkstemp's 0600


def test_a_symlink_at_a_cache_path_is_not_followed(tmp_path):
    folder = tmp_path / "stratplan"
    folder.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = folder / "x.json"
    link.symlink_to(victim)
    assert usercache.read_cached(link) is None  # not read through
    assert usercache.write_atomically(link, b"{}") is None
    assert victim.read_text() == "precious"  # the link was replaced, not written through
    assert not link.is_symlink() and link.read_bytes() == b"{}"
    linked_folder = tmp_path / "elsewhere"
    linked_folder.symlink_to(folder, target_is_directory=True)
    assert not usercache.trusted_folder(linked_folder)


def test_a_forged_plugin_entry_is_never_imported(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("STRATPLAN_PLUGIN_CACHE", raising=False)
    real = registry.entry_point_values()
    (kept,) = (tmp_path / "stratplan").glob("plugins-*.json")
    data = json.loads(kept.read_text())
    data["points"].append(["evil", "this:s"])  # the key left as it was
    kept.write_text(json.dumps(data))
    assert registry.entry_point_values() == real


def test_a_sweep_key_changes_when_a_plugin_is_installed_or_the_code_changes(monkeypatch):
    from stratplan.executors.market import default_market
    from stratplan.interpreter.series.read import read_series
    from stratplan.interpreter.sweep import run as sweep

    series = read_series(b"time,price.BTC\n2024-01-01T00:00:00Z,1\n", "s.csv")
    context = sweep.Context(PLAN, default_market(), series)
    before = context.digest()
    real = registry.entry_point_values()
    monkeypatch.setattr(registry, "entry_point_values",
                        lambda: [*real, ("loud", "loud_plugin:LoudCex")])
    assert context.digest() != before
    monkeypatch.setattr(registry, "entry_point_values", lambda: real)
    assert context.digest() == before
    monkeypatch.setattr(sweep, "code_digest", lambda: "edited checkout")
    assert context.digest() != before


@pytest.mark.parametrize("content", [b"", b"\x80\x04not json", b"[1, 2]", b'{"key": 1}'])
def test_damaged_cache_files_are_ignored(tmp_path, content):
    folder = tmp_path / "stratplan"
    folder.mkdir(mode=0o700)
    (folder / "x.json").write_bytes(content)
    assert usercache.read_cached(folder / "x.json") == content  # bytes, never code
    from stratplan.interpreter.sweep.run import Cache

    cache = Cache(folder)
    (folder / "ab").mkdir(mode=0o700)
    (folder / "ab" / ("ab" + "0" * 62 + ".json")).write_bytes(content)
    assert cache.get("ab" + "0" * 62) is None


def test_a_small_entry_is_read_without_a_buffer_of_the_limit(tmp_path):
    """`read(limit + 1)` allocated the whole 64 MB limit for every read: each backtest's
    plugin lookup peaked there. A 1 KB entry now costs about its size; a larger one than the
    limit is still refused."""
    import tracemalloc
    folder = tmp_path / "stratplan"
    folder.mkdir(mode=0o700)
    path = folder / "x.json"
    content = b"[" + b"0," * 500 + b"0]"
    assert usercache.write_atomically(path, content) is None
    tracemalloc.start()
    try:
        data = usercache.read_cached(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data == content
    assert peak < 64 * 1024  # was over usercache.MAX_CACHE_FILE_BYTES (64 MB)
    assert usercache.read_cached(path, limit=len(content) - 1) is None
    assert usercache.read_cached(path, limit=len(content)) == content
