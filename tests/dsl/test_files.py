"""The one file opener and the one output writer (dsl/files.py, issue 23): a FIFO, a device
or a folder is refused before a byte is read (never a hang, never a read without end), sizes
are bounded, and an output never replaces an input, a folder or a device, and is written
whole or not at all."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from stratplan.dsl.files import (
    FileRefused,
    TooLarge,
    check_target,
    read_regular,
    regular_or_absent,
    size_text,
    write_output,
)


def test_a_regular_file_is_read_whole(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"time,price.BTC\n0,1\n")
    assert read_regular(path, 100) == b"time,price.BTC\n0,1\n"
    assert read_regular(str(path), 19) == b"time,price.BTC\n0,1\n"  # exactly the limit


def test_a_fifo_is_refused_at_once_without_a_writer(tmp_path):
    fifo = tmp_path / "s.csv"
    os.mkfifo(fifo)
    done: list[BaseException] = []

    def read() -> None:
        try:
            read_regular(fifo, 1000, "series file")
        except FileRefused as exc:
            done.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert "FIFO" in str(done[0]) and "not a regular file" in str(done[0])
    assert str(fifo) in str(done[0])


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_is_refused_before_a_byte_is_read(device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    with pytest.raises(FileRefused, match="a device, not a regular file"):
        read_regular(device, 10**9, "series file")


def test_a_folder_a_missing_file_and_a_nul_are_one_line_each(tmp_path):
    with pytest.raises(FileRefused, match="is a folder, not a plan file"):
        read_regular(tmp_path, 100, "plan file")
    with pytest.raises(FileRefused, match="no such plan file"):
        read_regular(tmp_path / "missing.plan", 100, "plan file")
    with pytest.raises(FileRefused, match="a part of the path is not a folder"):
        (tmp_path / "f").write_text("x")
        read_regular(tmp_path / "f" / "g", 100, "plan file")
    with pytest.raises(FileRefused, match="not a usable file name"):
        read_regular(str(tmp_path / "a\x00b"), 100)
    with pytest.raises(FileRefused, match="an empty path"):
        read_regular("", 100)


def test_a_file_over_the_limit_is_refused_from_its_size_and_says_the_size(tmp_path):
    path = tmp_path / "big"
    with path.open("wb") as handle:
        handle.truncate(3 * 1024**3)  # sparse: nothing is written, nothing must be read
    with pytest.raises(TooLarge) as caught:
        read_regular(path, 2 * 1024**3, "series file")
    assert caught.value.size == 3 * 1024**3
    assert "larger than the 2 GiB limit for a series file" in str(caught.value)


def test_a_link_to_a_regular_file_is_followed_and_a_dangling_one_is_missing(tmp_path):
    (tmp_path / "real").write_text("data")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert read_regular(tmp_path / "link", 10) == b"data"
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileRefused, match="no such"):
        read_regular(tmp_path / "dangling", 10)


def test_regular_or_absent(tmp_path):
    assert regular_or_absent(tmp_path / "none") is False
    (tmp_path / "f").write_text("x")
    assert regular_or_absent(tmp_path / "f") is True
    with pytest.raises(FileRefused, match="a folder"):
        regular_or_absent(tmp_path)


def test_size_text():
    assert (size_text(16 * 1024**2), size_text(2 * 1024**3), size_text(1000)) == \
        ("16 MiB", "2 GiB", "1,000 bytes")


# --- writing ----------------------------------------------------------------------------


def test_an_output_never_replaces_an_input_of_the_command(tmp_path):
    plan = tmp_path / "p.plan"
    plan.write_text("plan p\n")
    for target in (str(plan), str(tmp_path / "." / "p.plan")):
        with pytest.raises(FileRefused, match=r"--plot: .* is an input of this command"):
            write_output("--plot", target, b"\x89PNG", [plan])
    link = tmp_path / "link.png"
    link.symlink_to(plan)  # the same file by another name
    with pytest.raises(FileRefused, match="is an input of this command"):
        write_output("--plot", str(link), b"\x89PNG", [str(plan)])
    hard = tmp_path / "hard.png"
    os.link(plan, hard)
    with pytest.raises(FileRefused, match="is an input"):
        write_output("-o", str(hard), b"x", [plan])
    assert plan.read_text() == "plan p\n"


@pytest.mark.parametrize("target", [".", "/dev/full", "/dev/null"])
def test_an_output_is_never_a_folder_or_a_device(tmp_path, target, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if not os.path.exists(target):
        pytest.skip(f"no {target}")
    with pytest.raises(FileRefused, match="--plot: "):
        write_output("--plot", target, b"data")


def test_an_output_under_a_file_or_empty_is_refused(tmp_path):
    (tmp_path / "p.plan").write_text("x")
    with pytest.raises(FileRefused, match="--plot: cannot write"):
        write_output("--plot", str(tmp_path / "p.plan" / "x.png"), b"data")
    with pytest.raises(FileRefused, match="--plot: an empty path names no file"):
        check_target("--plot", "")


def test_an_output_is_written_through_a_temporary_file_and_keeps_the_old_one_on_failure(
        tmp_path, monkeypatch):
    target = tmp_path / "out.csv"
    target.write_bytes(b"old")
    target.chmod(0o640)
    write_output("-o", str(target), b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # an existing file keeps its mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temporary left

    def failing_replace(*args: object) -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(FileRefused, match="No space left"):
        write_output("-o", str(target), b"newer")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_new_output_gets_the_usual_mode_and_a_link_writes_its_target(tmp_path):
    target = tmp_path / "new.png"
    write_output("--plot", str(target), b"png")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    real = tmp_path / "real.png"
    real.write_bytes(b"old")
    (tmp_path / "via.png").symlink_to(real)
    write_output("--plot", str(tmp_path / "via.png"), b"fresh")
    assert real.read_bytes() == b"fresh" and (tmp_path / "via.png").is_symlink()


def test_check_target_resolves_and_accepts_a_new_file(tmp_path):
    assert check_target("-o", str(tmp_path / "x.csv"), [tmp_path / "in.csv"]) == \
        Path(os.path.realpath(tmp_path / "x.csv"))
