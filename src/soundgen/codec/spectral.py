"""A spectral codec: an STFT-magnitude encoder, and a decoder that predicts a fine magnitude spectrogram and
rebuilds its phase by Griffin-Lim, block by block.

Why (docs/codec_recipe.md, "A spectral codec", session 13): every waveform decoder trained on this CPU (SEANet
of several widths and activations, Fourier heads with free or integrated phase) turned partials above ~1 kHz into
noise, and a probe trained on the bundled codec's 4-codebook latents could not recover them either: the encoder,
trained beside a decoder that could not make them, had learnt not to keep them. A codec whose encoder reads, and
whose decoder writes, the log magnitude of a fine STFT (640-point, hop 80: 25 Hz bins, 4 sub-frames per code
frame) learns envelopes and partials from a regression loss alone, with no waveform and no phase to learn; the
phase is rebuilt from the magnitude at decode time (fast Griffin-Lim, Perraudin et al. 2013). A trained magnitude
gives a recognisable sound; what Griffin-Lim costs is some phasiness and SI-SDR, which is not a perceptual measure.

Framing is causal: sub-frame ``i`` covers samples ``[(i + 1) h - N, (i + 1) h)`` (``h`` = ``spectral_hop``,
``N`` = ``spectral_n_fft``), so code frame ``f`` (sub-frames ``f s .. f s + s - 1``, ``s = hop_length / h``) reads
samples before ``(f + 1) * hop_length`` only, and the encoder streams exactly like it runs offline.

The phase is rebuilt in blocks of ``griffin_lim_block`` code frames. A block solves the frames from its first to
``look-ahead`` past its last, with the frames the previous block already committed to audio held fixed, and emits
the samples of its own frames: the output is the inverse STFT of one spectrum assembled block after block, so it
has no seams, streaming decode equals offline decode, and memory stays bounded by a block however long the clip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from soundgen.codec.config import CodecConfig
from soundgen.codec.fourier import ConvNeXtBlock
from soundgen.codec.streaming import StreamingModule

LOG_FLOOR = 1e-4  # magnitudes are compared and encoded as log(|X| + LOG_FLOOR)
MAX_LOG_MAG = 7.0  # |X| <= ~1100: a full-scale sine gives ~N / 4 = 160 in a 640-point Hann frame


def stft_frames(wav: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """Causal STFT: ``[B, T]`` (T a multiple of ``hop``) -> complex ``[B, n_fft // 2 + 1, T // hop]``; frame ``i``
    covers samples ``[(i + 1) hop - n_fft, (i + 1) hop)`` (zeros before the start)."""
    padded = F.pad(wav, (n_fft - hop, 0))
    frames = padded.unfold(-1, n_fft, hop) * window  # [B, T // hop, n_fft]
    return torch.fft.rfft(frames, dim=-1).transpose(1, 2)


def log_magnitude(wav: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """``log(|STFT| + LOG_FLOOR)`` of :func:`stft_frames`, ``[B, bins, T // hop]``."""
    return torch.log(stft_frames(wav, n_fft, hop, window).abs() + LOG_FLOOR)


def _causal(x: torch.Tensor, left: int) -> torch.Tensor:
    return F.pad(x, (left, 0))


class CausalConvNeXtBlock(ConvNeXtBlock):
    """:class:`ConvNeXtBlock` whose depthwise convolution sees the current and past frames only."""

    def __init__(self, dim: int, kernel_size: int = 7) -> None:
        super().__init__(dim, kernel_size)
        self.dwconv.padding = (0,)
        self.left = kernel_size - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(_causal(x, self.left)).transpose(1, 2)
        y = self.down(F.gelu(self.up(self.norm(y))))
        return x + (self.scale * y).transpose(1, 2)


class STFTEncoder(StreamingModule):
    """Audio ``[B, 1, T]`` (T a multiple of ``hop_length``) -> latents ``[B, latent_dim, T // hop_length]``.

    The log magnitudes of the ``s`` sub-frames of each code frame are stacked (``s * bins`` features), embedded
    and passed through causal ConvNeXt blocks. Offline the audio is preceded by ``context`` samples of zeros and
    their frames dropped; streaming keeps the last ``context`` samples instead, so both run the same arithmetic.
    """

    window: torch.Tensor

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        if cfg.channels != 1:
            raise ValueError("the STFT encoder reads mono audio (channels: 1)")
        self.n_fft, self.hop, self.frame = cfg.spectral_n_fft, cfg.spectral_hop, cfg.hop_length
        self.sub = cfg.hop_length // cfg.spectral_hop
        bins = self.n_fft // 2 + 1
        dim = cfg.spectral_dim
        self.embed = nn.Conv1d(self.sub * bins, dim, 3)
        self.blocks = nn.ModuleList(CausalConvNeXtBlock(dim) for _ in range(cfg.spectral_encoder_blocks))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, cfg.latent_dim)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        frames = 2 + 6 * cfg.spectral_encoder_blocks  # the convolutions' reach into the past, in code frames
        self.context = (frames + -(-self.n_fft // self.frame)) * self.frame
        self._buffer: torch.Tensor | None = None

    def reset_state(self) -> None:
        self._buffer = None

    def _run(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, context + n * frame]`` -> latents of the last ``n`` frames."""
        n = wav.shape[-1] // self.frame - self.context // self.frame
        m = log_magnitude(wav, self.n_fft, self.hop, self.window)  # [B, bins, F * sub]
        b, bins, t = m.shape
        x = ((m + 5.0) / 3.0).transpose(1, 2).reshape(b, t // self.sub, self.sub * bins).transpose(1, 2)
        x = self.embed(_causal(x, 2))
        for block in self.blocks:
            x = block(x)
        return self.out(self.norm(x.transpose(1, 2))).transpose(1, 2)[..., -n:]

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = wav[:, 0]
        if not self.is_streaming:
            if x.shape[-1] == 0:
                return x.new_zeros(x.shape[0], self.out.out_features, 0)
            return self._run(F.pad(x, (self.context, 0)))
        if self._buffer is None:
            self._buffer = x.new_zeros(x.shape[0], self.context)
        audio = torch.cat([self._buffer, x], dim=-1)
        n = (audio.shape[-1] - self.context) // self.frame
        if n == 0:
            self._buffer = audio
            return x.new_zeros(x.shape[0], self.out.out_features, 0)
        used = self.context + n * self.frame
        out = self._run(audio[:, :used])
        self._buffer = audio[:, used - self.context :]
        return out


class SpectralDecoder(nn.Module):
    """Latents ``[B, latent_dim, F]`` -> log magnitudes ``[B, bins, F * s]`` (:meth:`log_magnitude`), and audio
    through block-wise Griffin-Lim (:meth:`forward`, :class:`GriffinLimStream`).

    Its blocks are not causal: a code frame's magnitudes depend on ``receptive_frames`` frames on either side.
    """

    window: torch.Tensor

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        if cfg.channels != 1:
            raise ValueError("the spectral decoder makes mono audio (channels: 1)")
        self.n_fft, self.hop, self.frame = cfg.spectral_n_fft, cfg.spectral_hop, cfg.hop_length
        self.sub = cfg.hop_length // cfg.spectral_hop
        self.bins = self.n_fft // 2 + 1
        dim = cfg.spectral_dim
        self.embed = nn.Conv1d(cfg.latent_dim, dim, 3, padding=1)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim) for _ in range(cfg.spectral_decoder_blocks))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, self.sub * self.bins)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.iters = cfg.griffin_lim_iters
        self.block = cfg.griffin_lim_block
        self.receptive_frames = 1 + 3 * cfg.spectral_decoder_blocks

    def log_magnitude(self, z: torch.Tensor) -> torch.Tensor:
        """Args: z ``[B, latent_dim, F]``. Returns ``log(|X| + LOG_FLOOR)`` ``[B, bins, F * sub]``."""
        x = self.embed(z)
        for block in self.blocks:
            x = block(x)
        h = self.head(self.norm(x.transpose(1, 2))).float()  # [B, F, sub * bins]
        b, f, _ = h.shape
        return h.reshape(b, f * self.sub, self.bins).transpose(1, 2).clamp(max=MAX_LOG_MAG)

    def magnitude(self, z: torch.Tensor) -> torch.Tensor:
        """Args: z ``[B, latent_dim, F]``. Returns the magnitudes ``[B, bins, F * sub]`` (>= 0)."""
        return (torch.exp(self.log_magnitude(z)) - LOG_FLOOR).clamp(min=0.0)

    def phase_stream(self) -> GriffinLimStream:
        """A fresh block-wise phase rebuilder for this decoder's framing."""
        return GriffinLimStream(self.n_fft, self.hop, self.window, self.iters, self.block * self.sub)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Args: z ``[B, latent_dim, F]``. Returns audio ``[B, 1, F * hop_length]``."""
        stream = self.phase_stream()
        return torch.cat([stream.feed(self.magnitude(z)), stream.finish()], dim=-1)[:, None]


class GriffinLimStream:
    """Rebuild audio from magnitude frames (:func:`stft_frames` framing) fed in pieces, block by block.

    Each block of ``block`` frames is solved by ``iters`` iterations of fast Griffin-Lim (momentum 0.99) over the
    frames from its first to ``lookahead`` past its last, the ``overlap = n_fft / hop - 1`` frames the previous
    block's samples depend on held at the previous solution; its samples are then emitted. The free frames start
    from a fixed pseudo-random phase per block, so the result does not depend on how the frames were fed.
    """

    def __init__(self, n_fft: int, hop: int, window: torch.Tensor, iters: int, block: int) -> None:
        self.n_fft, self.hop, self.window, self.iters, self.block = n_fft, hop, window, iters, block
        self.overlap = n_fft // hop - 1  # frames after a sample's own frame that reach it
        self.lookahead = 2 * (self.overlap + 1)
        self._mag: torch.Tensor | None = None  # [B, bins, n] frames not yet committed, the first at self._pos
        self._fixed: torch.Tensor | None = None  # [B, bins, overlap] committed spectrum at self._pos...
        self._blocks = 0
        self._envelopes: dict[int, torch.Tensor] = {}  # region length -> 1 / summed squared window

    def feed(self, mag: torch.Tensor) -> torch.Tensor:
        """Args: magnitudes ``[B, bins, n]``. Returns the audio ``[B, k * block * hop]`` of the blocks completed."""
        self._mag = mag if self._mag is None else torch.cat([self._mag, mag], dim=-1)
        out = []
        need = self.block + self.overlap + self.lookahead
        while self._mag.shape[-1] >= need:
            out.append(self._solve(self.block))
        return torch.cat(out, dim=-1) if out else mag.new_zeros(mag.shape[0], 0)

    def finish(self) -> torch.Tensor:
        """The audio of the frames still held back ``[B, n * hop]``."""
        if self._mag is None or self._mag.shape[-1] == 0:
            return torch.zeros(0 if self._mag is None else self._mag.shape[0], 0)
        out = []
        while self._mag.shape[-1] > 0:
            out.append(self._solve(min(self.block, self._mag.shape[-1])))
        return torch.cat(out, dim=-1)

    def _frames_to_audio(self, spec: torch.Tensor) -> torch.Tensor:
        """Complex ``[B, bins, n]`` -> the samples ``[B, (n - 1) hop + n_fft]`` its frames cover, divided by the
        summed squared window (clamped where few frames reach)."""
        b, _, n = spec.shape
        frames = torch.fft.irfft(spec, n=self.n_fft, dim=1) * self.window[None, :, None]
        total = (n - 1) * self.hop + self.n_fft
        audio = F.fold(frames, (1, total), (1, self.n_fft), stride=(1, self.hop)).reshape(b, total)
        return audio * self._inverse_envelope(n)

    def _inverse_envelope(self, n: int) -> torch.Tensor:
        if n not in self._envelopes:
            total = (n - 1) * self.hop + self.n_fft
            env = F.fold((self.window**2)[None, :, None].expand(1, -1, n), (1, total), (1, self.n_fft),
                         stride=(1, self.hop)).reshape(1, total)
            self._envelopes[n] = 1.0 / env.clamp(min=1e-3)
        return self._envelopes[n]

    def _audio_to_frames(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft(audio.unfold(-1, self.n_fft, self.hop) * self.window, dim=-1).transpose(1, 2)

    def _solve(self, count: int) -> torch.Tensor:
        assert self._mag is not None
        mag = self._mag[..., : count + self.overlap + self.lookahead]
        fixed = 0 if self._fixed is None else min(self._fixed.shape[-1], mag.shape[-1])
        gen = torch.Generator().manual_seed(self._blocks)
        phase = torch.rand(mag.shape, generator=gen, dtype=torch.float32) * (2 * torch.pi)
        x = torch.polar(mag, phase.to(mag.device))
        if fixed:
            assert self._fixed is not None
            x[..., :fixed] = self._fixed[..., :fixed]
        prev = x
        for _ in range(self.iters):
            a = self._audio_to_frames(self._frames_to_audio(x))
            a = mag * a / a.abs().clamp(min=1e-8)
            if fixed:
                a[..., :fixed] = x[..., :fixed]
            x, prev = a + 0.99 * (a - prev), a  # the fixed frames stay: there a == prev
        x = prev
        # frame i of the region starts at sample (i + 1) hop - n_fft of the region, whose first sample is the
        # block's; the block's own samples start n_fft - hop into the rebuilt audio
        audio = self._frames_to_audio(x)[..., self.n_fft - self.hop : self.n_fft - self.hop + count * self.hop]
        self._fixed = x[..., count : count + self.overlap]
        self._mag = self._mag[..., count:]
        self._blocks += 1
        return audio
