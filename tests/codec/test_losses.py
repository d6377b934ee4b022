"""Reconstruction losses: what each one can and cannot see."""

from __future__ import annotations

import numpy as np
import torch

from soundgen.codec.config import CodecRunConfig
from soundgen.codec.losses import MultiScaleLogSTFTLoss, MultiScaleMelLoss
from soundgen.train.codec import CodecTrainer


def _harmonic_tone(noise_db: float, seed: int = 0) -> torch.Tensor:
    """A 220 Hz tone with 15 harmonics, 1 s at 16 kHz, plus white noise ``noise_db`` below its peak."""
    t = np.arange(16000) / 16000
    x = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 16))
    x = 0.5 * x / np.abs(x).max()
    x = x + 0.5 * 10 ** (noise_db / 20) * np.random.default_rng(seed).standard_normal(len(t))
    return torch.from_numpy(x.astype(np.float32))[None, None]


def test_the_stft_loss_sees_noise_between_harmonics_that_the_mel_loss_hardly_does() -> None:
    clean, noisy = _harmonic_tone(-200), _harmonic_tone(-45)
    louder = clean * 10 ** (3 / 20)  # the same tone 3 dB louder: a difference both losses must see
    mel = MultiScaleMelLoss(16000, [256, 512, 1024, 2048], 64)
    stft = MultiScaleLogSTFTLoss([512, 1024, 2048])
    mel_ratio = float(mel(noisy, clean)) / float(mel(louder, clean))
    stft_ratio = float(stft(noisy, clean)) / float(stft(louder, clean))
    assert float(stft(clean, clean)) == 0.0
    assert stft_ratio > 3 * mel_ratio  # relative to a level error, noise costs the STFT loss far more


def test_the_trainer_uses_the_stft_loss_when_weighted() -> None:
    cfg = CodecRunConfig.tiny()
    cfg.train.discriminator = False
    cfg.train.weight_stft, cfg.train.stft_windows = 1.0, [64, 128]
    trainer = CodecTrainer(cfg, torch.device("cpu"))
    wav = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 1, 1024)).astype(np.float32) * 0.1)
    out = trainer.train_step(wav)
    assert out["loss/stft"] > 0 and "grad_norm/stft" in out
    cfg.train.weight_stft = 0.0
    assert "loss/stft" not in CodecTrainer(cfg, torch.device("cpu")).train_step(wav)
