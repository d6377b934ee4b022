"""Shared helpers: atomic writes leave files with the mode an ordinary open would give them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from soundgen.audio.io import write_audio
from soundgen.utils import atomic_path, atomic_write


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
