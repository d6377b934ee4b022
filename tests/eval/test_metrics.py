"""Quality metrics: identities, orderings and known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from soundgen.eval.metrics import floor_rise_db, mel_distance, si_sdr, stft_distance, tone_modulation


def _sine(seconds: float = 0.5, rate: int = 16000, freq: float = 440.0) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return 0.5 * torch.sin(2 * math.pi * freq * t)


def test_identical_signals() -> None:
    x = _sine()[None]
    assert mel_distance(x, x, 16000) == pytest.approx(0.0, abs=1e-6)
    assert stft_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert si_sdr(x, x) > 80


def test_si_sdr_known_value_and_scale_invariance() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16000, generator=g)
    noise = torch.randn(1, 16000, generator=g)
    noise = noise - (noise * x).sum() / (x * x).sum() * x  # orthogonal to x
    noise = noise * (x.norm() / noise.norm()) / math.sqrt(10.0)  # 10 dB below
    assert si_sdr(x, x + noise) == pytest.approx(10.0, abs=0.05)
    assert si_sdr(x, 3.0 * (x + noise)) == pytest.approx(10.0, abs=0.05)


def test_distances_grow_with_degradation() -> None:
    x = _sine()
    g = torch.Generator().manual_seed(1)
    small = x + 0.01 * torch.randn(x.shape, generator=g)
    large = x + 0.2 * torch.randn(x.shape, generator=g)
    assert mel_distance(x, small, 16000) < mel_distance(x, large, 16000)
    assert stft_distance(x, small) < stft_distance(x, large)
    assert si_sdr(x, small) > si_sdr(x, large)


def test_accepts_numpy_and_batches() -> None:
    x = np.stack([_sine().numpy(), _sine(freq=300).numpy()])
    assert np.isfinite(mel_distance(x, x * 0.5, 16000))
    with pytest.raises(ValueError):
        mel_distance(x, x[:1], 16000)


def test_floor_rise_measures_noise_laid_between_harmonics() -> None:
    t = np.arange(32000) / 16000
    tone = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 16)).astype(np.float32) * 0.05
    noise = np.random.default_rng(0).standard_normal(len(t)).astype(np.float32)
    assert floor_rise_db(tone, tone, 16000) == 0.0
    quiet, loud = (floor_rise_db(tone, tone + a * noise, 16000) for a in (1e-4, 1e-3))
    assert 10 < quiet < loud  # noise raises the floor, more noise raises it more
    assert abs(floor_rise_db(tone, 2 * tone, 16000)) < 0.5  # a louder copy adds no noise
    assert abs(floor_rise_db(noise, noise + 1e-3 * noise[::-1], 16000)) < 1  # noise under noise: nothing to see


def test_tone_modulation_reads_the_unsteadiness_of_a_tone() -> None:
    rate = 16000
    t = np.arange(rate) / rate
    steady = tone_modulation(np.sin(2 * np.pi * 1000 * t), 1000, rate)
    assert steady[0] < 1e-3 and steady[1] < 1e-3
    assert tone_modulation(np.sin(2 * np.pi * 1003 * t), 1000, rate)[1] < 1e-3  # a detuning is a trend, not noise
    # phase swinging by 0.5 rad at 50 Hz (frames that do not join): rms 0.5 / sqrt(2); the envelope stays put
    amp, phase = tone_modulation(np.sin(2 * np.pi * 1000 * t + 0.5 * np.sin(2 * np.pi * 50 * t)), 1000, rate)
    assert phase == pytest.approx(0.5 / math.sqrt(2), rel=0.05) and amp < 0.01
    amp, phase = tone_modulation((1 + 0.2 * np.sin(2 * np.pi * 50 * t)) * np.sin(2 * np.pi * 1000 * t), 1000, rate)
    assert amp == pytest.approx(0.2 / math.sqrt(2), rel=0.05) and phase < 0.01
    harmonics = np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 880 * t)  # the next harmonic is filtered out
    assert max(tone_modulation(harmonics, 440, rate)) < 0.02
    assert all(math.isnan(v) for v in tone_modulation(np.zeros(rate), 440, rate))
