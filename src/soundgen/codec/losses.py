"""Reconstruction and adversarial losses of codec training."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from soundgen.audio.spectral import mel_filterbank, stft_magnitude


class MultiScaleMelLoss(nn.Module):
    """L1 between log mel spectrograms (plus L1 between linear mels) at several window sizes.

    Args:
        sample_rate: audio sample rate.
        windows: FFT sizes; hop is a quarter of each.
        n_mels: mel bands (reduced for small windows so that no band is empty).
    """

    def __init__(self, sample_rate: int, windows: Sequence[int], n_mels: int) -> None:
        super().__init__()
        self.windows = list(windows)
        for n_fft in self.windows:
            bands = min(n_mels, n_fft // 8)
            self.register_buffer(f"fb_{n_fft}", mel_filterbank(sample_rate, n_fft, bands), persistent=False)
            self.register_buffer(f"win_{n_fft}", torch.hann_window(n_fft), persistent=False)

    def _mel(self, x: torch.Tensor, n_fft: int) -> torch.Tensor:
        spec = torch.stft(
            x.reshape(-1, x.shape[-1]).float(),
            n_fft,
            n_fft // 4,
            window=getattr(self, f"win_{n_fft}"),
            return_complex=True,
        )
        return getattr(self, f"fb_{n_fft}") @ spec.abs()

    def forward(self, est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """Args: est, ref ``[B, C, T]``. Returns the loss averaged over scales (scalar)."""
        total = est.new_zeros((), dtype=torch.float32)
        for n_fft in self.windows:
            me, mr = self._mel(est, n_fft), self._mel(ref, n_fft)
            total = total + F.l1_loss(me.clamp(min=1e-5).log(), mr.clamp(min=1e-5).log()) + F.l1_loss(me, mr)
        return total / len(self.windows)


class MultiScaleLogSTFTLoss(nn.Module):
    """L1 between log magnitude spectrograms on the linear frequency axis, at several window sizes.

    A mel loss of 64 bands hardly tells a harmonic from noise in the same band: above ~1 kHz one band spans a few
    harmonics of a note, so noise between them adds little energy to the band, and the bundled decoder, trained on
    mel, buries tonal sounds under a broadband floor (session 9: a piano's 1.5-4 kHz median level -56 dB below its
    peak after the codec, -88 dB before). Here every STFT bin counts, so energy between the harmonics costs what
    energy at them does (relative to a 3 dB level error, ~5x more than in the mel loss: tests/codec/test_losses.py).

    Args:
        windows: FFT sizes; hop is a quarter of each.
        floor: magnitudes are clamped to at least this before the log (bounds the cost of exact silence).
    """

    def __init__(self, windows: Sequence[int], floor: float = 1e-5) -> None:
        super().__init__()
        self.windows = list(windows)
        self.floor = floor

    def forward(self, est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """Args: est, ref ``[B, C, T]``. Returns the loss averaged over scales (scalar)."""
        total = est.new_zeros((), dtype=torch.float32)
        for n_fft in self.windows:
            log_e, log_r = (stft_magnitude(x.float(), n_fft).clamp(min=self.floor).log() for x in (est, ref))
            total = total + F.l1_loss(log_e, log_r)
        return total / len(self.windows)


def waveform_l1(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean absolute sample difference of ``[B, C, T]`` tensors."""
    return F.l1_loss(est.float(), ref.float())


def hinge_discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Hinge loss of the discriminator over its scales: ``relu(1 - D(x)) + relu(1 + D(G(z)))``."""
    return torch.stack([F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake, strict=True)]).mean()


def hinge_generator_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    """Generator side of the hinge loss: ``relu(1 - D(G(z)))`` averaged over scales."""
    return torch.stack([F.relu(1 - f).mean() for f in fake]).mean()


def feature_matching_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Relative L1 between discriminator feature maps of real and generated audio, averaged over layers."""
    terms = [
        F.l1_loss(ff, fr.detach()) / (fr.detach().abs().mean() + 1e-5)
        for feats_r, feats_f in zip(real, fake, strict=True)
        for fr, ff in zip(feats_r, feats_f, strict=True)
    ]
    return torch.stack(terms).mean()


class SpectralMagnitudeLoss(nn.Module):
    """The spectral codec's loss on predicted log magnitudes ``[B, bins, n]`` (:mod:`soundgen.codec.spectral`):
    L1 between log magnitudes (every bin counts, so partials and the quiet between them do), spectral
    convergence (the relative error of the linear magnitudes, which weighs the loud parts), and L1 between log
    mels of the magnitudes (``n_mels`` bands, which weighs the low frequencies as a listener does).

    Returns a dict of the three terms (scalars)."""

    def __init__(self, sample_rate: int, n_fft: int, n_mels: int) -> None:
        super().__init__()
        self.fb: torch.Tensor
        self.register_buffer("fb", mel_filterbank(sample_rate, n_fft, n_mels), persistent=False)

    def forward(self, pred_log: torch.Tensor, ref_log: torch.Tensor, floor: float) -> dict[str, torch.Tensor]:
        pred, ref = torch.exp(pred_log), torch.exp(ref_log)
        sc = torch.linalg.vector_norm(pred - ref) / torch.linalg.vector_norm(ref).clamp(min=1e-6)
        mel = F.l1_loss(torch.log(self.fb @ pred + floor), torch.log(self.fb @ ref + floor))
        return {"logmag": F.l1_loss(pred_log, ref_log), "sc": sc, "mel": mel}
