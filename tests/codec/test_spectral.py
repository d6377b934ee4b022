"""The spectral codec: STFT-magnitude encoder, magnitude decoder, block-wise Griffin-Lim."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from soundgen.codec import CodecConfig, build_codec
from soundgen.codec.io import load_codec, save_codec
from soundgen.codec.model import Codec
from soundgen.codec.spectral import GriffinLimStream, STFTEncoder, log_magnitude, stft_frames

RATE = 8000


def _config(**changes: object) -> CodecConfig:
    base = dataclasses.replace(
        CodecConfig.tiny(), strides=[4, 4, 2], encoder="stft", decoder="spectral", spectral_n_fft=128,
        spectral_hop=16, spectral_dim=16, spectral_encoder_blocks=1, spectral_decoder_blocks=1, griffin_lim_block=3,
        griffin_lim_iters=8, silence_gate=True,
    )
    return dataclasses.replace(base, **changes)


def _codec(**changes: object) -> Codec:
    torch.manual_seed(0)
    return build_codec(_config(**changes)).eval()


def _tone(freq: float, seconds: float, rate: int = RATE, amp: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return amp * torch.sin(2 * torch.pi * freq * t)


def test_causal_stft_frames_read_only_the_past() -> None:
    x = torch.randn(1, 16 * 20)
    w = torch.hann_window(64)
    a = stft_frames(x, 64, 16, w)
    y = x.clone()
    y[:, 16 * 10 :] = 0.0  # change the future after frame 9's last sample
    b = stft_frames(y, 64, 16, w)
    assert a.shape == (1, 33, 20)
    assert torch.allclose(a[..., :10], b[..., :10]) and not torch.allclose(a[..., 10:], b[..., 10:])


def test_griffin_lim_rebuilds_a_steady_tone_from_its_magnitude_alone() -> None:
    n_fft, hop = 256, 32
    w = torch.hann_window(n_fft)
    x = _tone(1130.0, 1.0)[None]  # between bins (31.25 Hz apart) and off any grid
    mag = stft_frames(x, n_fft, hop, w).abs()
    stream = GriffinLimStream(n_fft, hop, w, iters=48, block=50)
    y = torch.cat([stream.feed(mag), stream.finish()], dim=-1)
    assert y.shape == x.shape
    # the rebuilt magnitude matches (phase is free): spectral convergence well below a random phase's
    rebuilt = stft_frames(y, n_fft, hop, w).abs()
    core = slice(20, -20)
    sc = float(torch.linalg.vector_norm((rebuilt - mag)[..., core]) / torch.linalg.vector_norm(mag[..., core]))
    assert sc < 0.1, sc
    spec = np.abs(np.fft.rfft(y[0, 1000:7000].numpy() * np.hanning(6000)))
    assert abs(np.argmax(spec) * RATE / 6000 - 1130.0) < 3.0  # the same pitch
    env = y[0, 1000:7000].abs().reshape(-1, 200).amax(-1)  # steady: no block seams, no swings
    assert float(env.min() / env.max()) > 0.85


def test_the_rebuilt_audio_does_not_depend_on_how_the_magnitudes_were_fed() -> None:
    n_fft, hop = 128, 16
    w = torch.hann_window(n_fft)
    mag = stft_frames(torch.randn(2, hop * 200) * 0.1, n_fft, hop, w).abs()
    whole = GriffinLimStream(n_fft, hop, w, 6, 24)
    offline = torch.cat([whole.feed(mag), whole.finish()], dim=-1)
    for size in (1, 13, 50):
        s = GriffinLimStream(n_fft, hop, w, 6, 24)
        parts = [s.feed(mag[..., i : i + size]) for i in range(0, mag.shape[-1], size)]
        streamed = torch.cat([*parts, s.finish()], dim=-1)
        assert torch.allclose(streamed, offline, atol=1e-5), size


def test_encoder_and_decoder_stream_exactly_like_offline() -> None:
    codec = _codec()
    wav = torch.randn(2, 1, codec.hop_length * 23) * 0.2
    codes = codec.encode(wav)
    assert codes.shape == (2, codec.max_codebooks, 23)
    for size in (1, 50, 333):
        chunks = [wav[..., i : i + size] for i in range(0, wav.shape[-1], size)]
        assert torch.equal(torch.cat(list(codec.stream_encode(chunks)), dim=-1), codes), size
    offline = codec.decode(codes)
    assert offline.shape == (2, 1, 23 * codec.hop_length)
    for size in (1, 4, 23):
        chunks = [codes[..., i : i + size] for i in range(0, codes.shape[-1], size)]
        streamed = torch.cat(list(codec.stream_decode(chunks)), dim=-1)
        assert torch.allclose(streamed, offline, atol=1e-4), size


def test_an_encoder_frame_reads_only_its_own_and_earlier_audio() -> None:
    enc = STFTEncoder(_config()).eval()
    wav = torch.randn(1, 1, 32 * 12)
    a = enc(wav)
    wav[..., 32 * 7 :] = 0.0
    assert torch.allclose(enc(wav)[..., :7], a[..., :7], atol=1e-6)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_silence_in_is_silence_out(k: int) -> None:
    codec = _codec()
    codec.set_n_codebooks(k)
    codes = codec.encode(torch.zeros(1, 1, RATE))
    assert (codes == codec.silence_codes()[:k, None]).all()
    assert float(codec.decode(codes).abs().max()) == 0.0  # below -60 dBFS by any measure


def test_it_trains_on_magnitudes_and_saves_and_loads(tmp_path: Path) -> None:
    from soundgen.codec.config import CodecRunConfig
    from soundgen.train.codec import CodecTrainer, validate

    cfg = CodecRunConfig.tiny()
    cfg.model = _config()
    cfg.train.discriminator, cfg.train.lr = False, 3e-3
    trainer = CodecTrainer(cfg, torch.device("cpu"))
    wav = torch.stack([_tone(f, 0.128) for f in (300.0, 1130.0)])[:, None]
    first = trainer.train_step(wav)
    assert {"loss/logmag", "loss/sc", "loss/mel"} <= set(first)
    for _ in range(30):
        last = trainer.train_step(wav)
    assert last["loss/logmag"] < 0.85 * first["loss/logmag"]  # it learns
    res = validate(trainer.codec, [wav])  # validation decodes audio (Griffin-Lim)
    assert set(res.metrics) == set(cfg.model.bitrates) and np.isfinite(res.metrics[10.0]["mel"])
    save_codec(trainer.codec, tmp_path / "codec")
    loaded = load_codec(tmp_path / "codec")
    assert loaded.config.encoder == "stft" and loaded.config.decoder == "spectral"
    trainer.codec.eval()
    codes = loaded.encode(wav)
    assert torch.equal(codes, trainer.codec.encode(wav))
    assert torch.allclose(loaded.decode(codes), trainer.codec.decode(codes), atol=1e-5)


def test_a_log_magnitude_matches_the_loss_target() -> None:
    x = torch.randn(1, 16 * 10)
    w = torch.hann_window(64)
    assert torch.allclose(log_magnitude(x, 64, 16, w).exp() - 1e-4, stft_frames(x, 64, 16, w).abs(), atol=1e-4)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"spectral_hop": 12}, "spectral_hop must divide"), ({"spectral_n_fft": 24}, "at least twice"),
     ({"griffin_lim_block": 0}, "griffin_lim_block")],
)
def test_bad_spectral_settings_are_refused_clearly(changes: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _config(**changes)
