"""TextToSound on the tiny random codec + LM: durations, progress, cancellation, seeds, bad requests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soundgen.errors import CancelledError, CorruptFileError, InvalidRequestError
from soundgen.lm.sampling_params import SamplingParams
from soundgen.pipeline import GenerationRequest, TextToSound
from soundgen.tokenizer import AudioTokenizer


@pytest.fixture(scope="module")
def tts() -> TextToSound:
    return TextToSound.tiny_random(seed=0)


def test_generate_duration_count_progress(tts: TextToSound) -> None:
    seen: list[tuple[int, int]] = []
    result = tts.generate(
        GenerationRequest("a dog barking", duration=0.1, count=2, seed=4), progress=lambda s, n: seen.append((s, n))
    )
    assert result.sample_rate == tts.codec.sample_rate == 8000
    assert len(result.audio) == 2
    assert all(a.shape == (1, 800) and a.dtype == np.float32 and np.isfinite(a).all() for a in result.audio)
    assert result.seed == 4 and result.duration == pytest.approx(0.1) and result.elapsed > 0
    total = seen[-1][1]
    assert seen == [(i, total) for i in range(1, total + 1)]
    assert total == 5 + tts.lm.cfg.n_codebooks - 1  # 0.1 s at 50 frames/s, plus the delay


def test_same_seed_reproduces_and_seed_is_reported(tts: TextToSound) -> None:
    req = GenerationRequest("rain", duration=0.05, seed=11)
    a, b = tts.generate(req), tts.generate(req)
    assert np.array_equal(a.audio[0], b.audio[0])
    drawn = tts.generate(GenerationRequest("rain", duration=0.05))
    again = tts.generate(GenerationRequest("rain", duration=0.05, seed=drawn.seed))
    assert np.array_equal(drawn.audio[0], again.audio[0])


def test_cache_and_no_cache_give_the_same_audio(tts: TextToSound) -> None:
    runs = [tts.generate_batch(["wind", "a bell"], 0.3, SamplingParams(), seed=2, use_cache=c) for c in (True, False)]
    for x, y in zip(runs[0].audio, runs[1].audio, strict=True):
        assert np.array_equal(x, y)


def test_cancel_raises(tts: TextToSound) -> None:
    steps: list[int] = []
    with pytest.raises(CancelledError):
        tts.generate(
            GenerationRequest("thunder", duration=0.5),
            progress=lambda s, n: steps.append(s),
            should_cancel=lambda: len(steps) >= 5,
        )
    assert len(steps) == 5


def test_long_duration_beyond_the_window(tts: TextToSound) -> None:
    window_s = tts.lm.cfg.max_frames / tts.lm.cfg.frame_rate
    result = tts.generate(GenerationRequest("engine", duration=2.2 * window_s, seed=1, top_k=50))
    assert result.audio[0].shape[-1] == round(2.2 * window_s * 8000)


def test_audio_prompt_continuation(tts: TextToSound) -> None:
    t = np.arange(1600) / 16000
    prompt = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]  # 0.1 s at 16 kHz
    result = tts.generate_batch(["a tone"], 0.05, seed=0, audio_prompt=prompt, audio_prompt_rate=16000)
    assert result.audio[0].shape == (1, 1200)  # 0.1 s of prompt + 0.05 s new, at 8 kHz
    request = GenerationRequest("a tone", duration=0.05, count=2, seed=0, audio_prompt=prompt, audio_prompt_rate=16000)
    same = tts.generate(request)  # a request carries its audio prompt too (the service's worker sends one)
    assert [a.shape for a in same.audio] == [(1, 1200)] * 2
    pair = tts.generate_batch(["a tone"] * 2, 0.05, seed=0, audio_prompt=prompt, audio_prompt_rate=16000)
    np.testing.assert_array_equal(same.audio[1], pair.audio[1])


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (GenerationRequest(""), "empty"),
        (GenerationRequest("x" * 1001), "limit"),
        (GenerationRequest(" ".join(["boom"] * 50)), "limit is 32"),
        (GenerationRequest("ok", duration=0), "duration"),
        (GenerationRequest("ok", duration=float("nan")), "duration"),
        (GenerationRequest("ok", count=0), "count"),
        (GenerationRequest("ok", top_p=2.0), "top_p"),
        (GenerationRequest("ok", seed=-1), "seed"),
        (GenerationRequest("ok", temperature=-1), "temperature"),
    ],
)
def test_bad_requests_are_refused(tts: TextToSound, request_: GenerationRequest, match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        tts.generate(request_)


def test_limit_peak_scales_overshoot_and_keeps_quiet_audio() -> None:
    import numpy as np

    from soundgen.pipeline import limit_peak

    quiet = np.array([[0.1, -0.5, 0.2]], dtype=np.float32)
    assert np.array_equal(limit_peak(quiet), quiet)
    loud = np.array([[0.5, -2.0, 1.0, np.nan]], dtype=np.float32)
    out = limit_peak(loud)
    assert out.dtype == np.float32 and np.isclose(np.abs(out).max(), 0.98)
    assert np.allclose(out[0, :3] / loud[0, :3], 0.49) and out[0, 3] == 0.0  # one gain for all, NaN -> 0


@pytest.fixture(scope="module")
def listening() -> TextToSound:
    """The tiny random model with its cross-attention made loud. At random initialisation the text moves the logits
    by about 1e-3 (their spread is 0.1), so no prompt, negative or not, changes a draw; scaled up, the text decides
    tokens, as it does in a trained model."""
    import torch

    tts = TextToSound.tiny_random(seed=0)
    with torch.no_grad():
        for block in tts.lm.blocks:
            block.cross_attn.out.weight.mul_(100.0)
    return tts


def test_a_negative_prompt_changes_the_sound_and_none_keeps_it(listening: TextToSound) -> None:
    def sound(**settings: object) -> np.ndarray:
        return listening.generate(GenerationRequest("rain", duration=0.1, seed=5, **settings)).audio[0]

    plain, steered = sound(), sound(negative_prompt="a dog barking")
    assert not np.array_equal(plain, steered)
    assert np.array_equal(steered, sound(negative_prompt="a dog barking"))  # reproducible
    assert not np.array_equal(steered, sound(negative_prompt="thunder"))  # the text itself matters
    for none in (None, "", "   "):
        assert np.array_equal(plain, sound(negative_prompt=none))
    # without guidance there is nothing to steer
    assert np.array_equal(sound(cfg_coef=1.0), sound(cfg_coef=1.0, negative_prompt="a dog barking"))


def test_no_negative_prompt_guides_against_the_null_condition(tts: TextToSound) -> None:
    import torch

    from soundgen.lm.generate import generate_codes

    lm = tts.lm
    memory = lm.memory(tts.conditioner.encode(["wind", "a bell"]))
    runs = [
        generate_codes(lm, memory, 6, SamplingParams(), generator=torch.Generator().manual_seed(3), negative=negative)
        for negative in (None, lm.null_memory(2))
    ]
    assert torch.equal(*runs)


@pytest.mark.parametrize(
    ("negative", "message"),
    [("x" * 1001, "the negative prompt is 1001 characters long"), (" ".join(["boom"] * 50), "negative prompt is 50")],
)
def test_an_overlong_negative_prompt_is_refused(tts: TextToSound, negative: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        tts.generate(GenerationRequest("rain", duration=0.05, negative_prompt=negative))


class _ToyTokenizer:
    """A codec that is nothing but the tokenizer protocol (no torch module): codes are a frame counter."""

    sample_rate, channels, frame_rate, hop = 8000, 1, 50.0, 160
    model_hash = ""

    def __init__(self, max_codebooks: int, codebook_size: int) -> None:
        self.max_codebooks = self.n_codebooks = max_codebooks
        self.codebook_size = codebook_size
        self.decoded: list[torch.Tensor] = []

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def set_n_codebooks(self, k: int) -> None:
        if not 1 <= k <= self.max_codebooks:
            raise ValueError(f"n_codebooks must be in 1..{self.max_codebooks}, got {k}")
        self.n_codebooks = k

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        frames = -(-wav.shape[-1] // self.hop)
        return torch.arange(frames).remainder(self.codebook_size).expand(wav.shape[0], self.n_codebooks, -1).clone()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        self.decoded.append(codes)
        return torch.zeros(codes.shape[0], self.channels, codes.shape[-1] * self.hop)


def test_the_pipeline_knows_the_codec_through_the_tokenizer_protocol_only(tts: TextToSound) -> None:
    lm, k = tts.lm, tts.lm.cfg.n_codebooks
    toy = _ToyTokenizer(max_codebooks=k + 2, codebook_size=lm.cfg.codebook_size)
    assert isinstance(toy, AudioTokenizer)
    pipeline = TextToSound(toy, lm, tts.conditioner)  # the LM models fewer codebooks: the codec uses as many
    assert toy.n_codebooks == k
    result = pipeline.generate_batch(["rain"], 0.1, seed=3, audio_prompt=np.zeros((1, 800), np.float32))
    assert result.audio[0].shape == (1, 1600) and toy.decoded[-1].shape == (1, k, 10)  # 5 prompt frames + 5 new
    assert torch.equal(toy.decoded[-1][..., :5], toy.encode(torch.zeros(1, 1, 800)))
    with pytest.raises(CorruptFileError, match=f"the LM models {k} codebooks but the codec has {k - 1}"):
        TextToSound(_ToyTokenizer(max_codebooks=k - 1, codebook_size=lm.cfg.codebook_size), lm, tts.conditioner)


def _silence_prone(silence_logit: float) -> TextToSound:
    """A tiny model whose LM writes each codebook's silence code with a set probability, through a gated codec.

    The final norm gives a constant hidden state, so the heads' first column is every step's logits: the silence
    code of each codebook gets ``silence_logit``, the other codes 0.
    """
    import dataclasses

    tts = TextToSound.tiny_random(seed=0)
    tts.codec.config = dataclasses.replace(tts.codec.config, silence_gate=True)
    silence, card = tts.codec.silence_codes(), tts.lm.cfg.codebook_size
    with torch.no_grad():
        tts.lm.heads.weight.zero_()
        tts.lm.norm.weight.zero_()
        tts.lm.norm.bias.zero_()
        tts.lm.norm.bias[0] = 1.0
        for k in range(tts.lm.cfg.n_codebooks):
            tts.lm.heads.weight[k * card + int(silence[k]), 0] = silence_logit
    return tts


def test_silent_sounds_are_drawn_again_and_the_rest_kept() -> None:
    from soundgen.audio.io import is_silent

    tts = _silence_prone(4.5)  # a one-frame sound is all silence codes about a third of the time
    once = tts.generate_batch(["a click"] * 16, 0.02, SamplingParams(), seed=1, silent_retries=0)
    first = [i for i, a in enumerate(once.audio) if is_silent(a)]
    assert first and once.regenerated == 0
    result = tts.generate_batch(["a click"] * 16, 0.02, SamplingParams(), seed=1)
    after = [i for i, a in enumerate(result.audio) if is_silent(a)]
    assert len(after) < len(first) and set(after) <= set(first)
    assert len(first) <= result.regenerated <= 2 * len(first)
    for i in set(range(16)) - set(first):
        assert np.array_equal(once.audio[i], result.audio[i])  # a sound that was heard is kept as it was
    again = tts.generate_batch(["a click"] * 16, 0.02, SamplingParams(), seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(result.audio, again.audio, strict=True))  # same seed, same sounds
    assert result.seed == again.seed == 1


def test_a_model_that_only_writes_silence_gives_up_after_the_retries() -> None:
    from soundgen.audio.io import is_silent

    tts = _silence_prone(60.0)
    rounds: list[int] = []
    result = tts.generate_batch(["an explosion"] * 3, 0.1, SamplingParams(), seed=0, silent_retries=2,
                                progress=lambda s, n: rounds.append(s) if s == 1 else None)
    assert all(is_silent(a) for a in result.audio) and all(a.shape == (1, 800) for a in result.audio)
    assert result.regenerated == 6 and len(rounds) == 3  # the first draw and two redraws of all three
    none = tts.generate_batch(["an explosion"] * 3, 0.1, SamplingParams(), seed=0, silent_retries=0)
    assert none.regenerated == 0
