"""Small labelled datasets the tests write themselves, in the layout `soundgen data build` produces."""

from __future__ import annotations

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
