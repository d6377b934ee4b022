"""The codec: encoder, residual vector quantizer and decoder, passed in (``Codec(encoder, quantizer, decoder)``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Self

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from soundgen.codec.config import CodecConfig
from soundgen.codec.fourier import FourierDecoder
from soundgen.codec.quantizer import QuantizedResult, ResidualVectorQuantizer
from soundgen.codec.seanet import SEANetDecoder, SEANetEncoder
from soundgen.codec.spectral import SpectralDecoder, STFTEncoder
from soundgen.codec.streaming import streaming
from soundgen.errors import ConfigError

GATE_FADE = 0.005  # seconds of fade at the edges of gated silence
SILENCE_PEAK = 1.0 / 32768  # a frame whose samples all lie within one 16-bit step of zero is digital silence


class Codec(nn.Module):
    """A neural audio codec implementing :class:`soundgen.tokenizer.AudioTokenizer`.

    Attributes:
        sample_rate: audio samples per second.
        channels: audio channels.
        frame_rate: code frames per second.
        n_codebooks: codebooks used by :meth:`encode` (at most ``max_codebooks``; see :meth:`set_n_codebooks`).
        max_codebooks: codebooks of the quantizer.
        codebook_size: entries per codebook.
        device: where the weights live.
        hop_length: audio samples per frame.
        model_id: name of a released model (``untrained`` otherwise).
        model_hash: SHA-256 of the weights when loaded from disk (``""`` otherwise).
    """

    def __init__(
        self, encoder: nn.Module, quantizer: ResidualVectorQuantizer, decoder: nn.Module, cfg: CodecConfig
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.quantizer = quantizer
        self.decoder = decoder
        self.config = cfg
        self.sample_rate = cfg.sample_rate
        self.channels = cfg.channels
        self.frame_rate = cfg.frame_rate
        self.hop_length = cfg.hop_length
        self.codebook_size = cfg.codebook_size
        self.max_codebooks = cfg.n_codebooks
        self.n_codebooks = cfg.n_codebooks
        self.model_id = "untrained"
        self.model_hash = ""  # set by soundgen.codec.io.load_codec
        self._silence: torch.Tensor | None = None  # [max_codebooks] codes of digital silence (silence_gate)

    @property
    def device(self) -> torch.device:
        """Where the weights live (and so :meth:`encode` and :meth:`decode` take their tensors)."""
        return next(self.parameters()).device

    def set_n_codebooks(self, k: int) -> None:
        """Use the first ``k`` codebooks when encoding (bitrate = ``k * frame_rate * bits_per_code``)."""
        if not 1 <= k <= self.max_codebooks:
            raise ValueError(f"n_codebooks must be in 1..{self.max_codebooks}, got {k}")
        self.n_codebooks = k

    def set_bitrate(self, kbps: float) -> int:
        """Use as many codebooks as fit in ``kbps``; return that number."""
        k = self.config.codebooks_for_bitrate(kbps)
        self.set_n_codebooks(k)
        return k

    def _pad(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() != 3 or wav.shape[1] != self.channels:
            raise ValueError(f"expected audio [B, {self.channels}, T], got {list(wav.shape)}")
        extra = (-wav.shape[-1]) % self.hop_length
        return F.pad(wav, (0, extra)) if extra else wav

    def forward(self, wav: torch.Tensor, n_quantizers: int | None = None) -> tuple[torch.Tensor, QuantizedResult]:
        """Training pass. Args: wav ``[B, C, T]``. Returns the reconstruction ``[B, C, T]`` and quantizer output.

        A spectral decoder in training mode returns its predicted log magnitudes ``[B, bins, T // spectral_hop]``
        instead of audio (it learns from them; Griffin-Lim, which makes the audio, has nothing to learn)."""
        length = wav.shape[-1]
        latents = self.encoder(self._pad(wav))
        q = self.quantizer(latents, n_quantizers)
        if self.training and isinstance(self.decoder, SpectralDecoder):
            return self.decoder.log_magnitude(q.quantized), q
        return self.decoder(q.quantized)[..., :length], q

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """Args: wav ``[B, C, T]`` in -1..1. Returns codes ``[B, K, ceil(T / hop)]`` int64, K = ``n_codebooks``."""
        padded = self._pad(wav)
        with parametrize.cached():
            codes = self.quantizer.encode(self.encoder(padded), self.n_codebooks)
        return self.mark_silence(padded, codes)

    def mark_silence(self, wav: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """With ``config.silence_gate``: give frames of digital silence (every sample within one 16-bit step of
        zero) the codes of silence, whatever the encoder's state (its first frames after a start differ).

        Args:
            wav: the audio of the frames, ``[B, C, F * hop]``.
            codes: their codes ``[B, K, F]``.
        """
        if not self.config.silence_gate or codes.shape[-1] == 0:
            return codes
        frames = wav[..., : codes.shape[-1] * self.hop_length].abs().reshape(wav.shape[0], -1, codes.shape[-1],
                                                                              self.hop_length)
        quiet = frames.amax(dim=(1, 3)) <= SILENCE_PEAK  # [B, F]
        if not bool(quiet.any()):
            return codes
        silence = self.silence_codes()[: codes.shape[1]].to(codes.device)
        return torch.where(quiet[:, None, :], silence[None, :, None], codes)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Args: codes ``[B, K, F]``. Returns audio ``[B, C, F * hop]``."""
        self._check_codes(codes)
        with parametrize.cached():
            audio = self.decoder(self.quantizer.decode(codes))
        return self.gate_silence(codes, audio)[0]

    @torch.no_grad()
    def silence_codes(self) -> torch.Tensor:
        """The codes ``[max_codebooks]`` the encoder gives digital silence (a frame from the middle of zeros)."""
        if self._silence is None:
            device = next(self.parameters()).device
            wav = torch.zeros(1, self.channels, self.hop_length * 16, device=device)
            with parametrize.cached():
                codes = self.quantizer.encode(self.encoder(wav), self.max_codebooks)[0]
            self._silence = codes[:, codes.shape[-1] // 2].clone()
        return self._silence

    def gate_silence(
        self, codes: torch.Tensor, audio: torch.Tensor, previous: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """With ``config.silence_gate``: zero the audio of frames whose codes are all those of digital silence.

        A frame of silence after sound fades out over its first :data:`GATE_FADE` seconds, and sound after silence
        fades in over as long, so the gate never clicks. It depends on the frame before only, so streaming
        decoding (``previous``: whether the last frame fed was silent, per batch row) equals offline decoding.

        Args:
            codes: ``[B, K, F]``.
            audio: their decoded audio ``[B, C, F * hop]``.
            previous: ``[B]`` bool, or None at the start.

        Returns:
            The gated audio and whether each row's last frame was silent (``None`` when the gate is off).
        """
        if not self.config.silence_gate or codes.shape[-1] == 0:
            return audio, previous
        silence = self.silence_codes()[: codes.shape[1]].to(codes.device)
        silent = (codes == silence[None, :, None]).all(dim=1)  # [B, F]
        start = previous[:, None] if previous is not None else torch.ones_like(silent[:, :1])  # from silence
        before = torch.cat([start, silent[:, :-1]], dim=1)
        if not bool(silent.any() or before.any()):
            return audio, silent[:, -1]
        hop = self.hop_length
        n = max(1, min(hop, int(round(GATE_FADE * self.sample_rate))))
        down = torch.ones(hop, device=audio.device)
        down[:n] = torch.linspace(1.0, 0.0, n, device=audio.device)
        down[n:] = 0.0
        up = torch.ones(hop, device=audio.device)
        up[:n] = torch.linspace(0.0, 1.0, n, device=audio.device)
        # per frame: 1 (sound after sound), a fade out (silence after sound), 0 (silence after silence),
        # a fade in (sound after silence)
        gain = torch.where(silent[..., None], torch.where(before[..., None], 0.0, down), torch.where(
            before[..., None], up, 1.0))  # [B, F, hop]
        return audio * gain.reshape(gain.shape[0], 1, -1).to(audio.dtype), silent[:, -1]

    def _check_codes(self, codes: torch.Tensor) -> None:
        if codes.dim() != 3 or not 1 <= codes.shape[1] <= self.max_codebooks:
            raise ValueError(f"expected codes [B, K<={self.max_codebooks}, F], got {list(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(f"codes must lie in [0, {self.codebook_size})")

    def encode_stream(self) -> EncodeStream:
        """A push-style streaming encoder: ``feed(chunk)`` returns the codes completed so far (see EncodeStream)."""
        return EncodeStream(self)

    def decode_stream(self) -> DecodeStream:
        """A push-style streaming decoder: ``feed(codes)`` returns their audio (see DecodeStream)."""
        if isinstance(self.decoder, SpectralDecoder):
            return SpectralDecodeStream(self)
        return DecodeStream(self)

    def stream_encode(self, chunks: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """Encode audio chunks ``[B, C, t_i]`` (any lengths) as they come.

        Yields code chunks ``[B, K, f_i]`` for every frame completed so far; their concatenation equals
        :meth:`encode` of the concatenated audio when its length is a multiple of ``hop_length`` (pad the last
        chunk otherwise, or use :meth:`EncodeStream.flush`).
        """
        with self.encode_stream() as stream:
            for chunk in chunks:
                codes = stream.feed(chunk)
                if codes.shape[-1]:
                    yield codes

    def stream_decode(self, code_chunks: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """Decode code chunks ``[B, K, f_i]``; yields audio whose concatenation equals offline :meth:`decode` of
        all the codes (a decoder with look-ahead yields later, and the rest at the end)."""
        with self.decode_stream() as stream:
            for codes in code_chunks:
                if codes.shape[-1]:
                    audio = stream.feed(codes)
                    if audio.shape[-1]:
                        yield audio
            rest = stream.flush()
            if rest.shape[-1]:
                yield rest


class _Stream:
    """Holds one module tree in streaming mode until :meth:`close` (or the end of a ``with`` block)."""

    def __init__(self, codec: Codec, part: nn.Module) -> None:
        self.codec = codec
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(streaming(part))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Leave streaming mode and forget the state."""
        self._stack.close()


class EncodeStream(_Stream):
    """Feed audio ``[B, C, t]`` chunks of any length; get the codes ``[B, K, f]`` of the frames they complete.

    The concatenated codes equal :meth:`Codec.encode` of the concatenated audio (padded to whole frames by
    :meth:`flush`). One encode stream per codec at a time (the state lives in the encoder's layers).
    """

    def __init__(self, codec: Codec) -> None:
        super().__init__(codec, codec.encoder)
        self.samples = 0
        self._partial: torch.Tensor | None = None  # samples of the frame in progress (for the silence marks)

    @torch.no_grad()
    def feed(self, chunk: torch.Tensor) -> torch.Tensor:
        """Args: chunk ``[B, C, t]``. Returns codes ``[B, K, f]`` (``f`` may be 0)."""
        if chunk.dim() != 3 or chunk.shape[1] != self.codec.channels:
            raise ValueError(f"expected audio [B, {self.codec.channels}, t], got {list(chunk.shape)}")
        self.samples += chunk.shape[-1]
        with parametrize.cached():
            latents = self.codec.encoder(chunk)
            if latents.shape[-1] == 0:
                codes = torch.zeros(chunk.shape[0], self.codec.n_codebooks, 0, dtype=torch.int64, device=chunk.device)
            else:
                codes = self.codec.quantizer.encode(latents, self.codec.n_codebooks)
        if not self.codec.config.silence_gate:
            return codes
        audio = chunk if self._partial is None else torch.cat([self._partial, chunk], dim=-1)
        done = codes.shape[-1] * self.codec.hop_length
        self._partial = audio[..., done:]
        return self.codec.mark_silence(audio[..., :done], codes)

    def flush(self, batch: int = 1) -> torch.Tensor:
        """Pad the audio fed so far with zeros to a whole frame and return the last codes ``[B, K, f]``."""
        pad = (-self.samples) % self.codec.hop_length
        device = next(self.codec.parameters()).device
        return self.feed(torch.zeros(batch, self.codec.channels, pad, device=device))


class DecodeStream(_Stream):
    """Feed codes ``[B, K, f]``; get their audio, equal to the matching part of :meth:`Codec.decode` of all the
    codes. One decode stream per codec at a time.

    A causal decoder (SEANet) returns ``f * hop`` samples per feed. A decoder with look-ahead (the Fourier head:
    ``receptive_frames`` on each side) returns the frames that have their whole context and keeps the rest, with
    ``receptive_frames`` of left context, for the next feed; :meth:`flush` returns what is left at the end.
    """

    def __init__(self, codec: Codec) -> None:
        if getattr(codec.decoder, "integrated", False):
            raise ConfigError("this codec's Fourier head carries its phase from the start of the clip "
                              "(fourier_phase: integrated), so it decodes whole clips only, not streams")
        super().__init__(codec, codec.decoder)
        self.context = int(getattr(codec.decoder, "receptive_frames", 0))
        self._codes: torch.Tensor | None = None  # [B, K, n] codes not yet emitted, after ``_left`` context frames
        self._left = 0
        self._silent: torch.Tensor | None = None

    def _run(self, codes: torch.Tensor) -> torch.Tensor:
        with parametrize.cached():
            return self.codec.decoder(self.codec.quantizer.decode(codes))

    def _gate(self, codes: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        audio, self._silent = self.codec.gate_silence(codes, audio, self._silent)
        return audio

    @torch.no_grad()
    def feed(self, codes: torch.Tensor) -> torch.Tensor:
        """Args: codes ``[B, K, f]``. Returns audio ``[B, C, f' * hop]`` (``f' = f`` for a causal decoder)."""
        self.codec._check_codes(codes)
        if codes.shape[-1] == 0:
            return torch.zeros(codes.shape[0], self.codec.channels, 0, device=codes.device)
        if not self.context:
            return self._gate(codes, self._run(codes))
        self._codes = codes if self._codes is None else torch.cat([self._codes, codes], dim=-1)
        ready = self._codes.shape[-1] - self._left - self.context  # frames with their whole right context
        if ready <= 0:
            return torch.zeros(codes.shape[0], self.codec.channels, 0, device=codes.device)
        return self._emit(ready)

    def _emit(self, ready: int) -> torch.Tensor:
        assert self._codes is not None
        hop = self.codec.hop_length
        audio = self._run(self._codes)[..., self._left * hop : (self._left + ready) * hop]
        out = self._gate(self._codes[..., self._left : self._left + ready], audio)
        keep_from = max(0, self._left + ready - self.context)
        self._codes = self._codes[..., keep_from:]
        self._left = self._left + ready - keep_from
        return out

    @torch.no_grad()
    def flush(self) -> torch.Tensor:
        """The audio of the frames still held back (look-ahead decoders), ``[B, C, f * hop]``."""
        if self._codes is None or self._codes.shape[-1] <= self._left:
            device = next(self.codec.parameters()).device
            return torch.zeros(1 if self._codes is None else self._codes.shape[0], self.codec.channels, 0,
                               device=device)
        return self._emit(self._codes.shape[-1] - self._left)


class SpectralDecodeStream(DecodeStream):
    """The spectral decoder's stream: magnitudes of the frames that have their whole look-ahead, then block-wise
    Griffin-Lim (:class:`soundgen.codec.spectral.GriffinLimStream`), which returns audio a block at a time; the
    concatenated audio equals :meth:`Codec.decode` of all the codes."""

    def __init__(self, codec: Codec) -> None:
        super().__init__(codec)
        assert isinstance(codec.decoder, SpectralDecoder)
        self._phase = codec.decoder.phase_stream()
        self._pending: torch.Tensor | None = None  # codes whose magnitudes went in and whose audio has not come out

    def _emit(self, ready: int) -> torch.Tensor:
        assert self._codes is not None and isinstance(self.codec.decoder, SpectralDecoder)
        dec = self.codec.decoder
        with parametrize.cached():
            mag = dec.magnitude(self.codec.quantizer.decode(self._codes))
        mag = mag[..., self._left * dec.sub : (self._left + ready) * dec.sub]
        done = self._codes[..., self._left : self._left + ready]
        self._pending = done if self._pending is None else torch.cat([self._pending, done], dim=-1)
        keep_from = max(0, self._left + ready - self.context)
        self._codes = self._codes[..., keep_from:]
        self._left = self._left + ready - keep_from
        return self._out(self._phase.feed(mag))

    def _out(self, audio: torch.Tensor) -> torch.Tensor:
        frames = audio.shape[-1] // self.codec.hop_length
        if frames == 0 or self._pending is None:
            return audio[:, None, :0]
        codes, self._pending = self._pending[..., :frames], self._pending[..., frames:]
        return self._gate(codes, audio[:, None])

    @torch.no_grad()
    def flush(self) -> torch.Tensor:
        parts = []
        if self._codes is not None and self._codes.shape[-1] > self._left:
            parts.append(self._emit(self._codes.shape[-1] - self._left))
        parts.append(self._out(self._phase.finish()))
        parts = [p for p in parts if p.shape[0]]
        return torch.cat(parts, dim=-1) if parts else torch.zeros(1, self.codec.channels, 0)


def build_codec(cfg: CodecConfig) -> Codec:
    """Build a codec (random weights) from its config."""
    decoder: nn.Module
    if cfg.decoder == "fourier":
        decoder = FourierDecoder(cfg)
    elif cfg.decoder == "spectral":
        decoder = SpectralDecoder(cfg)
    else:
        decoder = SEANetDecoder(cfg)
    encoder: nn.Module = STFTEncoder(cfg) if cfg.encoder == "stft" else SEANetEncoder(cfg)
    return Codec(encoder, ResidualVectorQuantizer(cfg), decoder, cfg)
