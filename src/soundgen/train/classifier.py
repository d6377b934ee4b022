"""Training the in-project audio classifier (eval/classifier.py holds the model, its files and its evaluation).

It sits with the codec's and the LM's loops: ``soundgen eval train-classifier`` calls :func:`train_classifier`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from soundgen.eval.classifier import (
    AudioClassifier,
    ClassifierConfig,
    ClassifierDataError,
    ClassifierReport,
    codebook_range,
    codec_round_trips,
    evaluate_classifier,
    load_split,
    save_classifier,
)
from soundgen.utils import progress


@dataclass
class ClassifierTrainConfig:
    """How the classifier is trained."""

    epochs: int = 30
    segment: float = 2.0
    batch_size: int = 32
    lr: float = 2e-3
    min_clips: int = 5
    max_clips_per_label: int = 400
    seed: int = 0
    codec: str | None = None
    """A codec model directory: the classifier also trains on every training clip's round trip through it (see
    :func:`codec_round_trips`), so that it judges generated audio, which always comes out of a codec, by its content
    rather than by the codec's artefacts. None: clean clips only."""
    codec_share: float = 0.5
    """With ``codec``, the share of training crops taken from the round trips."""

    @classmethod
    def tiny(cls) -> ClassifierTrainConfig:
        return cls(epochs=6, segment=0.25, batch_size=8, min_clips=1)


def _crop_batch(audio: list[np.ndarray], idx: np.ndarray, size: int, rng: np.random.Generator) -> torch.Tensor:
    """Random crops ``[B, size]`` with random gain (short clips zero-padded at a random place)."""
    out = np.zeros((len(idx), size), dtype=np.float32)
    for row, i in enumerate(idx):
        x = audio[int(i)]
        if x.shape[-1] >= size:
            s = int(rng.integers(0, x.shape[-1] - size + 1))
            out[row] = x[s : s + size]
        else:
            s = int(rng.integers(0, size - x.shape[-1] + 1))
            out[row, s : s + x.shape[-1]] = x
        out[row] *= 10 ** (rng.uniform(-12, 6) / 20)
    return torch.from_numpy(out)


def train_classifier(dataset_dir: str | Path, out_dir: str | Path, cfg: ClassifierTrainConfig) -> ClassifierReport:
    """Train the classifier on ``train``, pick the best epoch on ``valid``, report accuracy on ``test``.

    Categories with fewer than ``cfg.min_clips`` training clips (and 'other') are left out.

    Raises:
        ClassifierDataError: fewer than two usable categories, or no held-out clips of them.
    """
    from soundgen.data.manifest import read_manifest

    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    counts = Counter(c.category for c in read_manifest(dataset_dir, "train") if c.category != "other")
    labels = sorted(k for k, n in counts.items() if n >= cfg.min_clips)
    if len(labels) < 2:
        raise ClassifierDataError(
            f"{dataset_dir} has {len(labels)} categories with >= {cfg.min_clips} training clips; a classifier needs 2 "
            "(lower --min-clips or label more clips)"
        )
    model_cfg = ClassifierConfig(labels=labels, segment=cfg.segment)
    train_x, train_y = load_split(dataset_dir, "train", labels, model_cfg.sample_rate, cfg.max_clips_per_label, rng)
    valid_x, valid_y = load_split(dataset_dir, "valid", labels, model_cfg.sample_rate, 10**9, rng)
    test_x, test_y = load_split(dataset_dir, "test", labels, model_cfg.sample_rate, 10**9, rng)
    eval_split = "test" if test_x else "valid"
    if not test_x:
        test_x, test_y = valid_x, valid_y
    if not test_x:
        raise ClassifierDataError(f"{dataset_dir} has no test or valid clips of {', '.join(labels)}: nothing held out")
    coded: tuple[list[np.ndarray], list[np.ndarray]] | None = None
    if cfg.codec is not None:
        from soundgen.codec.io import load_codec

        codec = load_codec(cfg.codec)
        choices = codebook_range(codec)

        def trips(clips: list[np.ndarray], split: str, max_seconds: float = 0.0) -> list[np.ndarray]:
            return codec_round_trips(codec, clips, model_cfg.sample_rate, choices, cfg.seed, split, max_seconds)

        coded = trips(train_x, "train", max_seconds=4 * cfg.segment), trips(valid_x, "valid")
    model = _fit(model_cfg, cfg, train_x, train_y, valid_x, valid_y, rng, coded)
    accuracy, per_label = evaluate_classifier(model, test_x, test_y)
    chance = max(Counter(test_y).values()) / len(test_y)
    report = ClassifierReport(labels, accuracy, chance, eval_split, len(test_x), len(train_x), per_label)
    if cfg.codec is not None:
        report.codec = f"{codec.model_id} ({codec.model_hash[:12]})"
        report.codec_accuracy, _ = evaluate_classifier(model, trips(test_x, eval_split), test_y)
    save_classifier(model, out_dir, report)
    return report


def _fit(
    model_cfg: ClassifierConfig,
    cfg: ClassifierTrainConfig,
    train_x: list[np.ndarray],
    train_y: list[str],
    valid_x: list[np.ndarray],
    valid_y: list[str],
    rng: np.random.Generator,
    coded: tuple[list[np.ndarray], list[np.ndarray]] | None = None,
) -> AudioClassifier:
    """Train for ``cfg.epochs``; keep the epoch best on the validation clips (the last one when there are none).

    With ``coded`` (the round trips of the training and validation clips), a share ``cfg.codec_share`` of the crops
    comes from the round trips, and the best epoch is the one best on the validation clips and their round trips
    together."""
    model = AudioClassifier(model_cfg)
    targets = torch.tensor([model_cfg.labels.index(y) for y in train_y])
    weights = torch.tensor([1.0 / n for n in np.bincount(targets.numpy(), minlength=len(model_cfg.labels))])
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-3)
    size = int(cfg.segment * model_cfg.sample_rate)
    best, best_state = -1.0, None
    for _ in progress(range(cfg.epochs), desc="classifier", unit="epoch"):
        model.train()
        order = rng.permutation(len(train_x))
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            if len(idx) < 2:
                continue  # batch norm needs two examples
            if coded is None:
                batch = _crop_batch(train_x, idx, size, rng)
            else:  # per crop: the clip as it is or its round trip through the codec
                through = rng.random(len(idx)) < cfg.codec_share
                picked = [coded[0][i] if t else train_x[i] for i, t in zip(idx.tolist(), through, strict=True)]
                batch = _crop_batch(picked, np.arange(len(picked)), size, rng)
            logits = model(batch)
            loss = F.cross_entropy(logits, targets[idx], weight=weights.float() * len(weights) / weights.sum())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if valid_x:
            acc, _ = evaluate_classifier(model, valid_x, valid_y)
            if coded is not None:
                acc = (acc + evaluate_classifier(model, coded[1], valid_y)[0]) / 2
            if acc >= best:
                best, best_state = acc, {k: v.clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval()


