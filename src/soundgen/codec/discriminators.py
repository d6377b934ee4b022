"""Multi-scale STFT discriminator (EnCodec's MS-STFTD): 2-D convolutions over complex spectrograms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


class STFTDiscriminator(nn.Module):
    """One scale: STFT ``[B, 1, T] -> [B, 2, frames, freqs]`` (real, imaginary) then strided 2-D convolutions."""

    def __init__(self, n_fft: int, filters: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.window: torch.Tensor
        wn = nn.utils.parametrizations.weight_norm
        self.convs = nn.ModuleList(
            [wn(nn.Conv2d(2, filters, (3, 9), padding=(1, 4)))]
            + [
                wn(nn.Conv2d(filters, filters, (3, 9), stride=(1, 2), dilation=(d, 1), padding=(d, 4)))
                for d in (1, 2, 4)
            ]
            + [wn(nn.Conv2d(filters, filters, (3, 3), padding=(1, 1)))]
        )
        self.out = wn(nn.Conv2d(filters, 1, (3, 3), padding=(1, 1)))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Args: x ``[B, 1, T]``. Returns logits ``[B, 1, frames, f]`` and the feature maps."""
        spec = torch.stft(
            x.reshape(-1, x.shape[-1]).float(), self.n_fft, self.n_fft // 4, window=self.window, return_complex=True
        )
        h = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # [B, 2, frames, freqs]
        feats = []
        for conv in self.convs:
            h = self.act(conv(h))
            feats.append(h)
        return self.out(h), feats


@dataclass
class DiscriminatorOutput:
    """Logits and feature maps of every scale."""

    logits: list[torch.Tensor]
    features: list[list[torch.Tensor]]


class MultiScaleSTFTDiscriminator(nn.Module):
    """STFT discriminators at several FFT sizes."""

    def __init__(self, windows: Sequence[int], filters: int) -> None:
        super().__init__()
        self.scales = nn.ModuleList(STFTDiscriminator(n, filters) for n in windows)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        """Args: x ``[B, C, T]`` (channels are treated as separate examples)."""
        x = x.reshape(-1, 1, x.shape[-1])
        logits, features = [], []
        for scale in self.scales:
            logit, feats = scale(x)
            logits.append(logit)
            features.append(feats)
        return DiscriminatorOutput(logits, features)
