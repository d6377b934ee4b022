"""Audio quality metrics in pure torch: mel distance, multi-resolution STFT distance, SI-SDR.

All functions take a reference and an estimate of the same shape ``[..., T]`` (any leading dimensions,
float, same sample rate) and return a Python float averaged over the leading dimensions. Lower is better
for the distances, higher for SI-SDR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch


def _as_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(x)
    return t.float()


def _match(ref: torch.Tensor | np.ndarray, est: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    r, e = _as_tensor(ref), _as_tensor(est)
    n = min(r.shape[-1], e.shape[-1])
    if r.shape[:-1] != e.shape[:-1]:
        raise ValueError(f"reference {list(r.shape)} and estimate {list(e.shape)} differ in leading dims")
    return r[..., :n], e[..., :n]


def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    """HTK mel scale."""
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular mel filters ``[n_mels, n_fft // 2 + 1]`` (HTK scale, area-normalised like Slaney)."""
    f_max = f_max or sample_rate / 2
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mels = torch.linspace(float(hz_to_mel(torch.tensor(f_min))), float(hz_to_mel(torch.tensor(f_max))), n_mels + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    lower, center, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (freqs[None] - lower) / (center - lower).clamp(min=1e-5)
    down = (upper - freqs[None]) / (upper - center).clamp(min=1e-5)
    fb = torch.clamp(torch.minimum(up, down), min=0.0)
    return fb * (2.0 / (upper - lower).clamp(min=1e-5))


def stft_magnitude(x: torch.Tensor, n_fft: int, hop: int | None = None) -> torch.Tensor:
    """Magnitude STFT ``[..., T] -> [..., n_fft // 2 + 1, frames]`` with a Hann window."""
    hop = hop or n_fft // 4
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    if flat.shape[-1] < n_fft:
        flat = torch.nn.functional.pad(flat, (0, n_fft - flat.shape[-1]))
    window = torch.hann_window(n_fft, device=x.device, dtype=flat.dtype)
    spec = torch.stft(flat, n_fft, hop, window=window, return_complex=True, center=True)
    mag = spec.abs()
    return mag.reshape(*lead, *mag.shape[-2:])


def mel_distance(
    ref: torch.Tensor | np.ndarray,
    est: torch.Tensor | np.ndarray,
    sample_rate: int,
    windows: Sequence[int] = (256, 512, 1024, 2048),
    n_mels: int = 64,
) -> float:
    """Mean over window sizes of the L1 distance between log10 mel spectrograms (DAC/Descript style)."""
    r, e = _match(ref, est)
    total = 0.0
    for n_fft in windows:
        fb = mel_filterbank(sample_rate, n_fft, n_mels)
        mr = torch.einsum("mf,...ft->...mt", fb, stft_magnitude(r, n_fft))
        me = torch.einsum("mf,...ft->...mt", fb, stft_magnitude(e, n_fft))
        total += float((mr.clamp(min=1e-5).log10() - me.clamp(min=1e-5).log10()).abs().mean())
    return total / len(windows)


def stft_distance(
    ref: torch.Tensor | np.ndarray, est: torch.Tensor | np.ndarray, windows: Sequence[int] = (512, 1024, 2048)
) -> float:
    """Multi-resolution STFT distance: spectral convergence + log-magnitude L1, averaged over resolutions."""
    r, e = _match(ref, est)
    total = 0.0
    for n_fft in windows:
        sr, se = stft_magnitude(r, n_fft), stft_magnitude(e, n_fft)
        conv = torch.linalg.norm(sr - se) / torch.linalg.norm(sr).clamp(min=1e-8)
        logmag = (sr.clamp(min=1e-7).log() - se.clamp(min=1e-7).log()).abs().mean()
        total += float(conv + logmag)
    return total / len(windows)


def si_sdr(ref: torch.Tensor | np.ndarray, est: torch.Tensor | np.ndarray, eps: float = 1e-8) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (higher is better), mean over leading dims."""
    r, e = _match(ref, est)
    r = r - r.mean(-1, keepdim=True)
    e = e - e.mean(-1, keepdim=True)
    scale = (e * r).sum(-1, keepdim=True) / (r.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * r
    noise = e - target
    ratio = (target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps)
    value = 10 * torch.log10(ratio).mean()
    return float(value) if math.isfinite(float(value)) else float("nan")
