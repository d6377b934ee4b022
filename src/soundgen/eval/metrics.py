"""Audio quality metrics in pure torch: mel distance, multi-resolution STFT distance, SI-SDR.

Their mel filterbank and STFT come from :mod:`soundgen.audio.spectral`, which the codec's training loss shares.

All functions take a reference and an estimate of the same shape ``[..., T]`` (any leading dimensions,
float, same sample rate) and return a Python float averaged over the leading dimensions. Lower is better
for the distances, higher for SI-SDR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from soundgen.audio.spectral import mel_filterbank, stft_magnitude


def _as_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(x)
    return t.float()


def _match(ref: torch.Tensor | np.ndarray, est: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    r, e = _as_tensor(ref), _as_tensor(est)
    n = min(r.shape[-1], e.shape[-1])
    if r.shape[:-1] != e.shape[:-1]:
        raise ValueError(f"reference {list(r.shape)} and estimate {list(e.shape)} differ in leading dims")
    return r[..., :n], e[..., :n]


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


def floor_rise_db(
    ref: torch.Tensor | np.ndarray,
    est: torch.Tensor | np.ndarray,
    sample_rate: int,
    band: tuple[float, float] = (1000.0, 4000.0),
    quantile: float = 0.25,
    n_fft: int = 2048,
) -> float:
    """How many dB the estimate raises the floor of the spectrum over the reference: the ``quantile`` of the
    STFT bins' levels in ``band`` (relative to each signal's loudest bin), estimate minus reference.

    Between the harmonics of a note the reference is quiet; a codec that adds broadband noise there raises this
    floor (positive), which a mel distance of 64 bands hardly sees. Levels below -120 dB count as -120 dB.
    """
    r, e = _match(ref, est)
    freqs = torch.arange(n_fft // 2 + 1) * sample_rate / n_fft
    rows = (freqs >= band[0]) & (freqs <= band[1])

    def floor(x: torch.Tensor) -> float:
        mag = stft_magnitude(x, n_fft)
        db = 20 * torch.log10(mag.clamp(min=1e-12) / mag.max().clamp(min=1e-12))
        return float(torch.quantile(db[..., rows, :].clamp(min=-120).flatten(), quantile))

    return floor(e) - floor(r)


def tone_modulation(audio: np.ndarray, freq: float, sample_rate: int, smooth: float = 0.004) -> tuple[float, float]:
    """How unsteady a steady tone at ``freq`` came back: (amplitude, phase) modulation, both rms.

    Complex demodulation: ``audio`` is shifted down by ``freq`` and smoothed by a Hann window of ``smooth``
    seconds (4 ms: modulation up to ~250 Hz passes, the next harmonic does not), giving the tone's envelope and
    phase over time. Returns the rms of the envelope relative to its mean (0: steady) and the rms in radians of
    the phase after its straight-line trend (a small detuning) is removed (0: steady). A codec whose frames do
    not join in phase modulates a tone at its frame rate and multiples.
    """
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    t = np.arange(len(x)) / sample_rate
    n = max(3, int(round(smooth * sample_rate)))
    window = np.hanning(n + 2)[1:-1]
    base = np.convolve(x * np.exp(-2j * np.pi * freq * t), window / window.sum(), mode="valid")
    if len(base) < 2 or not np.abs(base).mean() > 0:
        return float("nan"), float("nan")
    amp = np.abs(base)
    phase = np.unwrap(np.angle(base))
    idx = np.arange(len(phase))
    phase = phase - np.polyval(np.polyfit(idx, phase, 1), idx)
    return float(amp.std() / amp.mean()), float(np.sqrt(np.mean(phase**2)))


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
