"""Token cache: every clip encoded once, resumable, memory-mapped crops for training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sg_testdata import write_labelled_dataset
from soundgen.codec.config import CodecConfig
from soundgen.codec.model import build_codec
from soundgen.data.manifest import Clip
from soundgen.data.tokens import TokenCache, TokenCacheError, read_meta, tokenize_dataset


def write_dataset(root: Path, per_split: dict[str, int]) -> list[Clip]:
    return write_labelled_dataset(root, per_split)


@pytest.fixture
def codec() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_codec(CodecConfig.tiny()).eval()


def test_tokenize_round_trip_and_resume(tmp_path: Path, codec: torch.nn.Module) -> None:
    clips = write_dataset(tmp_path / "ds", {"train": 5, "valid": 2})
    out = tmp_path / "tokens"
    report = tokenize_dataset(tmp_path / "ds", codec, out, shard_frames=300)
    assert report.encoded == 7 and report.failed == [] and report.shards >= 3  # 125 frames a clip, 300 a shard
    meta = read_meta(out)
    assert (meta.n_codebooks, meta.codebook_size, meta.frame_rate) == (4, 32, 500.0)
    cache = TokenCache(out, "train")
    assert len(cache) == 5
    from soundgen.audio.io import read_audio

    first = clips[0]
    audio = read_audio(first.path(tmp_path / "ds"), sample_rate=8000)
    expected = codec.encode(torch.from_numpy(audio.samples)[None])[0].numpy()
    index = [r.id for r in cache.records].index(first.id)
    assert np.array_equal(cache.codes(index), expected)
    assert cache.records[index].caption == first.caption and cache.records[index].category == "tone"

    # a rerun encodes nothing again; a new clip is added in a new shard
    again = tokenize_dataset(tmp_path / "ds", codec, out, shard_frames=300)
    assert again.encoded == 0 and again.skipped_existing == 7
    write_dataset(tmp_path / "ds", {"train": 6})
    more = tokenize_dataset(tmp_path / "ds", codec, out, shard_frames=300)
    assert more.encoded == 1 and len(TokenCache(out, "train")) == 6


def test_interrupted_shard_is_redone(tmp_path: Path, codec: torch.nn.Module) -> None:
    write_dataset(tmp_path / "ds", {"train": 4})
    out = tmp_path / "tokens"
    tokenize_dataset(tmp_path / "ds", codec, out, shard_frames=200)
    shards = sorted((out / "train").glob("shard_*.jsonl"))
    lost = len(shards[-1].read_text().splitlines())
    shards[-1].unlink()  # as if the run died before this shard's index was written: its .npy alone does not count
    assert len(TokenCache(out, "train")) == 4 - lost
    report = tokenize_dataset(tmp_path / "ds", codec, out, shard_frames=200)
    assert report.encoded == lost and len(TokenCache(out, "train")) == 4


def test_batches_crop_and_pad(tmp_path: Path, codec: torch.nn.Module) -> None:
    write_dataset(tmp_path / "ds", {"train": 3})
    tokenize_dataset(tmp_path / "ds", codec, tmp_path / "tokens")
    cache = TokenCache(tmp_path / "tokens", "train")
    batch = cache.sample_batch(4, 200, 2, np.random.default_rng(0))  # clips have 125 frames: padded
    assert batch.codes.shape == (4, 2, 200) and batch.codes.dtype == torch.int64
    assert bool((batch.codes[:, :, 125:] == -1).all()) and bool((batch.codes[:, :, :125] >= 0).all())
    crop = cache.sample_batch(2, 50, 4, np.random.default_rng(1)).codes
    assert crop.shape == (2, 4, 50) and bool((crop >= 0).all())


def test_other_codec_is_refused(tmp_path: Path, codec: torch.nn.Module) -> None:
    write_dataset(tmp_path / "ds", {"train": 1})
    tokenize_dataset(tmp_path / "ds", codec, tmp_path / "tokens")
    codec.set_n_codebooks(2)
    with pytest.raises(TokenCacheError, match="another codec"):
        tokenize_dataset(tmp_path / "ds", codec, tmp_path / "tokens")
    with pytest.raises(TokenCacheError, match="no 'test' clips"):
        TokenCache(tmp_path / "tokens", "test")
    assert json.loads((tmp_path / "tokens" / "meta.json").read_text())["n_codebooks"] == 4


def test_category_balance_evens_out_categories(tmp_path: Path, codec: torch.nn.Module) -> None:
    write_dataset(tmp_path / "ds", {"train": 7})  # tone x3, noise x2, click x2, all the same length
    tokenize_dataset(tmp_path / "ds", codec, tmp_path / "tokens")
    cache = TokenCache(tmp_path / "tokens", "train")
    cats = np.array([r.category for r in cache.records])

    def shares(balance: float) -> dict[str, float]:
        w = cache.clip_weights(100, balance)
        assert np.isclose(w.sum(), 1.0)
        return {c: float(w[cats == c].sum()) for c in ("tone", "noise", "click")}

    assert shares(0.0) == pytest.approx({"tone": 3 / 7, "noise": 2 / 7, "click": 2 / 7})
    assert shares(1.0) == pytest.approx({"tone": 1 / 3, "noise": 1 / 3, "click": 1 / 3})
    half = shares(0.5)
    assert 1 / 3 < half["tone"] < 3 / 7
    drawn = cache.sample_batch(3000, 50, 2, np.random.default_rng(0), category_balance=1.0).categories
    counts = {c: drawn.count(c) for c in ("tone", "noise", "click")}
    assert all(900 < n < 1100 for n in counts.values()), counts


def test_category_balance_out_of_range_is_a_config_error() -> None:
    from soundgen.config import config_from_dict
    from soundgen.errors import ConfigError
    from soundgen.lm.config import LMRunConfig

    with pytest.raises(ConfigError, match="category_balance"):
        config_from_dict(LMRunConfig, {"train": {"category_balance": 1.5}})


def test_short_clips_can_be_padded_with_the_codes_of_silence(tmp_path: Path, codec: torch.nn.Module) -> None:
    from soundgen.data.tokens import silence_codes

    write_dataset(tmp_path / "ds", {"train": 3})
    tokenize_dataset(tmp_path / "ds", codec, tmp_path / "tokens")
    cache = TokenCache(tmp_path / "tokens", "train")
    silence = silence_codes(codec, 2)
    assert silence.shape == (2,) and ((silence >= 0) & (silence < 32)).all()
    zeros = codec.encode(torch.zeros(1, 1, 8000))[0]
    assert np.array_equal(silence, zeros[:2, zeros.shape[-1] // 2].numpy())
    cache.pad_codes = silence
    batch = cache.sample_batch(4, 200, 2, np.random.default_rng(0))  # clips have 125 frames
    tail = batch.codes[:, :, 125:]
    assert bool((tail == torch.from_numpy(silence)[None, :, None]).all())  # silence, not ignored positions
    assert bool((batch.codes[:, :, :125] >= 0).all())
    with pytest.raises(TokenCacheError, match="fewer than"):
        silence_codes(codec, 99)


def test_batch_shape_limits_the_silence_tail_and_trims_short_batches(tmp_path: Path, codec: torch.nn.Module) -> None:
    from soundgen.data.tokens import BatchShape, silence_codes

    write_dataset(tmp_path / "ds", {"train": 3})  # clips of 125 frames
    tokenize_dataset(tmp_path / "ds", codec, tmp_path / "tokens")
    cache = TokenCache(tmp_path / "tokens", "train")
    silence = torch.from_numpy(silence_codes(codec, 2))
    cache.pad_codes = silence.numpy()
    batch = cache.sample_batch(4, 200, 2, np.random.default_rng(0), shape=BatchShape(silence_tail=20, trim=False))
    assert batch.codes.shape == (4, 2, 200)
    assert bool((batch.codes[:, :, 125:145] == silence[None, :, None]).all())  # the end of the sound is taught
    assert bool((batch.codes[:, :, 145:] == -1).all())  # the rest is not rewarded
    trimmed = cache.sample_batch(4, 200, 2, np.random.default_rng(0), shape=BatchShape(20, trim=True, multiple=10))
    assert trimmed.codes.shape == (4, 2, 150)  # 125 + 20, rounded up to 10: a short batch costs what it holds
    assert torch.equal(trimmed.codes, batch.codes[:, :, :150])
    crop = cache.sample_batch(2, 50, 2, np.random.default_rng(1), shape=BatchShape(20, trim=True)).codes
    assert crop.shape == (2, 2, 50) and bool((crop >= 0).all())  # long clips: full crops, no padding


def test_grouped_batches_keep_like_lengths_together(tmp_path: Path, codec: torch.nn.Module) -> None:
    from soundgen.data.tokens import BatchShape

    write_dataset(tmp_path / "ds", {"train": 7})  # tone x3, noise x2, click x2
    tokenize_dataset(tmp_path / "ds", codec, tmp_path / "tokens")
    cache = TokenCache(tmp_path / "tokens", "train")
    short = np.array([r.category == "tone" for r in cache.records])
    cache._lengths = np.where(short, 100.0, 200.0)  # the tones count as short sounds, the rest as long ones

    def alike(group: int) -> float:
        same = 0
        for seed in range(300):
            cats = cache.sample_batch(2, 200, 2, np.random.default_rng(seed), shape=BatchShape(0, True, group))
            same += (cats.categories[0] == "tone") == (cats.categories[1] == "tone")
        return same / 300

    # Without grouping a pair is alike with p = 0.27^2 + 0.73^2 = 0.6 (clips are drawn by length: 3 x 100 against
    # 4 x 200 frames); grouping 4 batches sorts 8 draws and keeps an adjacent pair, which is nearly always alike.
    assert alike(4) > alike(1) + 0.2


def test_alternative_captions_are_drawn(tmp_path: Path, codec: torch.nn.Module) -> None:
    from soundgen.data.manifest import read_manifest, write_manifest

    write_dataset(tmp_path / "ds", {"train": 1})
    clips = read_manifest(tmp_path / "ds", "train")
    clips[0].captions = ["a second way to say it", "a third way"]
    write_manifest(tmp_path / "ds", "train", clips)
    tokenize_dataset(tmp_path / "ds", codec, tmp_path / "tokens")
    cache = TokenCache(tmp_path / "tokens", "train")
    assert cache.records[0].captions == ["a second way to say it", "a third way"]
    drawn = set(cache.sample_batch(60, 20, 2, np.random.default_rng(0)).captions)
    assert drawn == {clips[0].caption, "a second way to say it", "a third way"}
