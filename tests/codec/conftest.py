"""Fixtures of the codec tests: signals and small datasets written into tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def make_signal(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A test signal ``[T]``: two sines, a noise burst and clicks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = 0.3 * np.sin(2 * np.pi * (220 + 50 * seed) * t) + 0.2 * np.sin(2 * np.pi * 1234 * t)
    burst = slice(len(t) // 3, len(t) // 3 + len(t) // 10)
    x[burst] += 0.3 * rng.standard_normal(x[burst].shape)
    x[:: max(1, sample_rate // 7)] += 0.5
    return np.clip(x, -1, 1).astype(np.float32)


def write_dataset(root: Path, sample_rate: int, clips: int = 3, seconds: float = 0.5) -> Path:
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


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data", 8000)


@pytest.fixture
def signal() -> object:
    """The :func:`make_signal` factory."""
    return make_signal
