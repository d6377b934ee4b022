"""Configs of the text-to-sound language model and of its text encoder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from soundgen.config import config_from_dict
from soundgen.errors import ConfigError, CorruptFileError, ModelNotFoundError
from soundgen.model_files import EXAMPLE_PROMPTS

TextEncoderKind = Literal["minilm", "hashed"]


@dataclass
class TextEncoderConfig:
    """Which text encoder conditions the LM.

    Attributes:
        kind: ``minilm`` (the packaged all-MiniLM-L6-v2, frozen, 384-d; the default) or ``hashed`` (words hashed
            into ``n_buckets`` learned embeddings and one small transformer layer, trained with the LM).
        max_tokens: longest prompt accepted, in encoder tokens; longer prompts are refused.
        n_buckets: hashed encoder only: size of the hashed vocabulary.
        dim: hashed encoder only: embedding width (MiniLM is always 384).
        n_heads: hashed encoder only: heads of its transformer layer.
    """

    kind: TextEncoderKind = "minilm"
    max_tokens: int = 64
    n_buckets: int = 8192
    dim: int = 256
    n_heads: int = 4

    @classmethod
    def tiny(cls) -> TextEncoderConfig:
        return cls(kind="hashed", max_tokens=32, n_buckets=512, dim=32, n_heads=2)


@dataclass
class LMConfig:
    """Shape of the token language model.

    Attributes:
        n_codebooks: codebooks K modelled (the codec's ``n_codebooks`` when its tokens were made).
        codebook_size: entries per codebook; token ``codebook_size`` is the special empty/start token.
        d_model: transformer width.
        n_layers: transformer blocks.
        n_heads: attention heads (``d_model`` must divide by it).
        ff_mult: width of the feed-forward layer as a multiple of ``d_model``.
        dropout: dropout inside the blocks during training.
        max_frames: training window in code frames; longer generations slide a window of this size.
        cond_dropout: probability of dropping the text condition of a training example (for CFG).
        frame_rate: code frames per second of the codec (for durations).
        text: the text encoder.
    """

    n_codebooks: int = 4
    codebook_size: int = 1024
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 8
    ff_mult: float = 4.0
    dropout: float = 0.0
    max_frames: int = 250
    cond_dropout: float = 0.2
    frame_rate: float = 50.0
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)

    def __post_init__(self) -> None:
        if self.d_model % 2 != 0:
            raise ValueError(f"d_model={self.d_model} must be even (sinusoidal positions)")
        if self.d_model % self.n_heads != 0:
            raise ValueError(f"d_model={self.d_model} must be a multiple of n_heads={self.n_heads}")
        if self.n_codebooks < 1 or self.codebook_size < 2:
            raise ValueError("n_codebooks must be >= 1 and codebook_size >= 2")
        if self.max_frames < 2:
            raise ValueError("max_frames must be at least 2")

    @classmethod
    def tiny(cls) -> LMConfig:
        return cls(
            n_codebooks=2,
            codebook_size=64,
            d_model=32,
            n_layers=2,
            n_heads=2,
            ff_mult=2.0,
            max_frames=64,
            frame_rate=50.0,
            text=TextEncoderConfig.tiny(),
        )


@dataclass
class LMTrainParams:
    """How the LM is trained.

    Attributes:
        steps: optimiser steps in all.
        batch_size: clips per step.
        segment_frames: frames per training crop (at most the model's ``max_frames``).
        lr: peak learning rate (linear warm-up, then cosine decay to 10 %).
        weight_decay: AdamW weight decay.
        warmup_steps: steps of linear warm-up.
        grad_clip: gradient norm clip (0: off).
        autocast: ``auto`` (bf16 on CUDA; off on CPU, where it slows small models down), ``bf16`` (always) or
            ``fp32`` (never); the codec's training takes the same choices.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``...
        threads: torch CPU threads (0: torch's default).
        seed: seed of initialisation, batches and condition dropout.
        log_every: steps between scalar logs.
        eval_every: steps between validation losses (0: never).
        valid_batches: batches per validation.
        category_balance: how evenly categories are drawn: 0 in proportion to their audio, 1 equally (see
            ``TokenCache.clip_weights``); validation always draws in proportion to audio.
        pad_with_silence: pad clips shorter than a training crop with the codec's codes for silence (needs the
            codec), so the model learns that a short sound ends; off: pad with positions the loss ignores.
        silence_tail: frames of that silence after a short clip; the rest of the crop is ignored by the loss
            (-1: silence to the end of the crop, which taught the first bundled LM to write silence for everything:
            a 0.35 s beep in a 5 s crop is 93 % silence).
        trim_batches: cut each batch to its longest crop plus the tail, and draw clips of like length together
            (``group_batches`` times the batch, sorted, one group kept): short sounds train at their own cost.
        group_batches: see ``trim_batches`` (1: no grouping).
        sample_every: steps between audio samples in TensorBoard (0: never).
        sample_prompts: prompts of those samples (default: the first four example prompts).
        sample_duration: seconds per sample.
        checkpoint_every: steps between checkpoints.
        keep_checkpoints: checkpoints kept.
    """

    steps: int = 20000
    batch_size: int = 8
    segment_frames: int = 250
    lr: float = 3e-4
    weight_decay: float = 0.05
    warmup_steps: int = 500
    grad_clip: float = 1.0
    autocast: Literal["auto", "bf16", "fp32"] = "auto"
    device: str = "auto"
    threads: int = 0
    seed: int = 0
    log_every: int = 25
    eval_every: int = 500
    valid_batches: int = 4
    category_balance: float = 0.0
    pad_with_silence: bool = True
    silence_tail: int = 25
    trim_batches: bool = True
    group_batches: int = 4
    sample_every: int = 2000
    sample_prompts: list[str] = field(default_factory=lambda: list(EXAMPLE_PROMPTS[:4]))
    sample_duration: float = 4.0
    checkpoint_every: int = 500
    keep_checkpoints: int = 3

    # the names run directories written before the two training loops shared one vocabulary used
    RENAMED_KEYS: ClassVar[dict[str, str]] = {"valid_every": "eval_every"}
    RENAMED_VALUES: ClassVar[dict[str, dict[str, str]]] = {"autocast": {"on": "bf16", "off": "fp32"}}

    def __post_init__(self) -> None:
        if not 0.0 <= self.category_balance <= 1.0:
            raise ValueError(f"category_balance={self.category_balance} must be between 0 and 1")
        if self.silence_tail < -1 or self.group_batches < 1:
            raise ValueError("silence_tail must be >= -1 and group_batches >= 1")


@dataclass
class LMRunConfig:
    """Model and training settings of one run (the file given to ``soundgen lm train --config``)."""

    model: LMConfig = field(default_factory=LMConfig)
    train: LMTrainParams = field(default_factory=LMTrainParams)

    @classmethod
    def tiny(cls) -> LMRunConfig:
        """A run of a few steps of the tiny model (tests)."""
        train = LMTrainParams(
            steps=6,
            batch_size=2,
            segment_frames=32,
            lr=3e-3,
            warmup_steps=2,
            log_every=2,
            eval_every=3,
            valid_batches=1,
            sample_every=3,
            sample_prompts=["a tone"],
            sample_duration=0.05,
            checkpoint_every=3,
        )
        return cls(LMConfig.tiny(), train)


# ``lm/config.json`` of a model directory (written by lm/io.py's save_lm); read here, without torch, so that
# the service can learn the text encoder's limits of the model it serves.
FORMAT = "soundgen-lm"
VERSION = 1


def read_lm_config(lm_dir: str | Path) -> LMConfig:
    """Read ``config.json`` of an LM directory into an :class:`LMConfig`."""
    path = Path(lm_dir) / "config.json"
    if not path.is_file():
        raise ModelNotFoundError(f"no LM at {lm_dir}: {path.name} is missing (export one with 'soundgen lm export')")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptFileError(f"{path} is not valid JSON ({e}); re-export the model") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("lm"), dict):
        raise CorruptFileError(f"{path} is not a soundgen LM config; re-export the model")
    if int(meta.get("version", 0)) > VERSION:
        raise CorruptFileError(f"{path} has format version {meta.get('version')}; upgrade soundgen to read it")
    try:
        return config_from_dict(LMConfig, meta["lm"])
    except ConfigError as e:
        raise CorruptFileError(f"{path}: {e}") from e
