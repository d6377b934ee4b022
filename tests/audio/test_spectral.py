"""Spectral helpers: the mel filterbank, and the one spectrogram picture every layer draws."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from soundgen.audio.spectral import mel_filterbank, spectrogram_image


def test_mel_filterbank_covers_spectrum() -> None:
    fb = mel_filterbank(16000, 512, 40)
    assert fb.shape == (40, 257)
    assert bool((fb >= 0).all()) and bool((fb.sum(1) > 0).all())
    peaks = fb.argmax(1)
    assert bool((peaks[1:] >= peaks[:-1]).all())


def test_spectrogram_image_shape_range_and_orientation() -> None:
    sr = 16000
    tone = np.sin(2 * np.pi * 1000 * np.arange(sr) / sr).astype(np.float32)
    img = spectrogram_image(tone, 512)
    assert img.dtype == np.float32 and img.shape == (257, sr // 128 + 1)
    assert float(img.min()) >= 0.0 and float(img.max()) == 1.0
    # 1 kHz is bin 32 of 257 from the bottom: the brightest row sits near the bottom of the picture.
    assert int(img.mean(axis=1).argmax()) == 256 - 32
    sized = spectrogram_image(tone, 512, width=100, height=60)
    assert sized.shape == (60, 100) and sized.flags["C_CONTIGUOUS"]
    assert spectrogram_image(np.zeros(0, np.float32), 256).shape == (129, 1)


def test_importing_it_does_not_import_torch() -> None:
    # The service's API process draws pictures with it and never loads torch.
    code = "import sys, soundgen.audio.spectral; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
