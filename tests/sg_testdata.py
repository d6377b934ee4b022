"""Small datasets, signals and models the tests make themselves (datasets in the layout `soundgen data build`
produces)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from soundgen.data.manifest import Clip, write_manifest

CATEGORIES = ("tone", "noise", "click")


def _signal(category: str, i: int, n: int, sr: int, rng: np.random.Generator, varied: bool) -> np.ndarray:
    t = np.arange(n) / sr
    if category == "tone":
        freq = rng.uniform(200, 1500) if varied else 220 + 110 * i
        return 0.5 * np.sin(2 * np.pi * freq * t)
    if category == "noise":
        return 0.3 * rng.standard_normal(n) * (1.0 if varied else np.exp(-8 * t))
    x = np.zeros(n)
    start, period = (int(rng.integers(0, 400)), int(rng.integers(600, 1600))) if varied else (0, sr // 20)
    x[start::period] = 0.9
    return x


def write_labelled_dataset(
    root: Path,
    per_split: dict[str, int],
    *,
    seconds: float = 0.25,
    sr: int = 16000,
    seed: int = 0,
    varied: bool = False,
) -> list[Clip]:
    """Write sines ('tone'), noise bursts ('noise') and click trains ('click'), cycling through the categories.

    Args:
        root: dataset directory to create.
        per_split: clips per split, e.g. ``{"train": 6, "valid": 3}``.
        seconds: length of every clip.
        sr: sample rate.
        seed: seed of the noise and of the varied parameters.
        varied: random tone frequencies and click spacings (for classifiers); else fixed, ordered ones.

    Returns:
        The clips written, all splits together.
    """
    rng = np.random.default_rng(seed)
    clips: list[Clip] = []
    for split, n in per_split.items():
        written = []
        for i in range(n):
            category = CATEGORIES[i % len(CATEGORIES)]
            x = _signal(category, i, int(seconds * sr), sr, rng, varied)
            clip_id = f"{split[:2]}{i:04d}{seed:02d}"
            loc = f"audio/{clip_id[:2]}/{clip_id}.wav"
            (root / loc).parent.mkdir(parents=True, exist_ok=True)
            sf.write(root / loc, x.astype(np.float32), sr, subtype="PCM_16")
            written.append(
                Clip(
                    clip_id,
                    loc,
                    seconds,
                    sr,
                    f"a {category} sound number {i}",
                    [category],
                    category,
                    "test",
                    f"{clip_id}.wav",
                    "CC0",
                    split,
                )
            )
        write_manifest(root, split, written)
        clips += written
    return clips


def make_signal(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A test signal ``[T]``: two sines, a noise burst and clicks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = 0.3 * np.sin(2 * np.pi * (220 + 50 * seed) * t) + 0.2 * np.sin(2 * np.pi * 1234 * t)
    burst = slice(len(t) // 3, len(t) // 3 + len(t) // 10)
    x[burst] += 0.3 * rng.standard_normal(x[burst].shape)
    x[:: max(1, sample_rate // 7)] += 0.5
    return np.clip(x, -1, 1).astype(np.float32)


def write_codec_dataset(root: Path, sample_rate: int, clips: int = 3, seconds: float = 0.5) -> Path:
    """A dataset in the documented layout: audio/<id[:2]>/<id>.wav + train/ and valid/ manifests."""
    for split in ("train", "valid"):
        lines = []
        for i in range(clips):
            cid = f"{split[:2]}{i:04d}"
            rel = Path("audio") / cid[:2] / f"{cid}.wav"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(root / rel, make_signal(seconds, sample_rate, seed=i), sample_rate, subtype="PCM_16")
            record = {
                "id": cid,
                "location": str(rel),
                "duration": seconds,
                "sample_rate": sample_rate,
                "caption": f"test clip {i}",
                "tags": [],
                "category": "other",
                "source": "tests",
                "source_file": f"clip{i}.wav",
                "licence": "CC0",
                "split": split,
            }
            lines.append(json.dumps(record))
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / split / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


@dataclass
class LMAssets:
    """What the LM tests start from: a labelled dataset, a tiny codec directory and its token cache of the dataset."""

    dataset: Path
    codec_dir: Path
    tokens: Path


def write_lm_assets(root: Path) -> LMAssets:
    """Write :class:`LMAssets` under ``root``: 6/3/3 clips, the tiny codec (random weights, seed 0), its tokens."""
    import torch

    from soundgen.codec.config import CodecConfig
    from soundgen.codec.io import save_codec
    from soundgen.codec.model import build_codec
    from soundgen.data.tokens import tokenize_dataset

    write_labelled_dataset(root / "ds", {"train": 6, "valid": 3, "test": 3})
    torch.manual_seed(0)
    codec = build_codec(CodecConfig.tiny()).eval()
    save_codec(codec, root / "codec")
    tokenize_dataset(root / "ds", codec, root / "tokens")
    return LMAssets(root / "ds", root / "codec", root / "tokens")
