"""Codec model: shapes, causality, bitrates, streaming equals offline."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from soundgen.codec import CodecConfig, build_codec
from soundgen.codec.model import Codec
from soundgen.tokenizer import AudioTokenizer


def _codec(**changes: object) -> Codec:
    torch.manual_seed(0)
    return build_codec(dataclasses.replace(CodecConfig.tiny(), **changes)).eval()


def test_codec_is_an_audio_tokenizer_with_expected_shapes() -> None:
    codec = _codec()
    assert isinstance(codec, AudioTokenizer)
    wav = torch.randn(2, 1, 1000) * 0.1
    codes = codec.encode(wav)
    assert codes.dtype == torch.int64
    assert codes.shape == (2, codec.n_codebooks, 1000 // 16 + 1)  # padded up to whole frames
    assert int(codes.min()) >= 0 and int(codes.max()) < codec.codebook_size
    out = codec.decode(codes)
    assert out.shape == (2, 1, codes.shape[-1] * codec.hop_length)
    assert codec.frame_rate == 8000 / 16


def test_set_bitrate_picks_codebooks() -> None:
    cfg = CodecConfig()
    assert [cfg.codebooks_for_bitrate(b) for b in (1.5, 3, 6)] == [3, 6, 12]
    assert cfg.bitrate(12) == pytest.approx(6.0)
    codec = _codec()
    assert codec.set_bitrate(5.0) == 2  # 500 frames/s x 5 bits = 2.5 kbps per codebook
    assert codec.encode(torch.zeros(1, 1, 160)).shape[1] == 2
    with pytest.raises(ValueError):
        codec.set_n_codebooks(0)


def test_encoder_is_causal() -> None:
    codec = _codec()
    hop = codec.hop_length
    wav = torch.randn(1, 1, 40 * hop) * 0.3
    changed = wav.clone()
    changed[..., 25 * hop :] = torch.randn(1, 1, 15 * hop)
    latents_a = codec.encoder(wav)
    latents_b = codec.encoder(changed)
    torch.testing.assert_close(latents_a[..., :25], latents_b[..., :25])
    assert not torch.allclose(latents_a[..., 25:], latents_b[..., 25:])
    assert torch.equal(codec.encode(wav)[..., :25], codec.encode(changed)[..., :25])


def test_decoder_is_causal() -> None:
    codec = _codec()
    codes = torch.randint(0, 32, (1, 4, 30))
    other = codes.clone()
    other[..., 20:] = (other[..., 20:] + 1) % 32
    a, b = codec.decode(codes), codec.decode(other)
    torch.testing.assert_close(a[..., : 20 * codec.hop_length], b[..., : 20 * codec.hop_length])


@pytest.mark.parametrize("changes", [{}, {"activation": "snake", "lstm_layers": 1, "codebook_dim": 4}])
def test_streaming_equals_offline(changes: dict[str, object]) -> None:
    codec = _codec(**changes)
    hop = codec.hop_length
    wav = torch.randn(2, 1, 37 * hop) * 0.3
    offline_codes = codec.encode(wav)
    sizes = [1, 5, hop - 1, 3 * hop + 7, 2, 200]
    pieces, start = [], 0
    for size in sizes * 10:
        if start >= wav.shape[-1]:
            break
        pieces.append(wav[..., start : start + size])
        start += size
    streamed = torch.cat(list(codec.stream_encode(pieces)), dim=-1)
    assert torch.equal(streamed, offline_codes)

    offline_audio = codec.decode(offline_codes)
    code_pieces = [offline_codes[..., i : i + n] for i, n in ((0, 1), (1, 4), (5, 0), (5, 13), (18, 19))]
    streamed_audio = torch.cat(list(codec.stream_decode(code_pieces)), dim=-1)
    torch.testing.assert_close(streamed_audio, offline_audio, atol=1e-5, rtol=1e-4)


def test_decode_rejects_out_of_range_codes() -> None:
    codec = _codec()
    with pytest.raises(ValueError):
        codec.decode(torch.full((1, 2, 3), 32))
    with pytest.raises(ValueError):
        codec.decode(torch.zeros(1, 5, 3, dtype=torch.int64))


def test_push_streams_with_flush_equal_offline() -> None:
    codec = _codec(lstm_layers=1)
    wav = torch.randn(1, 1, 301) * 0.3  # not a whole number of frames
    offline = codec.encode(wav)
    with codec.encode_stream() as enc:
        parts = [enc.feed(wav[..., i : i + 37]) for i in range(0, 301, 37)]
        parts.append(enc.flush())
    assert torch.equal(torch.cat(parts, dim=-1), offline)
    with codec.decode_stream() as dec, codec.encode_stream() as enc2:  # both directions at once
        audio = [dec.feed(offline[..., i : i + 3]) for i in range(0, offline.shape[-1], 3)]
        enc2.feed(wav)
    torch.testing.assert_close(torch.cat(audio, dim=-1), codec.decode(offline), atol=1e-5, rtol=1e-4)
    # state is released: a new stream starts from silence again
    with codec.encode_stream() as enc:
        again = torch.cat([enc.feed(wav), enc.flush()], dim=-1)
    assert torch.equal(again, offline)
