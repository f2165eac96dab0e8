"""The user's cache folder, shared by every cache of the tool (the executor plugins found,
sweep results), and the one way they read and write a file.

Nothing in a cache is trusted (DESIGN.md, "What is trusted"): it holds JSON that is checked
again on load, never code. A cache folder is created `0700` and is used only when this user
owns it and nobody else can write it; otherwise the cache is off, with no error (a cache
only saves time). A cache path is never followed through a symlink, and a file is written
under a name `mkstemp` chose in the same folder, then renamed into place, so that a
concurrent process never reads half of it and a planted symlink redirects nothing.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import suppress
from pathlib import Path

MAX_CACHE_FILE_BYTES = 64 * 1024 * 1024


class UntrustedFolder(PermissionError):
    """A cache folder another user owns or others can write, or a symlink: not used."""


def cache_folder() -> Path:
    """`$XDG_CACHE_HOME/stratplan`, else `~/.cache/stratplan` (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stratplan"


def _private(info: os.stat_result) -> bool:
    """Owned by this user and writable by nobody else."""
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def trusted_folder(folder: Path) -> bool:
    """True when `folder` is a real folder (not a symlink) this user owns and nobody else
    can write."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and _private(info)


def ready_folder(folder: Path) -> Path:
    """`folder`, created `0700` where missing; UntrustedFolder when it is not one to use."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not trusted_folder(folder):
        raise UntrustedFolder(f"{folder}: owned by another user, writable by others, or a "
                              "symlink: not used as a cache")
    return folder


def read_cached(path: Path, limit: int = MAX_CACHE_FILE_BYTES) -> bytes | None:
    """The bytes of a cache file, or None when it is absent, too large, not a regular file
    this user owns (a symlink is not followed), or in a folder that is not trusted."""
    if not trusted_folder(path.parent):
        return None
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode) or not _private(info) or info.st_size > limit:
            return None
        # Sized by the file, not by the limit: `read(n)` allocates n bytes at once, and a
        # 64 MB buffer for a 1 KB entry was every backtest's peak of traced memory.
        data = file.read(info.st_size + 1)
        if len(data) > info.st_size:  # it grew since `fstat`: the rest, up to the limit
            data += file.read(limit + 1 - len(data))
    return data if len(data) <= limit else None


def write_atomically(path: Path, data: bytes) -> OSError | None:
    """Write `data` to a new file beside `path` and rename it into place. When the folder
    cannot be written or is not trusted, nothing is left behind and the error is returned,
    not raised: a cache that cannot be kept only costs its rebuild (the caller decides
    whether to say so)."""
    partial: str | None = None
    try:
        folder = ready_folder(path.parent)
        fd, partial = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".partial")
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(partial, path)  # replaces a symlink at `path` itself, never its target
    except OSError as problem:
        if partial is not None:
            with suppress(OSError):
                os.unlink(partial)
        return problem
    return None

