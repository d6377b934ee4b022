"""Causal SEANet-style convolutional encoder and decoder (the SoundStream/EnCodec family).

The encoder maps audio ``[B, C, T]`` to latents ``[B, D, T / hop]`` through stages of residual units and strided
convolutions; the decoder mirrors it with transposed convolutions. Everything is causal and streamable (see
:mod:`soundgen.codec.streaming`).
"""

from __future__ import annotations

import torch
from torch import nn

from soundgen.codec.config import CodecConfig
from soundgen.codec.streaming import CausalConv1d, CausalConvTranspose1d, CausalLinearUpsample1d, CausalLSTM


class Snake(nn.Module):
    """Snake activation ``x + sin(a x)^2 / a`` with a learned frequency ``a`` per channel, ``[B, C, T]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (self.alpha * x).sin().pow(2) / (self.alpha + 1e-9)


def make_activation(kind: str, channels: int) -> nn.Module:
    """ELU or Snake, by config name."""
    if kind == "snake":
        return Snake(channels)
    return nn.ELU()


class ResidualUnit(nn.Module):
    """``x + conv1x1(act(conv_k_dilated(act(x))))`` with a halved hidden width, ``[B, C, T] -> [B, C, T]``."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, activation: str) -> None:
        super().__init__()
        hidden = max(1, channels // 2)
        self.block = nn.Sequential(
            make_activation(activation, channels),
            CausalConv1d(channels, hidden, kernel_size, dilation=dilation),
            make_activation(activation, hidden),
            CausalConv1d(hidden, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def _stage_channels(cfg: CodecConfig, base: int | None = None) -> list[int]:
    """Channels before each encoder stage and after the last one: ``len(strides) + 1`` values."""
    base = base or cfg.base_channels
    return [min(cfg.max_channels, base * 2**i) for i in range(len(cfg.strides) + 1)]


def _residual_units(cfg: CodecConfig, channels: int, activation: str) -> list[nn.Module]:
    return [
        ResidualUnit(channels, cfg.residual_kernel_size, cfg.dilations[j % len(cfg.dilations)], activation)
        for j in range(cfg.residual_units)
    ]


class SEANetEncoder(nn.Module):
    """Audio ``[B, C, T]`` (T a multiple of the hop) to latents ``[B, latent_dim, T / hop]``."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        chans = _stage_channels(cfg)
        layers: list[nn.Module] = [CausalConv1d(cfg.channels, chans[0], cfg.kernel_size)]
        for i, stride in enumerate(cfg.strides):
            layers += _residual_units(cfg, chans[i], cfg.activation)
            layers += [
                make_activation(cfg.activation, chans[i]),
                CausalConv1d(chans[i], chans[i + 1], 2 * stride, stride),
            ]
        if cfg.lstm_layers:
            layers.append(CausalLSTM(chans[-1], cfg.lstm_layers))
        layers += [make_activation(cfg.activation, chans[-1]), CausalConv1d(chans[-1], cfg.latent_dim, 3)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class SEANetDecoder(nn.Module):
    """Latents ``[B, latent_dim, F]`` to audio ``[B, C, F * hop]`` (unbounded; the loss keeps it in range)."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        chans = _stage_channels(cfg, cfg.decoder_base_channels)[::-1]
        strides = cfg.strides[::-1]
        act = cfg.decoder_activation or cfg.activation
        layers: list[nn.Module] = [CausalConv1d(cfg.latent_dim, chans[0], cfg.kernel_size)]
        if cfg.lstm_layers:
            layers.append(CausalLSTM(chans[0], cfg.lstm_layers))
        for i, stride in enumerate(strides):
            layers.append(make_activation(act, chans[i]))
            if cfg.decoder_upsample == "linear":
                layers += [CausalLinearUpsample1d(stride), CausalConv1d(chans[i], chans[i + 1], 2 * stride - 1)]
            else:
                layers.append(CausalConvTranspose1d(chans[i], chans[i + 1], 2 * stride, stride))
            layers += _residual_units(cfg, chans[i + 1], act)
        layers += [make_activation(act, chans[-1]), CausalConv1d(chans[-1], cfg.channels, cfg.kernel_size)]
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z)
