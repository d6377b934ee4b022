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
from soundgen.codec.quantizer import QuantizedResult, ResidualVectorQuantizer
from soundgen.codec.seanet import SEANetDecoder, SEANetEncoder
from soundgen.codec.streaming import streaming


class Codec(nn.Module):
    """A neural audio codec implementing :class:`soundgen.tokenizer.AudioTokenizer`.

    Attributes:
        sample_rate: audio samples per second.
        channels: audio channels.
        frame_rate: code frames per second.
        n_codebooks: codebooks used by :meth:`encode` (at most ``max_codebooks``; see :meth:`set_n_codebooks`).
        codebook_size: entries per codebook.
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
        """Training pass. Args: wav ``[B, C, T]``. Returns the reconstruction ``[B, C, T]`` and quantizer output."""
        length = wav.shape[-1]
        latents = self.encoder(self._pad(wav))
        q = self.quantizer(latents, n_quantizers)
        return self.decoder(q.quantized)[..., :length], q

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """Args: wav ``[B, C, T]`` in -1..1. Returns codes ``[B, K, ceil(T / hop)]`` int64, K = ``n_codebooks``."""
        with parametrize.cached():
            return self.quantizer.encode(self.encoder(self._pad(wav)), self.n_codebooks)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Args: codes ``[B, K, F]``. Returns audio ``[B, C, F * hop]``."""
        self._check_codes(codes)
        with parametrize.cached():
            return self.decoder(self.quantizer.decode(codes))

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
        """Decode code chunks ``[B, K, f_i]``; yields audio ``[B, C, f_i * hop]`` equal to offline :meth:`decode`."""
        with self.decode_stream() as stream:
            for codes in code_chunks:
                if codes.shape[-1]:
                    yield stream.feed(codes)


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

    @torch.no_grad()
    def feed(self, chunk: torch.Tensor) -> torch.Tensor:
        """Args: chunk ``[B, C, t]``. Returns codes ``[B, K, f]`` (``f`` may be 0)."""
        if chunk.dim() != 3 or chunk.shape[1] != self.codec.channels:
            raise ValueError(f"expected audio [B, {self.codec.channels}, t], got {list(chunk.shape)}")
        self.samples += chunk.shape[-1]
        with parametrize.cached():
            latents = self.codec.encoder(chunk)
            if latents.shape[-1] == 0:
                return torch.zeros(chunk.shape[0], self.codec.n_codebooks, 0, dtype=torch.int64, device=chunk.device)
            return self.codec.quantizer.encode(latents, self.codec.n_codebooks)

    def flush(self, batch: int = 1) -> torch.Tensor:
        """Pad the audio fed so far with zeros to a whole frame and return the last codes ``[B, K, f]``."""
        pad = (-self.samples) % self.codec.hop_length
        device = next(self.codec.parameters()).device
        return self.feed(torch.zeros(batch, self.codec.channels, pad, device=device))


class DecodeStream(_Stream):
    """Feed codes ``[B, K, f]``; get their audio ``[B, C, f * hop]``, equal to the matching part of
    :meth:`Codec.decode` of all the codes. One decode stream per codec at a time."""

    def __init__(self, codec: Codec) -> None:
        super().__init__(codec, codec.decoder)

    @torch.no_grad()
    def feed(self, codes: torch.Tensor) -> torch.Tensor:
        """Args: codes ``[B, K, f]``. Returns audio ``[B, C, f * hop]``."""
        self.codec._check_codes(codes)
        if codes.shape[-1] == 0:
            return torch.zeros(codes.shape[0], self.codec.channels, 0, device=codes.device)
        with parametrize.cached():
            return self.codec.decoder(self.codec.quantizer.decode(codes))


def build_codec(cfg: CodecConfig) -> Codec:
    """Build a codec (random weights) from its config."""
    return Codec(SEANetEncoder(cfg), ResidualVectorQuantizer(cfg), SEANetDecoder(cfg), cfg)
