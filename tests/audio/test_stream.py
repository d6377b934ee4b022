"""Block decoding to mono at a target rate, and reading only the tail of a long file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from soundgen.audio.stream import decode_mono, read_audio_tail
from soundgen.errors import AudioReadError


def stereo(path: Path, seconds: float, sr: int = 44100, fmt: str | None = None) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = np.clip(0.1 * rng.standard_normal((int(seconds * sr), 2)), -0.9, 0.9).astype(np.float32)
    sf.write(str(path), x, sr, format=fmt, subtype="FLOAT" if fmt is None else None)
    return x


def test_block_decoding_equals_decoding_whole(tmp_path: Path) -> None:
    x = stereo(tmp_path / "a.wav", 3.3)
    whole = soxr.resample(x.mean(axis=1, dtype=np.float32), 44100, 16000)
    d = decode_mono(tmp_path / "a.wav", sample_rate=16000)
    assert d.samples.shape == (1, len(whole)) and d.source_frames == len(x) and d.declared_frames == len(x)
    assert np.array_equal(d.samples[0], whole)
    with open(tmp_path / "a.wav", "rb") as f:  # a handle (an archive member) decodes the same
        assert np.array_equal(decode_mono(io.BytesIO(f.read()), sample_rate=16000).samples, d.samples)


def test_decoding_stops_at_the_duration_limit(tmp_path: Path) -> None:
    stereo(tmp_path / "a.wav", 2.0)
    with pytest.raises(AudioReadError, match="longer than"):
        decode_mono(tmp_path / "a.wav", sample_rate=16000, max_duration=1.0)


@pytest.mark.parametrize("fmt", [None, "FLAC", "OGG"])
def test_the_tail_is_the_last_seconds(tmp_path: Path, fmt: str | None) -> None:
    path = tmp_path / f"a.{(fmt or 'wav').lower()}"
    x = stereo(path, 4.0, sr=16000, fmt=fmt)
    audio, seconds = read_audio_tail(path, 1.5)
    assert audio.sample_rate == 16000 and abs(seconds - 4.0) < 0.01 and audio.samples.shape == (2, 24000)
    if fmt != "OGG":  # lossless: the very samples
        assert np.allclose(audio.samples, x[-24000:].T, atol=1e-4)
    short, seconds = read_audio_tail(path, 10.0)
    assert short.samples.shape[1] == len(x) and abs(seconds - 4.0) < 0.01
