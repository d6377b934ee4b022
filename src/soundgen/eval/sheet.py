"""What a generation report shows besides numbers: silence, pitch, and a contact sheet of spectrograms.

- :func:`is_silent`: a clip whose peak stays below -50 dBFS is silence to a listener (the first bundled model wrote
  the codec's silence code for whole clips: byte-identical "explosions" and "kick drums").
- :func:`pitch_strength`: how periodic a clip is, 0..1 (the median over loud frames of the best normalised
  autocorrelation after its first zero crossing, at lags of 50-1000 Hz). Played notes score ~0.8-1, noise and
  rumble ~0.1-0.4; 0.5 is the line the report uses for "has pitch".
- :func:`contact_sheet`: one PNG with the spectrogram of every generated clip, labelled by its prompt, because
  people judge sounds by looking and listening, not by one number.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from soundgen.audio.io import SILENT_DBFS, is_silent
from soundgen.audio.spectral import spectrogram_image

__all__ = ["PITCHED", "SILENT_DBFS", "contact_sheet", "is_silent", "pitch_strength"]

PITCHED = 0.5


def pitch_strength(audio: np.ndarray, sample_rate: int, frame: float = 0.064) -> float:
    """Median periodicity (0..1) of the loud frames of mono ``audio [T]``; 0 for silence."""
    n = int(frame * sample_rate)
    lo, hi = int(sample_rate / 1000), int(sample_rate / 50)
    if audio.size < n or n <= hi:
        return 0.0
    frames = np.lib.stride_tricks.sliding_window_view(audio.astype(np.float64), n)[:: n // 2]
    energy = (frames**2).sum(axis=1)
    loud = frames[energy > 0.05 * energy.max()] if energy.max() > 0 else frames[:0]
    if not len(loud):
        return 0.0
    loud = loud - loud.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(loud, 2 * n, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :n]
    ac = ac / np.maximum(ac[:, :1], 1e-12)
    # the autocorrelation of a windowless frame falls off with the lag: divide by the overlap to judge periods
    ac = ac / ((n - np.arange(n)) / n)
    best = np.zeros(len(ac))
    for i, row in enumerate(ac):
        # a period shows as a peak after the first zero crossing; low-passed noise is merely smooth before it
        below = np.nonzero(row[1:hi] < 0)[0]
        if len(below):
            start = max(lo, int(below[0]) + 1)
            best[i] = row[start:hi].max() if start < hi else 0.0
    return float(np.clip(np.median(best), 0.0, 1.0))


def contact_sheet(
    labels: list[str], clips: list[np.ndarray], sample_rate: int, path: str | Path, columns: int = 8,
    title: str = "",
) -> Path:
    """Draw the spectrogram of every clip (mono ``[T]``) in a grid, each labelled; write a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, -(-len(clips) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.1 * columns, 1.55 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, label, clip in zip(axes.flat, labels, clips, strict=False):
        seconds = len(clip) / sample_rate
        img = spectrogram_image(clip, 512, width=160, height=96) if len(clip) >= 512 else np.zeros((96, 160))
        ax.imshow(img, aspect="auto", cmap="magma", vmin=0, vmax=1,
                  extent=(0, seconds, 0, sample_rate / 2000))
        ax.set_title("\n".join(textwrap.wrap(label, 30)[:2]), fontsize=6)
        ax.axis("on")
        ax.tick_params(labelsize=5, length=2)
    height = 1.55 * rows + 0.4
    top = 1.0 - 0.4 / height  # the title's 0.4 inch above the grid, however many rows there are
    if title:
        fig.suptitle(title, fontsize=9, y=1.0 - 0.12 / height, va="top")
    fig.tight_layout(rect=(0.0, 0.0, 1.0, top if title else 1.0))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=72)
    plt.close(fig)
    return out
