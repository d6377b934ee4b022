"""Torch datasets over a built dataset directory."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from soundgen.data.manifest import Clip, read_manifest
from soundgen.errors import SoundgenError


class AudioCropDataset(Dataset[torch.Tensor]):
    """Random fixed-length crops of a split's clips, read straight from the PCM16 WAVs (only the crop is read).

    Items are float32 tensors ``[1, T]`` with ``T = round(segment_seconds * sample_rate)``, zero-padded when a
    clip is shorter. Clips are weighted by duration through ``crops_per_epoch`` draws, so long files are seen
    in proportion to their length.

    Args:
        dataset_dir: a directory built by ``soundgen data build``.
        split: train, valid or test.
        segment_seconds: crop length.
        sample_rate: the rate the caller expects; must equal the dataset's.
        crops_per_epoch: length of the dataset (default: one crop per ``segment_seconds`` of audio).
        seed: when given, crops are deterministic per index (validation); else random.
    """

    def __init__(
        self,
        dataset_dir: str | Path,
        split: str,
        segment_seconds: float,
        sample_rate: int,
        crops_per_epoch: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.dataset_dir = Path(dataset_dir)
        self.clips: list[Clip] = read_manifest(dataset_dir, split)
        if not self.clips:
            raise SoundgenError(f"split '{split}' of {dataset_dir} has no clips")
        rates = {c.sample_rate for c in self.clips}
        if rates != {sample_rate}:
            raise SoundgenError(
                f"{dataset_dir} holds audio at {sorted(rates)} Hz but {sample_rate} Hz was asked for; "
                f"rebuild it with 'soundgen data build ... --sample-rate {sample_rate}'"
            )
        self.sample_rate = sample_rate
        self.length = int(round(segment_seconds * sample_rate))
        durations = np.array([c.duration for c in self.clips])
        self._cumulative = np.cumsum(durations / durations.sum())
        total = float(durations.sum())
        self.crops_per_epoch = crops_per_epoch or max(1, int(total / segment_seconds))
        self.seed = seed

    def __len__(self) -> int:
        return self.crops_per_epoch

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = random.Random(self.seed * 1_000_003 + index) if self.seed is not None else random
        clip = self.clips[min(int(np.searchsorted(self._cumulative, rng.random())), len(self.clips) - 1)]
        frames = int(round(clip.duration * clip.sample_rate))
        start = rng.randint(0, max(0, frames - self.length))
        samples, _ = sf.read(
            str(clip.path(self.dataset_dir)), start=start, frames=self.length, dtype="float32", always_2d=True
        )
        wav = torch.from_numpy(np.ascontiguousarray(samples[:, :1].T))
        if wav.shape[1] < self.length:
            wav = torch.nn.functional.pad(wav, (0, self.length - wav.shape[1]))
        return wav
