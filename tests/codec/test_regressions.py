"""Regressions of codec training: the encoder's latents carry the input and a short fit reproduces a sine.

Before the variance-preserving init (``soundgen.codec.streaming.init_conv_``), PyTorch's default init made a
demo-size encoder's latents mostly input-independent biases (the input accounted for ~10 % of their rms); every
latent then fell on one codeword (perplexity ~1 within five steps) and training converged to near silence.
"""

from __future__ import annotations

import math

import torch

from soundgen.codec import CodecConfig, CodecRunConfig, build_codec
from soundgen.train.codec import CodecTrainer


def _rms(x: torch.Tensor) -> float:
    return float(x.detach().pow(2).mean().sqrt())


def _sines(freq: float, sample_rate: int, samples: int, amp: float = 0.5) -> torch.Tensor:
    """Two phases of a sine, ``[2, 1, T]``."""
    t = torch.arange(samples) / sample_rate
    return torch.stack([amp * torch.sin(2 * math.pi * freq * t + phase) for phase in (0.0, 1.0)])[:, None]


def _dominant_hz(x: torch.Tensor, sample_rate: int) -> float:
    """Frequency of the strongest bin of ``x [T]``."""
    spec = torch.fft.rfft(x * torch.hann_window(x.shape[-1])).abs()
    return float(spec[1:].argmax() + 1) * sample_rate / x.shape[-1]


def test_fresh_demo_size_encoder_latents_depend_on_the_input() -> None:
    torch.manual_seed(0)
    codec = build_codec(CodecConfig(base_channels=8, max_channels=128, latent_dim=64, n_codebooks=4))
    sine = _sines(440.0, 16000, 16000)[:1]
    with torch.no_grad():
        latents = codec.encoder(sine)
        of_silence = codec.encoder(torch.zeros_like(sine))
    # The part of the latents due to the input, relative to the latents: was ~0.1 with PyTorch's default init.
    assert _rms(latents - of_silence) > 0.5 * _rms(latents)
    with torch.no_grad():
        assert _rms(codec.decoder(latents)) > 0.05  # the untrained decoder is not near-silent either


def test_short_fit_on_a_sine_reproduces_its_level_and_frequency() -> None:
    torch.manual_seed(0)
    cfg = CodecRunConfig.tiny()
    cfg.model.quantizer_dropout = 0.0
    cfg.train.discriminator = False
    cfg.train.lr = 3e-3
    cfg.train.weight_l1 = 1.0
    trainer = CodecTrainer(cfg, torch.device("cpu"))
    wav = _sines(440.0, 8000, 2048)
    for _ in range(60):
        trainer.train_step(wav)
    trainer.codec.eval()
    out = trainer.codec.decode(trainer.codec.encode(wav))
    assert 0.7 * _rms(wav) < _rms(out) < 1.4 * _rms(wav)
    bin_hz = 8000 / wav.shape[-1]
    for i in range(2):
        assert abs(_dominant_hz(out[i, 0], 8000) - 440.0) <= 2 * bin_hz
