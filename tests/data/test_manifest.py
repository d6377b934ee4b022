"""Manifest round trip and the crop dataset training reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from soundgen.audio.io import write_audio
from soundgen.data.datasets import AudioCropDataset
from soundgen.data.manifest import Clip, read_manifest, write_manifest
from soundgen.errors import CorruptFileError, SoundgenError

SR = 16000


def make_dataset(root: Path, durations: list[float]) -> list[Clip]:
    clips = []
    for i, d in enumerate(durations):
        x = np.full((1, int(d * SR)), (i + 1) / 10, np.float32)
        loc = f"audio/{i:02d}/clip{i}.wav"
        write_audio(root / loc, x, SR)
        clips.append(Clip(id=f"clip{i}", location=loc, duration=d, sample_rate=SR, caption=f"clip {i}"))
    write_manifest(root, "train", clips)
    return clips


def test_manifest_round_trip(tmp_path: Path) -> None:
    clips = make_dataset(tmp_path, [0.5, 1.0])
    assert read_manifest(tmp_path, "train") == clips
    (tmp_path / "train" / "manifest.jsonl").write_text("{not json\n")
    with pytest.raises(CorruptFileError, match="manifest.jsonl:1"):
        read_manifest(tmp_path, "train")
    with pytest.raises(CorruptFileError, match="soundgen data build"):
        read_manifest(tmp_path, "valid")


def test_crops_have_fixed_length_and_come_from_the_clips(tmp_path: Path) -> None:
    make_dataset(tmp_path, [0.25, 2.0])
    ds = AudioCropDataset(tmp_path, "train", segment_seconds=0.5, sample_rate=SR, seed=0)
    assert len(ds) == 4  # 2.25 s of audio in 0.5 s crops
    values = set()
    for i in range(len(ds)):
        crop = ds[i]
        assert crop.shape == (1, SR // 2) and crop.dtype == torch.float32
        values.add(round(float(crop[0, 0]), 2))
    assert values <= {0.1, 0.2}
    short = [ds[i] for i in range(40) if abs(float(ds[i][0, 0]) - 0.1) < 1e-3]
    for crop in short:  # the 0.25 s clip is zero-padded to 0.5 s
        assert torch.all(crop[0, SR // 4 + 1 :] == 0)
    assert torch.equal(ds[3], ds[3])  # seeded crops are deterministic


def test_wrong_sample_rate_is_a_clear_error(tmp_path: Path) -> None:
    make_dataset(tmp_path, [0.5])
    with pytest.raises(SoundgenError, match="--sample-rate 24000"):
        AudioCropDataset(tmp_path, "train", 0.5, 24000)


def _peak_frequency(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * SR / len(x))


def test_pitch_shift_moves_every_frequency_within_its_range(tmp_path: Path) -> None:
    t = np.arange(3 * SR) / SR
    write_audio(tmp_path / "audio/tone.wav", (0.5 * np.sin(2 * np.pi * 1000.0 * t))[None].astype(np.float32), SR)
    write_manifest(tmp_path, "train", [Clip(id="tone", location="audio/tone.wav", duration=3.0, sample_rate=SR,
                                            caption="a 1 kHz tone")])
    plain = AudioCropDataset(tmp_path, "train", segment_seconds=1.0, sample_rate=SR, seed=0)
    assert abs(_peak_frequency(plain[0][0].numpy()) - 1000.0) <= 1.0  # off: the clip as it is
    shifted = AudioCropDataset(tmp_path, "train", segment_seconds=1.0, sample_rate=SR, seed=0, pitch_shift_semitones=2)
    peaks = []
    for i in range(24):
        crop = shifted[i]
        assert crop.shape == (1, SR) and crop.dtype == torch.float32
        assert torch.isfinite(crop).all() and float(crop[0, -100:].abs().max()) > 0.3  # no padding at the end
        peaks.append(_peak_frequency(crop[0].numpy()))
    lo, hi = 1000.0 * 2 ** (-2 / 12), 1000.0 * 2 ** (2 / 12)
    assert all(lo - 2 <= f <= hi + 2 for f in peaks), peaks
    assert min(peaks) < 960 and max(peaks) > 1040  # both ways, not only near the edges of the range
    assert len({round(f) for f in peaks}) > 12  # a continuum of frequencies, not a few
    assert torch.equal(shifted[5], shifted[5])  # seeded crops stay deterministic
    with pytest.raises(SoundgenError, match="pitch_shift_semitones"):
        AudioCropDataset(tmp_path, "train", 1.0, SR, pitch_shift_semitones=-1)
