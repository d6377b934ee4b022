"""Shared helpers: atomic writes leave files with the mode an ordinary open would give them; outputs that
cannot be written are refused up front, in words a user can act on."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from soundgen.audio.io import write_audio
from soundgen.errors import OutputWriteError
from soundgen.utils import atomic_path, atomic_write, check_writable, write_error


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    with atomic_write(tmp_path / "a.json", "w") as f:
        f.write("{}")
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"x")
    wav = write_audio(tmp_path / "c.wav", np.zeros((1, 800), np.float32), 8000)
    expected = 0o666 & ~umask
    assert mode(tmp_path / "a.json") == mode(tmp_path / "b.bin") == mode(wav) == expected
    with open(tmp_path / "plain", "w"):
        pass
    assert mode(tmp_path / "plain") == expected  # the same as an ordinary open


def test_check_writable_refuses_what_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputWriteError, match="is a file, not a folder"):
        check_writable(tmp_path / "file" / "out.wav")
    with pytest.raises(OutputWriteError, match="is a file, not a folder"):
        check_writable(tmp_path / "file" / "missing" / "out.wav")
    with pytest.raises(OutputWriteError, match="it is a folder"):
        check_writable(tmp_path)
    assert check_writable(tmp_path / "new" / "dirs" / "out.wav") == tmp_path / "new" / "dirs" / "out.wav"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the probe leaves nothing; folders come later


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_writable_refuses_a_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputWriteError, match="no permission to write in"):
            check_writable(folder / "out.wav")
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.ENOSPC, "the disk is full"), (errno.EACCES, "no permission to write in"), (errno.EROFS, "read-only")],
)
def test_write_errors_say_what_to_do(tmp_path: Path, code: int, words: str) -> None:
    error = write_error(tmp_path / "a.wav", OSError(code, os.strerror(code)))
    assert str(error).startswith(f"cannot write {tmp_path / 'a.wav'}: ") and words in str(error)
