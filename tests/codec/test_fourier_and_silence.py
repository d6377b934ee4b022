"""Codec v3 parts: the Fourier-head decoder, the silence gate, and training a decoder for frozen codes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from soundgen.codec import CodecConfig, build_codec
from soundgen.codec.fourier import FourierDecoder
from soundgen.codec.io import load_codec, save_codec
from soundgen.codec.model import GATE_FADE, Codec

BUNDLED = Path(__file__).resolve().parents[2] / "models" / "default" / "codec"


def _tiny(**changes: object) -> Codec:
    torch.manual_seed(0)
    return build_codec(dataclasses.replace(CodecConfig.tiny(), **changes)).eval()


def _db(x: torch.Tensor) -> float:
    return 20 * float(torch.log10(x.abs().max().clamp(min=1e-12)))


def test_inverse_stft_reconstructs_a_signal_exactly() -> None:
    dec = FourierDecoder(dataclasses.replace(CodecConfig.tiny(), decoder="fourier", fourier_dim=16,
                                             fourier_blocks=1))
    x = torch.randn(2, dec.hop * 40)
    pad = (dec.n_fft - dec.hop) // 2
    frames = torch.nn.functional.pad(x, (pad, pad)).unfold(-1, dec.n_fft, dec.hop)  # [B, F, n_fft]
    spec = torch.fft.rfft(frames * dec.window, dim=-1).transpose(1, 2)
    assert torch.allclose(dec.istft(spec), x, atol=1e-5)


def test_fourier_decoder_shapes_and_streaming_equal_offline() -> None:
    codec = _tiny(decoder="fourier", fourier_dim=16, fourier_blocks=2)
    wav = torch.randn(2, 1, 16 * 90) * 0.2
    codes = codec.encode(wav)
    offline = codec.decode(codes)
    assert offline.shape == (2, 1, codes.shape[-1] * codec.hop_length)
    for size in (1, 7, 40):
        chunks = [codes[..., i : i + size] for i in range(0, codes.shape[-1], size)]
        streamed = torch.cat(list(codec.stream_decode(chunks)), dim=-1)
        assert streamed.shape == offline.shape
        assert torch.allclose(streamed, offline, atol=1e-5), size
    recon, _ = codec.train()(wav)  # the training pass goes through it too
    assert recon.shape == wav.shape and recon.requires_grad


@pytest.mark.parametrize("decoder", ["seanet", "fourier"])
def test_silence_in_is_silence_out_at_every_bitrate(decoder: str) -> None:
    codec = _tiny(decoder=decoder, fourier_dim=16, fourier_blocks=1, silence_gate=True)
    for k in range(1, codec.max_codebooks + 1):
        codec.set_n_codebooks(k)
        codes = codec.encode(torch.zeros(1, 1, 4000))
        assert (codes == codec.silence_codes()[:k, None]).all()  # every frame, the first ones included
        assert float(codec.decode(codes).abs().max()) == 0.0
    ungated = _tiny(decoder=decoder, fourier_dim=16, fourier_blocks=1)
    assert float(ungated.decode(ungated.encode(torch.zeros(1, 1, 4000))).abs().max()) > 0  # what the gate removes


def test_the_gate_fades_around_sound_and_streams_like_offline() -> None:
    codec = _tiny(silence_gate=True)
    hop, sr = codec.hop_length, codec.sample_rate
    wav = torch.zeros(1, 1, hop * 60)
    wav[..., hop * 20 : hop * 40] = 0.5 * torch.sin(torch.arange(hop * 20) * 0.3)
    codes = codec.encode(wav)
    out = codec.decode(codes)
    assert float(out[..., : hop * 19].abs().max()) == 0.0 and float(out[..., hop * 42 :].abs().max()) == 0.0
    assert float(out[..., hop * 21 : hop * 39].abs().max()) > 0.01  # the sound itself is not gated
    fade = max(1, int(GATE_FADE * sr))
    first = int(torch.nonzero(out[0, 0].abs() > 0)[0])
    assert first >= hop * 20 - hop and out[0, 0, first : first + fade].abs().max() > 0  # a fade, not a cut
    with codec.encode_stream() as enc:
        parts = [enc.feed(wav[..., i : i + 37]) for i in range(0, wav.shape[-1], 37)] + [enc.flush()]
    assert torch.equal(torch.cat(parts, dim=-1), codes)
    streamed = torch.cat(list(codec.stream_decode([codes[..., i : i + 5] for i in range(0, 60, 5)])), dim=-1)
    assert torch.allclose(streamed, out, atol=1e-6)


@pytest.mark.skipif(not BUNDLED.is_dir(), reason="needs the bundled codec")
def test_bundled_codec_with_the_gate_is_silent_on_silence_below_minus_60_dbfs(tmp_path: Path) -> None:
    codec = load_codec(BUNDLED)
    codec.config.silence_gate = True
    for k in (3, 4, 6, 12):
        codec.set_n_codebooks(k)
        out = codec.decode(codec.encode(torch.zeros(1, 1, 16000 * 2)))
        assert _db(out) < -60
    codec.config.silence_gate = False
    assert _db(codec.decode(codec.encode(torch.zeros(1, 1, 16000 * 2)))) > -60  # the buzz the issue reports


def test_a_decoder_trains_for_frozen_released_codes(tmp_path: Path) -> None:
    from soundgen.codec.config import CodecRunConfig
    from soundgen.train.codec import CodecTrainer, init_from_release

    base = _tiny()
    save_codec(base, tmp_path / "released")
    cfg = CodecRunConfig.tiny()
    cfg.model.decoder, cfg.model.fourier_dim, cfg.model.fourier_blocks = "fourier", 16, 1
    cfg.train.freeze_encoder, cfg.train.discriminator = True, False
    trainer = CodecTrainer(cfg, torch.device("cpu"))
    assert init_from_release(trainer.codec, tmp_path / "released") == ["encoder", "quantizer"]
    before = {k: v.clone() for k, v in trainer.codec.state_dict().items() if not k.startswith("decoder.")}
    rng = np.random.default_rng(0)
    wav = torch.from_numpy(rng.standard_normal((2, 1, 1024)).astype(np.float32) * 0.1)
    first = trainer.train_step(wav)["loss/mel"]
    for _ in range(6):
        last = trainer.train_step(wav)["loss/mel"]
    assert last < first  # the decoder learns
    after = trainer.codec.state_dict()
    for k, v in before.items():  # encoder weights and codebooks did not move
        assert torch.equal(after[k], v), k
    assert torch.equal(trainer.codec.encode(wav), base.encode(wav))  # so every code stays valid


def test_init_can_leave_a_fitting_decoder_fresh(tmp_path: Path) -> None:
    from soundgen.codec.config import CodecRunConfig
    from soundgen.train.codec import CodecTrainer, init_from_release

    base = _tiny()
    save_codec(base, tmp_path / "released")
    cfg = CodecRunConfig.tiny()
    cfg.model = base.config
    trainer = CodecTrainer(cfg, torch.device("cpu"))
    fresh = {k: v.clone() for k, v in trainer.codec.decoder.state_dict().items()}
    assert init_from_release(trainer.codec, tmp_path / "released", decoder=False) == ["encoder", "quantizer"]
    assert all(torch.equal(v, fresh[k]) for k, v in trainer.codec.decoder.state_dict().items())
    assert init_from_release(trainer.codec, tmp_path / "released") == ["encoder", "quantizer", "decoder"]
    released = base.decoder.state_dict()
    assert all(torch.equal(v, released[k]) for k, v in trainer.codec.decoder.state_dict().items())


def test_a_snake_decoder_trains_on_an_elu_encoders_codes(tmp_path: Path) -> None:
    from soundgen.codec.config import CodecRunConfig
    from soundgen.codec.seanet import Snake
    from soundgen.train.codec import CodecTrainer, init_from_release

    base = _tiny()
    save_codec(base, tmp_path / "released")
    cfg = CodecRunConfig.tiny()
    cfg.model = dataclasses.replace(base.config, decoder_activation="snake")
    cfg.train.freeze_encoder, cfg.train.discriminator = True, False
    trainer = CodecTrainer(cfg, torch.device("cpu"))
    assert not any(isinstance(m, Snake) for m in trainer.codec.encoder.modules())
    assert sum(isinstance(m, Snake) for m in trainer.codec.decoder.modules()) >= 3
    assert init_from_release(trainer.codec, tmp_path / "released") == ["encoder", "quantizer"]  # ELU decoder: no fit
    wav = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 1, 1024)).astype(np.float32) * 0.1)
    assert torch.equal(trainer.codec.encode(wav), base.encode(wav))  # the codes are the released codec's
    first = trainer.train_step(wav)["loss/mel"]
    for _ in range(6):
        last = trainer.train_step(wav)["loss/mel"]
    assert last < first
    save_codec(trainer.codec, tmp_path / "snake")
    loaded = load_codec(tmp_path / "snake")
    assert loaded.config.decoder_activation == "snake"
    codes = loaded.encode(wav)
    assert torch.allclose(loaded.decode(codes), trainer.codec.eval().decode(codes), atol=1e-5)


def _fit_residual(y: np.ndarray, freq: float, rate: int) -> float:
    """Relative rms of what a least-squares sinusoid at ``freq`` leaves of ``y``."""
    t = np.arange(len(y)) / rate
    basis = np.stack([np.cos(2 * np.pi * freq * t), np.sin(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    return float((y - basis @ coef).std() / y.std())


def test_integrated_phase_carries_a_steady_tone_from_frame_to_frame() -> None:
    cfg = dataclasses.replace(CodecConfig(), decoder="fourier", fourier_phase="integrated")
    dec = FourierDecoder(cfg)
    bins, frames, hop, n_fft = dec.n_fft // 2 + 1, 60, dec.hop, dec.n_fft
    zeros, carry = torch.zeros(1, bins, frames), torch.ones(1, bins, frames)
    for k, between in [(33, False), (81, False), (40, True)]:
        freq = (k + 0.5 * between) * cfg.sample_rate / n_fft
        mag = torch.zeros(1, bins, frames)
        mag[:, k] = 1.0
        deviation, start = zeros.clone(), zeros.clone()
        if between:  # a partial half-way between bins k and k + 1: both advance at its rate
            mag[:, k + 1] = 1.0
            deviation[:, k] = 2 * torch.pi * 0.5 / n_fft * hop
            deviation[:, k + 1] = -2 * torch.pi * 0.5 / n_fft * hop
            start[:, k + 1] = torch.pi  # opposite at the frame's start, so they add up at its centre
        y = dec.istft(mag * dec.integrate_phase(deviation, start, carry))[0].numpy()[n_fft:-n_fft]
        assert _fit_residual(y, freq, cfg.sample_rate) < 0.01, (k, between)  # steady: below 1 % of the tone
        # the same frames with a fresh phase of 0 in every frame: the tone breaks up at the frame rate
        fresh = dec.istft(mag * torch.polar(carry, zeros))[0].numpy()[n_fft:-n_fft]
        if k % 4:  # (a bin whose advance over a hop is a whole turn needs no carrying)
            assert _fit_residual(fresh, freq, cfg.sample_rate) > 0.3
    # a closed gate takes the fresh phase of every frame
    phase = torch.rand(1, bins, frames) * 6
    closed = dec.integrate_phase(torch.randn(1, bins, frames), phase, torch.zeros(1, bins, frames))
    assert torch.allclose(closed, torch.polar(carry, phase), atol=1e-5)


def test_a_codec_with_integrated_phase_trains_and_refuses_to_stream() -> None:
    from soundgen.codec.config import CodecRunConfig
    from soundgen.errors import ConfigError
    from soundgen.train.codec import CodecTrainer

    cfg = CodecRunConfig.tiny()
    cfg.model.decoder, cfg.model.fourier_dim, cfg.model.fourier_blocks = "fourier", 16, 1
    cfg.model.fourier_phase = "integrated"
    cfg.train.discriminator, cfg.train.weight_stft = False, 1.0
    trainer = CodecTrainer(cfg, torch.device("cpu"))
    wav = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 1, 1024)).astype(np.float32) * 0.1)
    first = trainer.train_step(wav)["loss/mel"]
    for _ in range(6):
        last = trainer.train_step(wav)["loss/mel"]
    assert last < first
    codec = trainer.codec.eval()
    audio = codec.decode(codec.encode(wav))
    assert audio.shape == wav.shape and torch.isfinite(audio).all()
    with pytest.raises(ConfigError, match="whole clips only"):
        codec.decode_stream()


def test_a_wider_decoder_keeps_the_encoder_and_its_codes(tmp_path: Path) -> None:
    from soundgen.train.codec import init_from_release

    base = _tiny()
    save_codec(base, tmp_path / "released")
    wide = build_codec(dataclasses.replace(base.config, decoder_base_channels=2 * base.config.base_channels))
    n_params = [sum(p.numel() for p in m.parameters()) for m in (base.decoder, wide.decoder)]
    assert n_params[1] > 1.2 * n_params[0]  # (the tiny config caps its stages at 16 channels)
    assert init_from_release(wide, tmp_path / "released") == ["encoder", "quantizer"]
    wav = torch.from_numpy(np.random.default_rng(1).standard_normal((1, 1, 1024)).astype(np.float32) * 0.1)
    assert torch.equal(wide.eval().encode(wav), base.encode(wav))
    assert wide.decode(base.encode(wav)).shape == wav.shape


def test_linear_upsampling_interpolates_causally_and_streams_like_offline() -> None:
    from soundgen.codec.streaming import CausalLinearUpsample1d, streaming

    up = CausalLinearUpsample1d(4)
    x = torch.tensor([[[1.0, 2.0, 4.0]]])
    assert up(x)[0, 0].tolist() == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0])
    long = torch.randn(2, 3, 40)
    offline = up(long)
    with streaming(up):
        parts = [up(long[..., i : i + 7]) for i in range(0, 40, 7)]
    assert torch.allclose(torch.cat(parts, dim=-1), offline)
    # a decoder built on it decodes the released codes, and streams as it decodes offline
    codec = _tiny(decoder_upsample="linear")
    wav = torch.from_numpy(np.random.default_rng(2).standard_normal((1, 1, 1600)).astype(np.float32) * 0.1)
    codes = codec.encode(wav)
    whole = codec.decode(codes)
    stream = codec.decode_stream()
    pieces = torch.cat([stream.feed(codes[..., i : i + 3]) for i in range(0, codes.shape[-1], 3)], dim=-1)
    assert whole.shape == wav.shape and torch.allclose(pieces, whole, atol=1e-5)
