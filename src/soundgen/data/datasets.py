"""Torch datasets over a built dataset directory."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
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
        pitch_shift_semitones: resample each crop by a random factor ``2 ** (u / 12)``, ``u`` drawn uniformly
            from ``[-s, s]``: a crop of ``T * factor`` samples is read and resampled (band-limited, soxr) to ``T``,
            so every frequency in it is multiplied by the factor and its length divided by it. 0 = off.
    """

    def __init__(
        self,
        dataset_dir: str | Path,
        split: str,
        segment_seconds: float,
        sample_rate: int,
        crops_per_epoch: int | None = None,
        seed: int | None = None,
        pitch_shift_semitones: float = 0.0,
    ) -> None:
        if not 0.0 <= pitch_shift_semitones <= 12.0:
            raise SoundgenError(f"pitch_shift_semitones={pitch_shift_semitones} must be between 0 and 12")
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
        self.pitch_shift_semitones = pitch_shift_semitones

    def __len__(self) -> int:
        return self.crops_per_epoch

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = random.Random(self.seed * 1_000_003 + index) if self.seed is not None else random
        clip = self.clips[min(int(np.searchsorted(self._cumulative, rng.random())), len(self.clips) - 1)]
        factor = 1.0
        if self.pitch_shift_semitones:
            factor = 2.0 ** (rng.uniform(-1.0, 1.0) * self.pitch_shift_semitones / 12.0)
        want = self.length if factor == 1.0 else int(np.ceil(self.length * factor)) + 32  # + the resampler's edge
        frames = int(round(clip.duration * clip.sample_rate))
        start = rng.randint(0, max(0, frames - want))
        path = str(clip.path(self.dataset_dir))
        samples, _ = sf.read(path, start=start, frames=want, dtype="float32", always_2d=True)
        mono = samples[:, 0]
        if factor != 1.0 and len(mono) > 1:
            # read at rate * factor, played at rate: frequencies x factor
            mono = soxr.resample(mono, self.sample_rate * factor, self.sample_rate, quality="MQ")[: self.length]
        wav = torch.from_numpy(np.ascontiguousarray(mono[None, :], dtype=np.float32))
        if wav.shape[1] < self.length:
            wav = torch.nn.functional.pad(wav, (0, self.length - wav.shape[1]))
        return wav
