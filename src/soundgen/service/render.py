"""Pictures of generated sounds: a waveform above a spectrogram, as a PNG written with numpy and zlib.

No plotting library is needed (and none is imported per job), so a picture costs a few milliseconds.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from soundgen.audio.spectral import spectrogram_image

if TYPE_CHECKING:
    from soundgen.pipeline import GenerationResult

BACKGROUND = np.array([15, 23, 42], dtype=np.float32)  # slate-900: reads well in light and dark pages
WAVE = np.array([56, 189, 248], dtype=np.float32)  # sky-400
# Anchor colours of a magma-like map, from silence to loud.
_CMAP = np.array([[15, 23, 42], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109],
                  [252, 253, 191]], dtype=np.float32)


def _lut(anchors: np.ndarray, n: int = 256) -> np.ndarray:
    """``n`` colours interpolated linearly between ``anchors`` ``[A, 3]``: ``[n, 3]`` float32."""
    pos = np.linspace(0, len(anchors) - 1, n)
    i0 = np.minimum(np.floor(pos).astype(np.int64), len(anchors) - 2)
    frac = (pos - i0)[:, None]
    return (anchors[i0] * (1 - frac) + anchors[i0 + 1] * frac).astype(np.float32)


_LUT = _lut(_CMAP)


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an image as PNG.

    Args:
        rgb: uint8 array ``[H, W, 3]``.

    Returns:
        The bytes of a valid 8-bit RGB PNG file.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}")
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")


def _waveform(mono: np.ndarray, width: int, height: int) -> np.ndarray:
    """Min/max envelope per pixel column, drawn in the accent colour: ``[height, width, 3]`` float."""
    img = np.broadcast_to(BACKGROUND, (height, width, 3)).copy()
    if mono.size == 0:
        return img
    starts = np.minimum(np.linspace(0, mono.size, width + 1)[:-1].astype(np.int64), mono.size - 1)
    peak = max(float(np.max(np.abs(mono))), 1e-6)
    lo = np.minimum.reduceat(mono, starts) / peak  # [width]
    hi = np.maximum.reduceat(mono, starts) / peak
    mid = (height - 1) / 2
    rows = np.arange(height)[:, None]
    mask = (rows >= np.floor(mid - hi * mid * 0.95)[None, :]) & (rows <= np.ceil(mid - lo * mid * 0.95)[None, :])
    img[mask] = WAVE
    return img


def _spectrogram(mono: np.ndarray, sample_rate: int, width: int, height: int) -> np.ndarray:
    """The spectrogram picture (:func:`~soundgen.audio.spectral.spectrogram_image`), coloured: ``[height, width, 3]``
    float."""
    level = spectrogram_image(mono, 512 if sample_rate >= 16000 else 256, width=width, height=height)
    result: np.ndarray = _LUT[np.round(level * 255).astype(np.uint8)]
    return result


def render_sound(samples: np.ndarray, sample_rate: int, width: int = 640, height: int = 240) -> bytes:
    """A PNG of a sound: waveform (top third) above its spectrogram.

    Args:
        samples: float audio ``[C, T]`` or ``[T]``; channels are averaged.
        sample_rate: samples per second.
        width: picture width in pixels.
        height: picture height in pixels.

    Returns:
        PNG bytes.
    """
    x = np.asarray(samples, dtype=np.float32)
    mono = x.mean(axis=0) if x.ndim == 2 else x.reshape(-1)
    mono = np.nan_to_num(mono)
    if mono.size == 0:
        mono = np.zeros(1, dtype=np.float32)
    wave_h = height // 3
    img = np.concatenate([
        _waveform(mono, width, wave_h),
        np.broadcast_to(BACKGROUND * 0.6, (2, width, 3)),
        _spectrogram(mono, sample_rate, width, height - wave_h - 2),
    ], axis=0)
    return png_bytes(np.clip(img, 0, 255).astype(np.uint8))


@dataclass
class Rendered:
    """A generation result plus its files, made where the model runs (so the server process does not).

    Reads like the result itself (``rendered.audio``, ``rendered.sample_rate``, ``rendered.seed``,
    ``rendered.duration``); ``files`` holds one ``(wav_bytes, png_bytes)`` pair per sound.
    """

    result: GenerationResult
    files: list[tuple[bytes, bytes]]

    @property
    def audio(self) -> list[np.ndarray]:
        """One float32 ``[C, T]`` array per sound."""
        return self.result.audio

    @property
    def sample_rate(self) -> int:
        """Samples per second."""
        return self.result.sample_rate

    @property
    def seed(self) -> int:
        """The seed the sounds were made with."""
        return self.result.seed

    @property
    def duration(self) -> float:
        """Seconds of audio per sound."""
        return self.result.duration


def result_files(result: GenerationResult) -> list[tuple[bytes, bytes]]:
    """The WAV file and the picture of each sound of a generation result."""
    from soundgen.audio.io import encode_audio_bytes

    return [(encode_audio_bytes(samples, result.sample_rate, "wav"), render_sound(samples, result.sample_rate))
            for samples in result.audio]
