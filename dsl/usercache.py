"""The user's cache folder, shared by every cache of the tool (grammar tables, the
validated built-in market, the executor plugins found, sweep results)."""

from __future__ import annotations

import os
import threading
from contextlib import suppress
from pathlib import Path


def cache_folder() -> Path:
    """`$XDG_CACHE_HOME/stratplan`, else `~/.cache/stratplan` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stratplan"


def write_atomically(path: Path, data: bytes) -> bool:
    """Write `data` beside `path` and rename it into place, so that a concurrent process
    never reads half of it; False (and nothing left behind) when the folder cannot be
    written: a cache that cannot be kept only costs its rebuild."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError:
        with suppress(OSError):
            partial.unlink(missing_ok=True)
        return False
    return True
