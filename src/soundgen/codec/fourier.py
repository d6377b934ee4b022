"""A Fourier-head decoder: ConvNeXt-style blocks at the frame rate, ending in an inverse STFT.

The SEANet decoder upsamples 320x with transposed convolutions, which is where most of its cost goes and where
its fixed tones come from (the upsampling leaves periodic artefacts: the bundled codec decodes digital silence to
a buzz at 200 Hz, 4, 5 and 7 kHz). This decoder never leaves the frame rate: ``blocks`` ConvNeXt-like blocks over
the quantized latents ``[B, D, F]``, then a head that predicts, per frame, a log-magnitude and a phase for each
of ``n_fft // 2 + 1`` bins; an inverse STFT (hop = the codec's hop, "same" padding) makes the waveform. The idea
is that of Vocos and WavTokenizer's decoders; this is soundgen's own implementation.

The blocks are not causal: each output frame sees ``receptive_frames`` frames on either side, so streaming decode
(:class:`soundgen.codec.model.DecodeStream`) waits for that much look-ahead and stays equal to offline decoding.

With ``fourier_phase: integrated`` the phase of bin ``k`` in frame ``f`` is not predicted afresh but carried on:
``u_f = normalise(g_f * u_{f-1} * exp(i (w_k hop + d_f)) + (1 - g_f) * exp(i p_f))``, where ``w_k hop`` is the
bin's own phase advance over one hop, ``d_f`` a predicted deviation (a steady partial between bins ``k`` and
``k + 1`` needs ``d = (w - w_k) hop``), ``p_f`` a fresh phase and ``g_f`` a gate in (0, 1) (near 0 where a sound
starts, near 1 where it goes on). A decoder that predicts absolute phases must get every frame's phases to join
the previous frame's by itself; measured on the session-9 decoders, none does: a steady 1 kHz tone comes out
with its phase swinging by ~0.5-1.8 rad at 50 Hz and its multiples, which is the noise under every note
(docs/codec_recipe.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from soundgen.codec.config import CodecConfig


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (kernel 7) -> LayerNorm -> pointwise expand x3 -> GELU -> pointwise -> layer scale, residual."""

    def __init__(self, dim: int, kernel_size: int = 7, expand: int = 3) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, dim * expand)
        self.down = nn.Linear(dim * expand, dim)
        self.scale = nn.Parameter(torch.full((dim,), 1e-2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``[B, dim, F]``. Returns ``[B, dim, F]``."""
        y = self.dwconv(x).transpose(1, 2)  # [B, F, dim]
        y = self.down(F.gelu(self.up(self.norm(y))))
        return x + (self.scale * y).transpose(1, 2)


class FourierDecoder(nn.Module):
    """Latents ``[B, latent_dim, F]`` -> audio ``[B, channels, F * hop]`` through an inverse STFT.

    Args:
        cfg: the codec config (``latent_dim``, ``hop_length``, ``channels``, ``fourier_dim``, ``fourier_blocks``,
            ``fourier_n_fft``).
    """

    window: torch.Tensor
    bin_advance: torch.Tensor

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        if cfg.channels != 1:
            raise ValueError("the Fourier-head decoder makes mono audio (channels: 1)")
        self.hop = cfg.hop_length
        self.n_fft = cfg.fourier_n_fft or 4 * cfg.hop_length
        if self.n_fft < self.hop or (self.n_fft - self.hop) % 2:
            raise ValueError(f"fourier_n_fft={self.n_fft} must be >= the hop ({self.hop}) and differ from it by an "
                             "even number")
        dim = cfg.fourier_dim
        self.embed = nn.Conv1d(cfg.latent_dim, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim) for _ in range(cfg.fourier_blocks))
        self.out_norm = nn.LayerNorm(dim)
        bins = self.n_fft // 2 + 1
        self.integrated = cfg.fourier_phase == "integrated"
        self.head = nn.Linear(dim, (4 if self.integrated else 2) * bins)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        # Each bin's own phase advance over one hop, wrapped to [0, 2 pi) (exact: computed in float64).
        advance = torch.remainder(2 * torch.pi * torch.arange(bins, dtype=torch.float64) * self.hop / self.n_fft,
                                  2 * torch.pi)
        self.register_buffer("bin_advance", advance.float(), persistent=False)
        if self.integrated:  # start with every bin advancing at its own rate: a steady tone is steady from step 0
            with torch.no_grad():
                self.head.weight[bins : 2 * bins].zero_()  # the deviation's rows (see spectrum)
                self.head.bias[bins : 2 * bins].zero_()
        # Frames of context on each side an output frame depends on: the embedding, every block, and the
        # inverse STFT's overlap (a frame's samples spread over n_fft / hop frames).
        self.receptive_frames = 3 + 3 * cfg.fourier_blocks + -(-self.n_fft // (2 * self.hop))

    def spectrum(self, z: torch.Tensor) -> torch.Tensor:
        """Args: z ``[B, latent_dim, F]``. Returns the complex spectrum ``[B, n_fft // 2 + 1, F]``."""
        x = self.embed(z)
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        h = self.head(self.out_norm(x.transpose(1, 2))).transpose(1, 2).float()  # [B, 2 or 4 * bins, F]
        if not self.integrated:
            log_mag, phase = h.chunk(2, dim=1)
            return torch.polar(self._magnitude(log_mag), phase)
        log_mag, deviation, phase, gate = h.chunk(4, dim=1)  # (the layout the session-10 runs were trained with)
        # within a quarter turn per hop of the bin's own advance: a bin holds partials within about a bin of its
        # centre (half-way to the next needs an eighth of a turn), and no deviation can alias to another bin's rate
        deviation = 0.5 * torch.pi * torch.tanh(deviation)
        unit = self.integrate_phase(deviation, phase, torch.sigmoid(gate + 2.0))  # a gate starting near 0.9
        return self._magnitude(log_mag) * unit

    @staticmethod
    def _magnitude(log_mag: torch.Tensor) -> torch.Tensor:
        return torch.exp(log_mag.clamp(max=4.6))  # |X| <= ~100, as loud as a frame can usefully be

    def integrate_phase(self, deviation: torch.Tensor, phase: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """Unit phasors ``[B, bins, F]`` carried from frame to frame (see the module's doc); all inputs
        ``[B, bins, F]``, ``gate`` in (0, 1). The first frame takes the fresh phase."""
        step = torch.polar(torch.ones_like(deviation), self.bin_advance[None, :, None] + deviation)
        fresh = torch.polar(torch.ones_like(phase), phase)
        out = [fresh[..., 0]]
        for f in range(1, phase.shape[-1]):
            z = gate[..., f] * out[-1] * step[..., f] + (1 - gate[..., f]) * fresh[..., f]
            out.append(z / z.abs().clamp(min=1e-4))
        return torch.stack(out, dim=-1)

    def istft(self, spec: torch.Tensor) -> torch.Tensor:
        """Inverse STFT with "same" padding: ``[B, bins, F]`` -> ``[B, F * hop]`` (frame f centred on sample
        ``f * hop + hop / 2``), normalised by the summed squared window."""
        b, _, n = spec.shape
        frames = torch.fft.irfft(spec, n=self.n_fft, dim=1) * self.window[None, :, None]  # [B, n_fft, F]
        total = (n - 1) * self.hop + self.n_fft
        audio = F.fold(frames, (1, total), (1, self.n_fft), stride=(1, self.hop)).reshape(b, total)
        env = F.fold((self.window**2)[None, :, None].expand(1, -1, n), (1, total), (1, self.n_fft),
                     stride=(1, self.hop)).reshape(1, total)
        pad = (self.n_fft - self.hop) // 2
        audio, env = audio[:, pad : pad + n * self.hop], env[:, pad : pad + n * self.hop]
        return audio / env.clamp(min=1e-5)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Args: z ``[B, latent_dim, F]``. Returns audio ``[B, 1, F * hop]``."""
        return self.istft(self.spectrum(z))[:, None]
