"""Hostile command lines and files: every command answers with a diagnostic or a one-line
error and exit 1 or 2 — never a traceback, never exit 3, never a value ignored in silence.

The hostile files are made in tmp_path by the tests; nothing big is committed. Where the
test runs as root (chmod does not deny root), an unreadable file or folder is simulated by
making `Path.open` / `os.scandir` raise the PermissionError the OS would raise.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stratplan.cli import main
from stratplan.dsl.parser import MAX_FILE_BYTES
from tests.conftest import EXAMPLES

FILE_COMMANDS = ["lint", "fmt", "graph", "export", "run"]
MARKET_COMMANDS = ["lint", "graph", "export", "run"]
ONE_FILE_COMMANDS = ["graph", "export", "run"]
GOOD = (EXAMPLES / "btc_basis.plan").read_text(encoding="utf-8")


def _main(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(err: str, fragment: str) -> None:
    assert err.startswith("stratplan: error: "), err
    assert len(err.strip().splitlines()) == 1, err
    assert fragment in err, err


def deny_read(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a file unreadable: chmod 000, or (as root, whom chmod does not stop) an open
    that raises the PermissionError the OS would."""
    path.chmod(0)
    if not os.access(path, os.R_OK):
        return
    path.chmod(0o644)
    real_open = Path.open

    def refusing_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if os.path.abspath(self) == os.path.abspath(path):
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)
    monkeypatch.setattr(Path, "open", refusing_open)
    real_os_open = os.open  # the one file opener (dsl/files.py) opens with os.open

    def refusing_os_open(name: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if isinstance(name, (str, os.PathLike)) and \
                os.path.abspath(name) == os.path.abspath(path):
            raise PermissionError(13, "Permission denied", str(name))
        return real_os_open(name, flags, *args, **kwargs)
    monkeypatch.setattr(os, "open", refusing_os_open)


def deny_listing(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a folder unlistable: chmod 000, or (as root) an os.scandir that refuses it."""
    folder.chmod(0)
    try:
        os.listdir(folder)
    except PermissionError:
        return
    folder.chmod(0o755)
    real_scandir = os.scandir

    def refusing_scandir(target: Any = ".") -> Any:
        if os.path.abspath(target) == os.path.abspath(folder):
            raise PermissionError(13, "Permission denied", str(target))
        return real_scandir(target)
    monkeypatch.setattr(os, "scandir", refusing_scandir)


@pytest.fixture(autouse=True)
def _restore_modes(tmp_path: Path):
    yield
    for root, dirs, files in os.walk(tmp_path):  # let pytest clean up what chmod 000 locked
        for name in dirs + files:
            try:
                os.chmod(os.path.join(root, name), 0o755, follow_symlinks=False)
            except (OSError, NotImplementedError):
                pass


# --- paths that name no usable plan file: a one-line error, exit 2 ------------------------

Maker = Callable[[Path, pytest.MonkeyPatch], str]


def _missing(tmp: Path, mp: pytest.MonkeyPatch) -> str:
    return str(tmp / "missing.plan")


def _empty_path(tmp: Path, mp: pytest.MonkeyPatch) -> str:
    return ""


def _nul_in_path(tmp: Path, mp: pytest.MonkeyPatch) -> str:
    return str(tmp / "a\x00b.plan")


def _long_name(tmp: Path, mp: pytest.MonkeyPatch) -> str:
    return str(tmp / ("a" * 5000 + ".plan"))


def _under_a_file(tmp: Path, mp: pytest.MonkeyPatch) -> str:
    (tmp / "file.plan").write_text(GOOD)
    return str(tmp / "file.plan" / "inner.plan")


def _fifo(tmp: Path, mp: pytest.MonkeyPatch) -> str:
    os.mkfifo(tmp / "pipe.plan")
    return str(tmp / "pipe.plan")


def _dangling_link(tmp: Path, mp: pytest.MonkeyPatch) -> str:
    (tmp / "dangling.plan").symlink_to(tmp / "nowhere.plan")
    return str(tmp / "dangling.plan")


def _link_loop(tmp: Path, mp: pytest.MonkeyPatch) -> str:
    (tmp / "loop.plan").symlink_to(tmp / "loop.plan")
    return str(tmp / "loop.plan")


def _unreadable_file(tmp: Path, mp: pytest.MonkeyPatch) -> str:
    path = tmp / "locked.plan"
    path.write_text(GOOD)
    deny_read(path, mp)
    return str(path)


PATH_ERRORS: dict[str, tuple[Maker, str]] = {
    "missing": (_missing, "no such file or folder"),
    "empty path": (_empty_path, "an empty path names no file or folder"),
    "NUL in path": (_nul_in_path, "no such file or folder: "),
    "name too long": (_long_name, "cannot read"),
    "path under a file": (_under_a_file, "cannot read"),
    "fifo": (_fifo, "is not a file or folder"),
    "dangling link": (_dangling_link, "no such file or folder"),
    "link loop": (_link_loop, "cannot read"),
    "unreadable file": (_unreadable_file, "Permission denied"),
}


@pytest.mark.parametrize("kind", list(PATH_ERRORS))
@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_a_path_that_is_no_plan_file_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch,
                                                               command, kind):
    make, fragment = PATH_ERRORS[kind]
    code, out, err = _main(capsys, command, make(tmp_path, monkeypatch))
    assert code == 2, (out, err)
    _one_line_error(err, fragment)
    assert "\x00" not in err  # a NUL in the path is shown as \x00


# --- folders -----------------------------------------------------------------------------


def _empty_folder(tmp: Path, mp: pytest.MonkeyPatch) -> str:
    (tmp / "empty").mkdir()
    return str(tmp / "empty")


def _folder_with_unreadable_subfolder(tmp: Path, mp: pytest.MonkeyPatch) -> str:
    (tmp / "tree" / "locked").mkdir(parents=True)
    (tmp / "tree" / "a.plan").write_text(GOOD)
    (tmp / "tree" / "locked" / "b.plan").write_text(GOOD)
    deny_listing(tmp / "tree" / "locked", mp)
    return str(tmp / "tree")


def _unreadable_folder(tmp: Path, mp: pytest.MonkeyPatch) -> str:
    (tmp / "locked").mkdir()
    (tmp / "locked" / "a.plan").write_text(GOOD)
    deny_listing(tmp / "locked", mp)
    return str(tmp / "locked")


def _folder_with_unreadable_plan(tmp: Path, mp: pytest.MonkeyPatch) -> str:
    (tmp / "tree").mkdir()
    (tmp / "tree" / "a.plan").write_text(GOOD)
    (tmp / "tree" / "b.plan").write_text(GOOD)
    deny_read(tmp / "tree" / "b.plan", mp)
    return str(tmp / "tree")


def _folder_with_dangling_plan(tmp: Path, mp: pytest.MonkeyPatch) -> str:
    (tmp / "tree").mkdir()
    (tmp / "tree" / "a.plan").write_text(GOOD)
    (tmp / "tree" / "b.plan").symlink_to(tmp / "nowhere")
    return str(tmp / "tree")


def _folder_with_fifo_plan(tmp: Path, mp: pytest.MonkeyPatch) -> str:
    (tmp / "tree").mkdir()
    (tmp / "tree" / "a.plan").write_text(GOOD)
    os.mkfifo(tmp / "tree" / "b.plan")
    return str(tmp / "tree")


FOLDER_ERRORS: dict[str, tuple[Maker, str]] = {
    "empty folder": (_empty_folder, "no *.plan files in"),
    "unreadable subfolder": (_folder_with_unreadable_subfolder, "cannot read folder"),
    "unreadable folder": (_unreadable_folder, "cannot read folder"),
    "unreadable plan in folder": (_folder_with_unreadable_plan, "Permission denied"),
    "dangling *.plan link in folder": (_folder_with_dangling_plan, "No such file"),
    "fifo *.plan in folder": (_folder_with_fifo_plan, "is not a file or folder"),
}


@pytest.mark.parametrize("kind", list(FOLDER_ERRORS))
@pytest.mark.parametrize("command", ["lint", "fmt"])
def test_a_folder_that_cannot_be_searched_whole_is_one_line_and_exit_2(
        capsys, tmp_path, monkeypatch, command, kind):
    make, fragment = FOLDER_ERRORS[kind]
    code, out, err = _main(capsys, command, make(tmp_path, monkeypatch))
    assert code == 2, (out, err)
    _one_line_error(err, fragment)
    assert "checked" not in out  # no partial "1 file checked" report


@pytest.mark.parametrize("kind", list(FOLDER_ERRORS))
@pytest.mark.parametrize("command", ONE_FILE_COMMANDS)
def test_a_folder_where_one_file_is_needed_is_one_line_and_exit_2(
        capsys, tmp_path, monkeypatch, command, kind):
    make, _ = FOLDER_ERRORS[kind]
    code, _, err = _main(capsys, command, make(tmp_path, monkeypatch))
    assert code == 2
    _one_line_error(err, "is a folder; this command takes one plan file")


def test_unreadable_subfolder_is_reported_not_skipped(capsys, tmp_path, monkeypatch):
    folder = _folder_with_unreadable_subfolder(tmp_path, monkeypatch)
    code, out, err = _main(capsys, "lint", "--format", "json", folder)
    assert code == 2 and out == ""
    _one_line_error(err, f"cannot read folder {tmp_path / 'tree' / 'locked'}: Permission denied")


def test_links_to_folders_are_not_followed_but_files_are(capsys, tmp_path):
    (tmp_path / "tree").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "a.plan").write_text(GOOD)
    (tmp_path / "tree" / "loop").symlink_to(tmp_path / "tree")  # no endless walk
    (tmp_path / "tree" / "linked.plan").symlink_to(tmp_path / "elsewhere" / "a.plan")
    (tmp_path / "tree" / "dir.plan").mkdir()  # a folder named *.plan is searched, not read
    (tmp_path / "tree" / "dir.plan" / "inner.plan").write_text(GOOD)
    code, out, err = _main(capsys, "lint", "--format", "json", str(tmp_path / "tree"))
    assert code == 0, err
    assert '"files": 2' in out


# --- file contents that are no plan: a diagnostic, exit 1 (fmt: 2) ------------------------

def _sparse(size: int) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with path.open("wb") as handle:
            handle.truncate(size)
    return write


CONTENTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "binary": (lambda p: p.write_bytes(bytes(range(256)) * 4), "SP100"),
    "empty": (lambda p: p.write_bytes(b""), "SP100"),
    "NUL byte": (lambda p: p.write_bytes(b"plan t\x00\n"), "SP100"),
    "invalid UTF-8": (lambda p: p.write_bytes(b"plan t # \xff\xfe\n"), "SP100"),
    "UTF-16": (lambda p: p.write_bytes("plan t\n".encode("utf-16")), "SP100"),
    "BOM only": (lambda p: p.write_bytes(b"\xef\xbb\xbf"), "SP100"),
    "line ends only": (lambda p: p.write_bytes(b"\r\r\n\n\r"), "SP100"),
    "control characters": (lambda p: p.write_bytes(b"\x1b[2J\x07\x08 plan t"), "SP100"),
    "one byte over the limit": (_sparse(MAX_FILE_BYTES + 1), "SP110"),
    "3 GiB sparse": (_sparse(3 * 1024**3), "SP110"),
}


@pytest.mark.parametrize("kind", list(CONTENTS))
@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_a_file_that_is_no_plan_gets_a_diagnostic(capsys, tmp_path, command, kind):
    write, diagnostic = CONTENTS[kind]
    path = tmp_path / "hostile.plan"
    write(path)
    code, out, err = _main(capsys, command, str(path))
    assert code == (2 if command == "fmt" else 1), (out, err)
    shown = out if command == "lint" else err
    assert f"error[{diagnostic}]" in shown
    assert "1 file checked: 1 error" in shown
    assert "internal error" not in err and "Traceback" not in out + err
    assert "\x1b" not in out + err


# --- --market ----------------------------------------------------------------------------

MARKETS: dict[str, tuple[Callable[[Path], str], str]] = {
    "missing": (lambda t: str(t / "missing.yaml"), "no such market file"),
    "folder": (lambda t: str(t), "is a folder"),
    "NUL in path": (lambda t: str(t / "m\x00.yaml"), "not a usable file name"),
    "empty path": (lambda t: "", "--market"),
    "invalid YAML": (lambda t: _write(t / "m.yaml", b"prices: [1,\n"), "m.yaml"),
    "not a mapping": (lambda t: _write(t / "m.yaml", b"- 1\n- 2\n"), "m.yaml"),
    "wrong shape": (lambda t: _write(t / "m.yaml", b"prices: 5\n"), "prices"),
    "binary": (lambda t: _write(t / "m.yaml", bytes(range(256))), "not UTF-8"),
    "empty": (lambda t: _write(t / "m.yaml", b""), "m.yaml"),
    "NUL byte": (lambda t: _write(t / "m.yaml", b"prices: {ETH: 1}\x00\n"), "m.yaml"),
    "fifo": (lambda t: _fifo_market(t), "not a regular file"),
    "3 GiB sparse": (lambda t: _sparse_market(t), "larger than"),
}


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _fifo_market(tmp: Path) -> str:
    os.mkfifo(tmp / "pipe.yaml")
    return str(tmp / "pipe.yaml")


def _sparse_market(tmp: Path) -> str:
    _sparse(3 * 1024**3)(tmp / "big.yaml")
    return str(tmp / "big.yaml")


@pytest.mark.parametrize("kind", list(MARKETS))
@pytest.mark.parametrize("command", MARKET_COMMANDS)
def test_a_bad_market_option_is_one_line_and_exit_2(capsys, tmp_path, command, kind):
    make, fragment = MARKETS[kind]
    plan = tmp_path / "p.plan"
    plan.write_text(GOOD)
    market = make(tmp_path)
    code, out, err = _main(capsys, command, "--market", market, str(plan))
    assert code == 2, (out, err)
    _one_line_error(err, "--market")
    assert fragment in err


# --- --steps and explain -----------------------------------------------------------------

@pytest.mark.parametrize("value", ["junk", "", " 5", "5 ", "+5", "1.5", "1e3", "1_000", "-1",
                                   "\uff15", "\u0665", "9" * 5000, "all ", "ALL", "\x1b[2J"])
def test_steps_junk_is_one_line_and_exit_2(capsys, value):
    code, out, err = _main(capsys, "run", str(EXAMPLES / "btc_basis.plan"), "--steps", value)
    assert code == 2 and out == ""
    _one_line_error(err, "argument --steps: ")
    assert "\x1b" not in err


@pytest.mark.parametrize("value", ["SP999", "", "x", "SP1000000000", "SP100\x00", " SP100",
                                   "../SP100", "\x1b[2J", "\u202eSP100", "SP" + "1" * 5000])
def test_unknown_explain_code_is_one_line_and_exit_2(capsys, value):
    code, out, err = _main(capsys, "explain", value)
    assert code == 2 and out == ""
    _one_line_error(err, "unknown code")
    assert "\x1b" not in err and "\u202e" not in err and "\x00" not in err


# --- file size: checked before reading, never more than the limit + 1 bytes read -------------

def _spy_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record how many bytes each read of a file asked for and got (the one file opener,
    dsl/files.py, reads with os.read)."""
    log: list[tuple[int, int]] = []
    real_read = os.read

    def spying_read(fd: int, size: int) -> bytes:
        data = real_read(fd, size)
        log.append((size, len(data)))
        return data
    monkeypatch.setattr(os, "read", spying_read)
    return log


@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_a_huge_sparse_file_is_sp110_from_its_size_without_reading_it(
        capsys, tmp_path, monkeypatch, command):
    path = tmp_path / "huge.plan"
    _sparse(3 * 1024**3)(path)
    log = _spy_reads(monkeypatch)
    code, out, err = _main(capsys, command, str(path))
    assert code in (1, 2)
    assert "error[SP110] the file is 3,221,225,472 bytes, above the limit of 16,777,216" in \
        out + err
    assert log == []  # the size alone decided: not one byte was read


def test_a_file_larger_than_its_stat_says_is_read_only_to_the_limit(capsys, tmp_path,
                                                                    monkeypatch):
    # A file that grows after the size check (or a special file whose size says 0).
    path = tmp_path / "growing.plan"
    _sparse(MAX_FILE_BYTES + 4096)(path)
    log = _spy_reads(monkeypatch)
    real_fstat = os.fstat

    class _Small:
        st_size = 10
        st_mode = stat.S_IFREG | 0o644

    calls: list[int] = []

    def lying_fstat(fd: int) -> Any:
        calls.append(fd)
        return _Small() if len(calls) == 1 else real_fstat(fd)
    monkeypatch.setattr(os, "fstat", lying_fstat)
    code, out, _ = _main(capsys, "lint", str(path))
    assert code == 1 and "error[SP110]" in out
    assert sum(got for _, got in log) <= MAX_FILE_BYTES + 1
    assert all(0 <= asked <= MAX_FILE_BYTES + 1 for asked, _ in log)


def test_a_file_at_the_limit_is_read_and_parsed(capsys, tmp_path):
    path = tmp_path / "limit.plan"
    plan = b"plan t\nholdings { wallet: 10 ETH }\nphase p {\n  wrap 1 ETH\n}\n"
    path.write_bytes(plan + b"#" * (MAX_FILE_BYTES - len(plan) - 1) + b"\n")
    assert path.stat().st_size == MAX_FILE_BYTES
    code, out, _ = _main(capsys, "lint", "--format", "json", str(path))
    assert code == 0 and '"errors": 0' in out


# --- fmt cannot write ----------------------------------------------------------------------

def test_fmt_that_cannot_write_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch):
    path = tmp_path / "p.plan"
    path.write_text("plan  p\nphase a {wrap 1 ETH}\n")

    def refuse(source: object, target: object) -> None:
        raise PermissionError(13, "Permission denied", str(target))
    monkeypatch.setattr(os, "replace", refuse)  # fmt writes a temporary file, then renames
    code, _, err = _main(capsys, "fmt", str(path))
    assert code == 2
    _one_line_error(err, f"cannot write {path}: Permission denied")


# --- the same through a real process: no traceback reaches stderr -----------------------------

def _hostile_files(tmp: Path) -> dict[str, str]:
    (tmp / "binary.plan").write_bytes(bytes(range(256)))
    (tmp / "empty.plan").write_bytes(b"")
    (tmp / "folder").mkdir()
    _sparse(3 * 1024**3)(tmp / "huge.plan")
    (tmp / "good.plan").write_text(GOOD)
    (tmp / "bad.yaml").write_bytes(b"prices: [1,\n")
    names = {"binary": "binary.plan", "empty": "empty.plan", "folder": "folder",
             "huge": "huge.plan", "good": "good.plan", "bad_yaml": "bad.yaml",
             "missing": "missing.plan"}
    return {key: str(tmp / name) for key, name in names.items()}


@pytest.mark.parametrize("argv", [
    ["lint", "{binary}", "{empty}", "{huge}"],
    ["fmt", "--check", "{binary}"],
    ["graph", "{folder}"],
    ["export", "{missing}"],
    ["run", "--market", "{folder}", "{good}"],
    ["run", "--market", "{bad_yaml}", "{good}"],
    ["run", "--steps", "junk", "{good}"],
    ["explain", "SP\x1b[2J"],
])
def test_hostile_input_through_a_real_process(tmp_path, argv):
    files = _hostile_files(tmp_path)
    run = subprocess.run([sys.executable, "-m", "stratplan", *(a.format(**files) for a in argv)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode in (1, 2), run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert "internal error" not in run.stderr
    assert "\x1b" not in run.stderr + run.stdout
    if run.returncode == 2 and "[SP" not in run.stderr:
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr
