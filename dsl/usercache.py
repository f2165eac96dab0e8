"""The user's cache folder, shared by every cache of the tool (grammar tables, the
validated built-in market, the executor plugins found, sweep results), and the one way
they write a file (Lark writes the grammar's itself, to a name beside its own)."""

from __future__ import annotations

import os
import threading
from contextlib import suppress
from pathlib import Path


def cache_folder() -> Path:
    """`$XDG_CACHE_HOME/stratplan`, else `~/.cache/stratplan` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stratplan"


def partial_path(path: Path) -> Path:
    """Where a cache file is written before it is renamed to `path`: a hidden name beside
    it, unique to this process and thread."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")


def write_atomically(path: Path, data: bytes) -> OSError | None:
    """Write `data` beside `path` and rename it into place, so that a concurrent process
    never reads half of it. When the folder cannot be written, nothing is left behind and
    the error is returned, not raised: a cache that cannot be kept only costs its rebuild
    (the caller decides whether to say so)."""
    partial = partial_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError as problem:
        with suppress(OSError):
            partial.unlink(missing_ok=True)
        return problem
    return None
