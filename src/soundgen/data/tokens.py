"""The token cache: every clip of a dataset encoded once by the codec, in shards that training memory-maps.

Layout::

    TOKENS/
      meta.json                        codec facts (n_codebooks, codebook_size, frame_rate, model hash)
      <split>/shard_00000.npy          uint16 codes [K, F] of many clips laid end to end
      <split>/shard_00000.jsonl        one record per clip: id, offset, frames, caption, category, tags

A shard counts once its ``.jsonl`` exists (it is written after the ``.npy``, both atomically), so an
interrupted run loses at most the shard in progress and a rerun skips every clip already in a shard.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundgen.errors import CorruptFileError, SoundgenError
from soundgen.tokenizer import AudioTokenizer
from soundgen.utils import atomic_write, progress

log = logging.getLogger(__name__)

FORMAT = "soundgen-tokens"
VERSION = 1


class TokenCacheError(SoundgenError):
    """A token cache does not fit the codec or the request (different codec, missing split, ...)."""


@dataclass
class TokenMeta:
    """What a token cache was made with."""

    n_codebooks: int
    codebook_size: int
    frame_rate: float
    sample_rate: int
    codec_hash: str = ""
    dataset: str = ""
    format: str = FORMAT
    version: int = VERSION


@dataclass
class TokenRecord:
    """One clip in a shard: ``frames`` frames starting at ``offset``."""

    id: str
    shard: str
    offset: int
    frames: int
    caption: str
    category: str = "other"
    tags: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)  # alternatives to ``caption``


@dataclass
class TokenizeReport:
    """What ``tokenize_dataset`` did."""

    encoded: int = 0
    skipped_existing: int = 0
    failed: list[str] = field(default_factory=list)
    frames: int = 0
    shards: int = 0


def read_meta(tokens_dir: str | Path) -> TokenMeta:
    """Read ``meta.json`` of a token cache."""
    path = Path(tokens_dir) / "meta.json"
    if not path.is_file():
        raise TokenCacheError(f"no token cache at {tokens_dir} (make one with 'soundgen data tokenize')")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        meta = TokenMeta(**data)
    except (OSError, ValueError, TypeError) as e:
        raise CorruptFileError(f"{path} is not a token cache description ({e}); tokenize again") from e
    if meta.format != FORMAT or meta.version > VERSION:
        raise CorruptFileError(f"{path} is not a supported token cache (format {meta.format} v{meta.version})")
    return meta


def _codec_meta(codec: AudioTokenizer, dataset_dir: Path) -> TokenMeta:
    return TokenMeta(
        n_codebooks=int(codec.n_codebooks),
        codebook_size=int(codec.codebook_size),
        frame_rate=float(codec.frame_rate),
        sample_rate=int(codec.sample_rate),
        codec_hash=codec.model_hash,
        dataset=str(dataset_dir.resolve()),
    )


def _check_same_codec(old: TokenMeta, new: TokenMeta, out: Path) -> None:
    keys = ("n_codebooks", "codebook_size", "frame_rate", "sample_rate", "codec_hash")
    diff = [k for k in keys if getattr(old, k) != getattr(new, k)]
    if diff:
        raise TokenCacheError(
            f"{out} holds tokens of another codec (differs in {', '.join(diff)}); use a new --out directory"
        )


def _done_shards(split_dir: Path) -> list[Path]:
    return sorted(p for p in split_dir.glob("shard_*.jsonl") if p.with_suffix(".npy").is_file())


def _read_records(jsonl: Path) -> list[TokenRecord]:
    try:
        rows = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [TokenRecord(**r) for r in rows]
    except (OSError, ValueError, TypeError) as e:
        raise CorruptFileError(f"{jsonl} is not a valid shard index ({e}); delete it and tokenize again") from e


class _ShardWriter:
    """Collects encoded clips and writes them as numbered shards."""

    def __init__(self, split_dir: Path, start_index: int, max_frames: int) -> None:
        self.split_dir = split_dir
        self.index = start_index
        self.max_frames = max_frames
        self.codes: list[np.ndarray] = []
        self.records: list[dict[str, Any]] = []
        self.frames = 0
        self.written = 0

    def add(self, codes: np.ndarray, clip_id: str, caption: str, category: str, tags: list[str],
            captions: list[str] | None = None) -> None:
        name = f"shard_{self.index:05d}"
        rec = TokenRecord(clip_id, name, self.frames, int(codes.shape[-1]), caption, category, list(tags),
                          list(captions or []))
        self.codes.append(codes)
        row = asdict(rec)
        if not row["captions"]:
            del row["captions"]
        self.records.append(row)
        self.frames += int(codes.shape[-1])
        if self.frames >= self.max_frames:
            self.flush()

    def flush(self) -> None:
        if not self.records:
            return
        base = self.split_dir / f"shard_{self.index:05d}"
        with atomic_write(base.with_suffix(".npy")) as f:
            np.save(f, np.concatenate(self.codes, axis=-1).astype(np.uint16))
        with atomic_write(base.with_suffix(".jsonl"), "w") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records)
        self.index += 1
        self.written += 1
        self.codes, self.records, self.frames = [], [], 0


@torch.inference_mode()
def tokenize_dataset(
    dataset_dir: str | Path,
    codec: AudioTokenizer,
    out_dir: str | Path,
    splits: tuple[str, ...] = ("train", "valid", "test"),
    shard_frames: int = 1 << 20,
) -> TokenizeReport:
    """Encode every clip of ``dataset_dir`` with ``codec`` into ``out_dir`` (resumable).

    Args:
        dataset_dir: a dataset made by ``soundgen data build``.
        codec: the tokenizer (eval mode).
        out_dir: the token cache directory (created; reused when it holds tokens of the same codec).
        splits: splits to encode (missing splits are skipped with a note).
        shard_frames: frames per shard before a new one starts.

    Returns:
        :class:`TokenizeReport`. Clips that fail to decode are listed there and skipped.
    """
    from soundgen.data.manifest import manifest_path, read_manifest

    dataset, out = Path(dataset_dir), Path(out_dir)
    meta = _codec_meta(codec, dataset)
    if (out / "meta.json").exists():
        _check_same_codec(read_meta(out), meta, out)
    else:
        with atomic_write(out / "meta.json", "w") as f:
            json.dump(asdict(meta), f, indent=2)
    present = [s for s in splits if manifest_path(dataset, s).is_file()]
    if not present:
        raise TokenCacheError(
            f"{dataset} has no manifest for {', '.join(splits)} (build it with 'soundgen data build')"
        )
    report = TokenizeReport()
    for split in present:
        _tokenize_split(dataset, split, read_manifest(dataset, split), codec, out / split, shard_frames, report)
    return report


def _tokenize_split(
    dataset: Path,
    split: str,
    clips: list[Any],
    codec: AudioTokenizer,
    split_dir: Path,
    shard_frames: int,
    report: TokenizeReport,
) -> None:
    from soundgen.audio.io import read_audio
    from soundgen.errors import AudioReadError, InvalidAudioError

    split_dir.mkdir(parents=True, exist_ok=True)
    shards = _done_shards(split_dir)
    done = {r.id for s in shards for r in _read_records(s)}
    writer = _ShardWriter(split_dir, _next_index(shards), shard_frames)
    todo = [c for c in clips if c.id not in done]
    report.skipped_existing += len(clips) - len(todo)
    for clip in progress(todo, desc=f"tokenize {split}", unit="clip"):
        try:
            audio = read_audio(clip.path(dataset), sample_rate=codec.sample_rate, channels=codec.channels)
        except (AudioReadError, InvalidAudioError) as e:
            log.warning("skipping clip %s: %s", clip.id, e)
            report.failed.append(clip.id)
            continue
        wav = torch.from_numpy(audio.samples)[None].to(codec.device)
        codes = codec.encode(wav)[0].cpu().numpy()  # [K, F]
        if codes.shape[-1] == 0:
            report.failed.append(clip.id)
            continue
        writer.add(codes, clip.id, clip.caption, clip.category, list(clip.tags), list(clip.captions))
        report.encoded += 1
        report.frames += int(codes.shape[-1])
    writer.flush()
    report.shards += writer.written


def _next_index(shards: list[Path]) -> int:
    return 1 + max((int(p.stem.split("_")[1]) for p in shards), default=-1)


@dataclass(frozen=True)
class BatchShape:
    """How :meth:`TokenCache.sample_batch` shapes a batch.

    Attributes:
        silence_tail: frames of silence codes after a short clip (the end of a sound is learnt there); the rest
            of the row is ignored by the loss. -1: silence to the end of the crop (the old behaviour, which let
            silence dominate the loss on corpora of short sounds).
        trim: cut the batch to its longest crop (plus the tail), rounded up to ``multiple`` frames: a batch of
            short sounds costs what it holds.
        group: draw ``group`` times the batch, sort by length and keep one of the groups at random, so lengths
            in a batch are alike (each clip is still kept with the same probability).
        multiple: the rounding of trimmed widths.
    """

    silence_tail: int = -1
    trim: bool = False
    group: int = 1
    multiple: int = 10


def _draw_caption(rec: TokenRecord, rng: np.random.Generator) -> str:
    if not rec.captions:
        return rec.caption
    i = int(rng.integers(len(rec.captions) + 1))
    return rec.caption if i == 0 else rec.captions[i - 1]


@dataclass
class TokenBatch:
    """A training batch.

    Attributes:
        codes: ``[B, K, T]`` int64 codes; -1 marks padding after a short clip.
        captions: B captions.
        categories: B category labels.
    """

    codes: torch.Tensor
    captions: list[str]
    categories: list[str]


class TokenCache:
    """Read one split of a token cache; shards are memory-mapped.

    Args:
        tokens_dir: the cache directory.
        split: ``train``, ``valid`` or ``test``.
    """

    def __init__(self, tokens_dir: str | Path, split: str) -> None:
        self.meta = read_meta(tokens_dir)
        split_dir = Path(tokens_dir) / split
        shards = _done_shards(split_dir) if split_dir.is_dir() else []
        self.records = [r for s in shards for r in _read_records(s)]
        if not self.records:
            raise TokenCacheError(f"the token cache {tokens_dir} has no '{split}' clips (tokenize that split)")
        self._arrays: dict[str, np.ndarray] = {}
        self._dir = split_dir
        self._lengths = np.array([r.frames for r in self.records], dtype=np.float64)
        self._weights = np.ones(0)
        self.pad_codes: np.ndarray | None = None  # [K] codes to pad short clips with (e.g. silence); None: -1
        self._weights_key: tuple[int, float] | None = None

    def __len__(self) -> int:
        return len(self.records)

    def codes(self, index: int) -> np.ndarray:
        """Codes ``[K, frames]`` (uint16, memory-mapped) of record ``index``."""
        rec = self.records[index]
        arr = self._arrays.get(rec.shard)
        if arr is None:
            try:
                arr = np.load(self._dir / f"{rec.shard}.npy", mmap_mode="r")
            except (OSError, ValueError) as e:
                raise CorruptFileError(f"cannot read token shard {rec.shard}: {e}; tokenize again") from e
            self._arrays[rec.shard] = arr
        return arr[:, rec.offset : rec.offset + rec.frames]

    def clip_weights(self, frames: int, category_balance: float = 0.0) -> np.ndarray:
        """Probability of drawing each clip: its length capped at ``frames``, divided by its category's total of
        those lengths raised to ``category_balance``.

        ``category_balance`` 0 draws in proportion to (capped) audio; 1 gives every category the same share, so a
        corpus of 18 h of music and minutes of door sounds still teaches the doors; values between trade the two.
        """
        weights = np.minimum(self._lengths, frames)
        if category_balance:
            cats = [r.category for r in self.records]
            totals: dict[str, float] = {}
            for c, w in zip(cats, weights, strict=True):
                totals[c] = totals.get(c, 0.0) + float(w)
            weights = weights / np.array([totals[c] for c in cats]) ** category_balance
        return weights / weights.sum()

    def sample_batch(
        self,
        batch_size: int,
        frames: int,
        n_codebooks: int,
        rng: np.random.Generator,
        category_balance: float = 0.0,
        shape: BatchShape | None = None,
    ) -> TokenBatch:
        """Random crops of at most ``frames`` frames from clips drawn by :meth:`clip_weights`.

        Args:
            shape: how short clips are padded and batches cut (:class:`BatchShape`); ``None`` keeps every crop
                ``frames`` long, padded to the end (with :attr:`pad_codes` when set, else with -1).

        Returns:
            :class:`TokenBatch` with codes ``[B, n_codebooks, T]``, ``T <= frames``. After a short clip come
            :attr:`pad_codes` (the codes of silence, which teach a model that a short sound ends) for up to
            ``shape.silence_tail`` frames, then -1 (positions the loss ignores). Each clip's caption is drawn from
            its caption and its alternatives.
        """
        shape = shape or BatchShape()
        key = (frames, category_balance)
        if self._weights_key != key:
            self._weights, self._weights_key = self.clip_weights(frames, category_balance), key
        picks = rng.choice(len(self.records), size=batch_size * shape.group, p=self._weights)
        if shape.group > 1:  # clips of like length together, so a batch of short sounds is a short batch
            ordered = sorted(picks.tolist(), key=lambda i: min(int(self._lengths[i]), frames))
            g = int(rng.integers(shape.group))
            picks = np.asarray(ordered[g * batch_size : (g + 1) * batch_size])
        crops = []
        for i in picks:
            codes = self.codes(int(i))
            start = int(rng.integers(0, max(1, codes.shape[-1] - frames + 1)))
            crops.append(codes[:n_codebooks, start : start + frames])
        tail = frames if shape.silence_tail < 0 else shape.silence_tail
        width = frames
        if shape.trim:
            longest = max(c.shape[-1] for c in crops) + (tail if self.pad_codes is not None else 0)
            width = min(frames, -(-longest // shape.multiple) * shape.multiple)
        out = np.full((batch_size, n_codebooks, width), -1, dtype=np.int64)
        silence = None if self.pad_codes is None else np.asarray(self.pad_codes[:n_codebooks], dtype=np.int64)
        for row, crop in enumerate(crops):
            n = crop.shape[-1]
            out[row, :, :n] = crop
            if silence is not None and n < width:
                out[row, :, n : n + tail] = silence[:, None]
        recs = [self.records[int(i)] for i in picks]
        captions = [_draw_caption(r, rng) for r in recs]
        return TokenBatch(torch.from_numpy(out), captions, [r.category for r in recs])


@torch.no_grad()
def silence_codes(codec: AudioTokenizer, n_codebooks: int, seconds: float = 1.0) -> np.ndarray:
    """The codec's codes ``[n_codebooks]`` for digital silence (a frame from the middle of encoded zeros)."""
    wav = torch.zeros(1, int(codec.channels), int(seconds * codec.sample_rate), device=codec.device)
    codes = codec.encode(wav)[0]  # [K, T]
    if codes.shape[0] < n_codebooks:
        raise TokenCacheError(f"the codec gives {codes.shape[0]} codebooks, fewer than the {n_codebooks} asked")
    return codes[:n_codebooks, codes.shape[-1] // 2].cpu().numpy().astype(np.int64)
