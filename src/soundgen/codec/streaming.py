"""Causal layers that can run offline or stream chunk by chunk with exactly the same output.

Every layer here is causal: output sample ``t`` depends on inputs ``<= t`` only. Offline, a layer pads its
input on the left with zeros. In streaming mode (``with streaming(module):``) each layer instead keeps the
tail of the input it has seen (or, for a transposed convolution, the overlap it still owes) in a state
buffer, so feeding a signal in chunks of any length gives the same samples as one offline pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn


class StreamingModule(nn.Module):
    """A module with a streaming state that :func:`streaming` switches on and resets."""

    def __init__(self) -> None:
        super().__init__()
        self.is_streaming = False

    def reset_state(self) -> None:
        """Forget everything seen in streaming mode."""


@contextlib.contextmanager
def streaming(module: nn.Module) -> Iterator[None]:
    """Put every :class:`StreamingModule` inside ``module`` in streaming mode, with fresh state."""
    parts = [m for m in module.modules() if isinstance(m, StreamingModule)]
    for m in parts:
        m.reset_state()
        m.is_streaming = True
    try:
        yield
    finally:
        for m in parts:
            m.is_streaming = False
            m.reset_state()


def init_conv_(conv: nn.Conv1d | nn.ConvTranspose1d, fan_in: int) -> None:
    """Variance-preserving init: weights ``N(0, 1 / fan_in)``, zero bias.

    PyTorch's default (uniform ``+-1/sqrt(fan_in)`` weights and biases) shrinks the signal by about ``1/sqrt(3)``
    per layer while adding input-independent biases, so after a dozen layers the encoder's latents barely depend
    on its input, every latent falls on the same codeword and training collapses to silence.
    """
    with torch.no_grad():
        conv.weight.normal_(0.0, fan_in**-0.5)
        if conv.bias is not None:
            conv.bias.zero_()


class CausalConv1d(StreamingModule):
    """A causal 1-D convolution (weight-normalised), ``[B, C_in, T] -> [B, C_out, T // stride]``.

    Offline the input is padded on the left by ``(kernel_size - 1) * dilation - (stride - 1)`` so that an input
    whose length is a multiple of ``stride`` gives exactly ``T // stride`` outputs and output ``i`` sees inputs up
    to ``(i + 1) * stride - 1``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__()
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation)
        init_conv_(conv, in_channels * kernel_size)
        self.conv = nn.utils.parametrizations.weight_norm(conv)
        self.stride = stride
        self.span = (kernel_size - 1) * dilation + 1
        self.pad = self.span - stride
        assert self.pad >= 0, "kernel span must be at least the stride"
        self._buffer: torch.Tensor | None = None

    def reset_state(self) -> None:
        self._buffer = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``[B, C_in, T]``. Returns ``[B, C_out, T']``."""
        if not self.is_streaming:
            return self.conv(F.pad(x, (self.pad, 0)))
        if self._buffer is None:
            self._buffer = x.new_zeros(x.shape[0], x.shape[1], self.pad)
        buf = torch.cat([self._buffer, x], dim=-1)
        n_out = (buf.shape[-1] - self.span) // self.stride + 1 if buf.shape[-1] >= self.span else 0
        if n_out <= 0:
            self._buffer = buf
            return x.new_zeros(x.shape[0], self.conv.out_channels, 0)
        used = (n_out - 1) * self.stride + self.span
        out = self.conv(buf[..., :used])
        self._buffer = buf[..., n_out * self.stride :]
        return out


class CausalConvTranspose1d(StreamingModule):
    """A causal transposed convolution, ``[B, C_in, F] -> [B, C_out, F * stride]``.

    The kernel must be a multiple ``m * stride`` of the stride. Output sample ``f * stride + r`` then depends on
    input frames ``f - m + 1 .. f`` only, so the layer is computed as a causal ordinary convolution of kernel ``m``
    with ``C_out * stride`` output channels followed by an interleave (polyphase form). That is the trimmed
    output of ``ConvTranspose1d``, several times faster on CPU, and streams exactly like :class:`CausalConv1d`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        if kernel_size % stride:
            raise ValueError(f"kernel_size {kernel_size} must be a multiple of stride {stride}")
        convtr = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride)
        init_conv_(convtr, in_channels * (kernel_size // stride))  # each output sample sees kernel/stride taps
        self.convtr = nn.utils.parametrizations.weight_norm(convtr)
        self.stride = stride
        self.taps = kernel_size // stride
        self._buffer: torch.Tensor | None = None

    def reset_state(self) -> None:
        self._buffer = None

    def _polyphase_weight(self) -> torch.Tensor:
        """``[C_in, C_out, m*s]`` transposed-conv weight as ``[C_out*s, C_in, m]`` ordinary-conv weight."""
        w = self.convtr.weight  # [C_in, C_out, m * s]; tap j of phase r is w[..., j * s + r]
        c_in, c_out, _ = w.shape
        w = w.view(c_in, c_out, self.taps, self.stride).permute(1, 3, 0, 2)  # [C_out, s, C_in, m]
        return w.flip(-1).reshape(c_out * self.stride, c_in, self.taps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``[B, C_in, F]``. Returns ``[B, C_out, F * stride]``."""
        pad = self.taps - 1
        if self.is_streaming:
            if self._buffer is None:
                self._buffer = x.new_zeros(x.shape[0], x.shape[1], pad)
            x = torch.cat([self._buffer, x], dim=-1)
            self._buffer = x[..., x.shape[-1] - pad :]
        else:
            x = F.pad(x, (pad, 0))
        frames = x.shape[-1] - pad
        bias = self.convtr.bias
        assert bias is not None
        if frames <= 0:
            return x.new_zeros(x.shape[0], bias.shape[0], 0)
        y = F.conv1d(x, self._polyphase_weight())  # [B, C_out * s, F]
        b = y.shape[0]
        y = y.view(b, -1, self.stride, frames).transpose(2, 3).reshape(b, -1, frames * self.stride)
        return y + bias[:, None]


class CausalLinearUpsample1d(StreamingModule):
    """Causal linear interpolation by an integer factor, ``[B, C, F] -> [B, C, F * stride]``: output sample
    ``f * stride + r`` is ``x[f - 1] + (r + 1) / stride * (x[f] - x[f - 1])`` (``x[-1] = 0``), so it sees inputs up
    to ``f`` only and streams with one sample of state. No weights: followed by a convolution, it is the
    "resize, then convolve" upsampler, whose output does not repeat a learned pattern once per input sample as a
    transposed convolution's does.
    """

    ramp: torch.Tensor

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.register_buffer("ramp", torch.arange(1, stride + 1, dtype=torch.float32) / stride, persistent=False)
        self._last: torch.Tensor | None = None

    def reset_state(self) -> None:
        self._last = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``[B, C, F]``. Returns ``[B, C, F * stride]``."""
        if self.is_streaming:
            before = self._last if self._last is not None else x.new_zeros(x.shape[0], x.shape[1], 1)
            self._last = x[..., -1:] if x.shape[-1] else before
        else:
            before = x.new_zeros(x.shape[0], x.shape[1], 1)
        prev = torch.cat([before, x[..., :-1]], dim=-1)
        ramp = self.ramp.to(x.dtype)
        out = prev[..., None] + ramp * (x - prev)[..., None]  # [B, C, F, stride]
        return out.reshape(x.shape[0], x.shape[1], -1)


class CausalLSTM(StreamingModule):
    """A unidirectional LSTM with a skip connection, ``[B, C, T] -> [B, C, T]``; keeps ``(h, c)`` when streaming."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, layers)
        self._state: tuple[torch.Tensor, torch.Tensor] | None = None

    def reset_state(self) -> None:
        self._state = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == 0:
            return x
        seq = x.permute(2, 0, 1)
        if self.is_streaming:
            y, self._state = self.lstm(seq, self._state)
        else:
            y, _ = self.lstm(seq)
        return y.permute(1, 2, 0) + x
