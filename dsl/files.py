"""The one way stratplan reads a file a user names, and writes a file an option names.

Reading (`read_regular`): plans, series, dumps to import, journals, the documents a language
server opens from disk. A name may point at anything: a FIFO (whose `open` blocks until a
writer comes, and which then never ends), `/dev/zero` or `/dev/urandom` (endless), a
folder, a socket. The file is opened without blocking (`O_NONBLOCK`, so a FIFO with no
writer opens at once), its kind is asked of the open descriptor (`fstat`, so it cannot be
swapped between the question and the read), and anything but a regular file is refused
before a byte is read. Its size is checked against the caller's limit before reading, and
at most limit + 1 bytes are ever read (a file that grows while it is read).

Writing (`write_output`): `--plot`, `--html`, `-o`. The target must not be one of the
command's own inputs (a plan, market or series replaced by a PNG because the shell
completed the wrong name), must be a regular file when it exists (a folder, `/dev/full`, a
FIFO are refused, not written into), and is written through a temporary file in its own
folder renamed into place: a failed write leaves the old file whole, never half a file.

Every problem is a `FileRefused` whose message is one line naming the file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

_READ_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0))
_CHUNK = 1024 * 1024


class FileRefused(Exception):
    """A file that is not read or written; the message is one line naming it."""


class TooLarge(FileRefused):
    """A file over the reader's limit; `size` is what it holds (at least limit + 1)."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


def size_text(limit: int) -> str:
    """A byte count as a limit is said: `16 MiB`, `2 GiB`, `512 bytes`."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit:,} bytes"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_regular(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them; FileRefused when
    it is absent, a folder, not a regular file, larger than `limit`, or unreadable.
    `what` names the file in messages (`series file`, `journal`)."""
    name = os.fspath(path)
    if not name:
        raise FileRefused(f"an empty path names no {what}")
    try:
        fd = os.open(name, _READ_FLAGS)
    except FileNotFoundError:
        raise FileRefused(f"{name}: no such {what}") from None
    except NotADirectoryError:
        raise FileRefused(f"{name}: no such {what} (a part of the path is not a folder)") \
            from None
    except OSError as exc:
        raise FileRefused(f"{name}: cannot read ({exc.strerror or exc})") from None
    except ValueError:  # a NUL in the name: the OS cannot be asked about it at all
        raise FileRefused(f"{name!r}: not a usable file name") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise FileRefused(f"{name}: is a folder, not a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"{name}: {_kind(info.st_mode)}, not a regular file: "
                              f"a {what} is read only from a regular file")
        if info.st_size > limit:
            raise TooLarge(f"{name}: larger than the {size_text(limit)} limit for a {what}",
                           info.st_size)
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise TooLarge(f"{name}: larger than the {size_text(limit)} limit for a {what}",
                           max(total, os.fstat(fd).st_size))
        return b"".join(chunks)
    except OSError as exc:
        raise FileRefused(f"{name}: cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def regular_or_absent(path: str | Path) -> bool:
    """True when `path` is a regular file (links followed), False when nothing is there;
    FileRefused when something else is (a folder, a FIFO, a device) or it cannot be asked."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except (OSError, ValueError) as exc:
        raise FileRefused(f"{os.fspath(path)!r}: cannot be read "
                          f"({getattr(exc, 'strerror', None) or exc})") from None
    if stat.S_ISREG(info.st_mode):
        return True
    what = "a folder" if stat.S_ISDIR(info.st_mode) else _kind(info.st_mode)
    raise FileRefused(f"{os.fspath(path)}: is {what}, not a regular file")


# --- writing -------------------------------------------------------------------------------


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_target(option: str, target: str, inputs: Iterable[str | Path | None] = ()) -> Path:
    """The file an output option names, resolved through links; FileRefused (naming the
    option) for an empty path, a target that exists and is not a regular file, or one of
    the command's `inputs` (the same file by device and inode, whatever the path says)."""
    if not target:
        raise FileRefused(f"{option}: an empty path names no file")
    try:
        final = Path(os.path.realpath(target))
    except (OSError, ValueError):
        raise FileRefused(f"{option}: {target!r} is not a usable file name") from None
    try:
        info = os.stat(final)
    except (FileNotFoundError, NotADirectoryError):
        info = None
    except (OSError, ValueError) as exc:
        raise FileRefused(f"{option}: cannot write {target} "
                          f"({getattr(exc, 'strerror', None) or exc})") from None
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise FileRefused(f"{option}: {target} is a folder; name a file in it")
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"{option}: {target} is {_kind(info.st_mode)}, not a regular "
                              "file: it is not written to")
        for source in inputs:
            if source is None or not os.fspath(source):
                continue
            try:
                other = os.stat(source)
            except (OSError, ValueError):
                continue
            if _same_file(info, other):
                raise FileRefused(f"{option}: {target} is an input of this command "
                                  f"({os.fspath(source)}); it is not overwritten, choose "
                                  "another file")
    return final


def write_output(option: str, target: str, data: bytes,
                 inputs: Iterable[str | Path | None] = ()) -> None:
    """Write `data` to the file an option names, through a temporary file in the same
    folder renamed into place; FileRefused (one line naming the option) when the target
    is refused (`check_target`) or cannot be written."""
    final = check_target(option, target, list(inputs))
    partial: str | None = None
    try:
        try:
            mode = stat.S_IMODE(os.stat(final).st_mode)
        except OSError:
            mask = os.umask(0)
            os.umask(mask)
            mode = 0o666 & ~mask
        fd, partial = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.",
                                       suffix=".partial")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fchmod(out.fileno(), mode)
        os.replace(partial, final)
        partial = None
    except OSError as exc:
        raise FileRefused(f"{option}: cannot write {target} ({exc.strerror or exc})") from None
    finally:
        if partial is not None:
            with suppress(OSError):
                os.unlink(partial)


__all__ = ["FileRefused", "TooLarge", "check_target", "read_regular", "regular_or_absent", "size_text",
           "write_output"]
