"""Spectral views of audio: the mel filterbank, the magnitude STFT and the one picture of a spectrogram.

They sit here, below every wing, because several layers need them: the codec's training loss and the eval metrics
(mel filterbank, STFT), the eval classifier (mel filterbank), and the training logs and the service's PNGs
(:func:`spectrogram_image`).

torch is imported inside the functions that use it: the service's API process draws pictures with numpy alone and
does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    """HTK mel scale."""
    import torch

    return 2595.0 * torch.log10(1.0 + f / 700.0)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular mel filters ``[n_mels, n_fft // 2 + 1]`` (HTK scale, area-normalised like Slaney)."""
    import torch

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
    import torch

    hop = hop or n_fft // 4
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    if flat.shape[-1] < n_fft:
        flat = torch.nn.functional.pad(flat, (0, n_fft - flat.shape[-1]))
    window = torch.hann_window(n_fft, device=x.device, dtype=flat.dtype)
    spec = torch.stft(flat, n_fft, hop, window=window, return_complex=True, center=True)
    mag = spec.abs()
    return mag.reshape(*lead, *mag.shape[-2:])


def spectrogram_image(
    wav: np.ndarray,
    n_fft: int = 512,
    *,
    width: int | None = None,
    height: int | None = None,
    range_db: float = 80.0,
) -> np.ndarray:
    """A log-magnitude spectrogram drawn as an image: levels in 0..1, low frequencies at the bottom.

    The one picture of a sound: training logs (codec reconstructions, LM samples) and the service's PNGs all
    draw it. The DC offset is removed first (a constant carries nothing audible and would smear bright edges at
    the ends); frames are Hann-windowed and centred (``n_fft // 2`` zeros each side). The loudest bin is 1 and
    ``range_db`` below it is 0.

    Args:
        wav: mono audio ``[T]``.
        n_fft: window length.
        width: columns: that many frames spread evenly over the sound (a picture's pixel columns); None: one
            column per hop of ``n_fft // 4``.
        height: rows: the frequency axis resampled linearly to that many; None: ``n_fft // 2 + 1`` bins.
        range_db: the dynamic range drawn.

    Returns:
        float32 ``[H, W]``.
    """
    x = np.asarray(wav, dtype=np.float32).reshape(-1)
    padded = np.pad(x - x.mean() if x.size else x, (n_fft // 2, n_fft // 2))
    if padded.size < n_fft:
        padded = np.pad(padded, (0, n_fft - padded.size))
    windows = np.lib.stride_tricks.sliding_window_view(padded, n_fft)
    if width is None:
        windows = windows[:: n_fft // 4]
    else:
        windows = windows[np.linspace(0, padded.size - n_fft, width).astype(np.int64)]
    mag = np.abs(np.fft.rfft(windows * np.hanning(n_fft), axis=1)).T.astype(np.float32)  # [F, W]
    db = 20 * np.log10(mag + 1e-8)
    level = np.clip((db - (db.max() - range_db)) / range_db, 0.0, 1.0)
    if height is not None:
        pos = np.linspace(0, level.shape[0] - 1, height)
        i0 = np.minimum(np.floor(pos).astype(np.int64), level.shape[0] - 2)
        w = (pos - i0).astype(np.float32)[:, None]
        level = level[i0] * (1 - w) + level[i0 + 1] * w
    return np.ascontiguousarray(level[::-1])
