"""soundgen.audio.writer: audio written block by block equals audio written at once, and a failure publishes
nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundgen.audio.io import read_audio, write_audio
from soundgen.audio.writer import AudioFileWriter
from soundgen.errors import AudioWriteError, InvalidAudioError, OutputWriteError

SR = 16000


def noise(seconds: float, channels: int = 2, sr: int = SR) -> np.ndarray:
    return (0.3 * np.random.default_rng(0).standard_normal((channels, int(seconds * sr)))).astype(np.float32)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_blocks_equal_one_write(tmp_path: Path, fmt: str) -> None:
    x = noise(1.3)
    whole = write_audio(tmp_path / f"whole.{fmt}", x, SR)
    with AudioFileWriter(tmp_path / f"blocks.{fmt}", SR, 2) as out:
        for start in range(0, x.shape[1], 3001):  # blocks that divide nothing evenly
            out.write(x[:, start : start + 3001])
    a, rate = sf.read(whole, always_2d=True)
    b, _ = sf.read(tmp_path / f"blocks.{fmt}", always_2d=True)
    assert rate == SR and np.array_equal(a, b)


def test_streamed_opus_is_resampled_like_a_whole_write(tmp_path: Path) -> None:
    x = noise(1.0, channels=1, sr=22050)
    with AudioFileWriter(tmp_path / "a.opus", 22050, 1) as out:
        for start in range(0, x.shape[1], 4000):
            out.write(x[:, start : start + 4000])
    assert sf.info(str(tmp_path / "a.opus")).samplerate == 48000  # opus has no 22.05 kHz
    assert abs(read_audio(tmp_path / "a.opus").duration - 1.0) < 0.05


def test_a_failure_inside_the_block_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="decoder broke"), AudioFileWriter(tmp_path / "a.ogg", SR, 1) as out:
        out.write(noise(0.5, channels=1))
        raise RuntimeError("decoder broke")
    bad = noise(0.1, channels=1)
    bad[0, 10] = np.nan
    with pytest.raises(InvalidAudioError), AudioFileWriter(tmp_path / "b.wav", SR, 1) as out:
        out.write(bad)
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file


def test_unusable_outputs_fail_before_writing(tmp_path: Path) -> None:
    with pytest.raises(AudioWriteError, match="suffix"):
        AudioFileWriter(tmp_path / "a.xyz", SR, 1)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputWriteError, match="cannot write"), AudioFileWriter(tmp_path / "file" / "a.wav", SR, 1):
        pass
    with pytest.raises(AudioWriteError, match="channels"), AudioFileWriter(tmp_path / "a.wav", SR, 2) as out:
        out.write(noise(0.1, channels=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
