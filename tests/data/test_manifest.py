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
