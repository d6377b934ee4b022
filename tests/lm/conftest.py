"""Fixtures of the LM tests: a tiny dataset on disk, a tiny codec directory, its token cache."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from soundgen.data.manifest import Clip


def write_dataset(root: Path, per_split: dict[str, int], seconds: float = 0.25, sr: int = 16000) -> None:
    """Sines ('tone'), noise bursts ('noise') and click trains ('click') in the documented dataset layout."""
    rng = np.random.default_rng(0)
    for split, n in per_split.items():
        lines = []
        for i in range(n):
            category = ("tone", "noise", "click")[i % 3]
            t = np.arange(int(seconds * sr)) / sr
            if category == "tone":
                x = 0.5 * np.sin(2 * np.pi * (220 + 110 * i) * t)
            elif category == "noise":
                x = 0.3 * rng.standard_normal(t.size) * np.exp(-8 * t)
            else:
                x = np.zeros(t.size)
                x[:: sr // 20] = 0.9
            clip_id = f"{split[:2]}{i:04d}cd"
            loc = f"audio/{clip_id[:2]}/{clip_id}.wav"
            (root / loc).parent.mkdir(parents=True, exist_ok=True)
            sf.write(root / loc, x.astype(np.float32), sr, subtype="PCM_16")
            clip = Clip(
                clip_id, loc, seconds, sr, f"a {category} sound", [category], category, "testgen", loc, "CC0", split
            )
            lines.append(clip.to_json())
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / split / "manifest.jsonl").write_text("\n".join(lines) + "\n")


@dataclass
class Assets:
    dataset: Path
    codec_dir: Path
    tokens: Path


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Assets:
    from soundgen.codec.config import CodecConfig
    from soundgen.codec.io import save_codec
    from soundgen.codec.model import build_codec
    from soundgen.data.tokens import tokenize_dataset

    root = tmp_path_factory.mktemp("lm_assets")
    write_dataset(root / "ds", {"train": 6, "valid": 3, "test": 3})
    torch.manual_seed(0)
    codec = build_codec(CodecConfig.tiny()).eval()
    save_codec(codec, root / "codec")
    tokenize_dataset(root / "ds", codec, root / "tokens")
    return Assets(root / "ds", root / "codec", root / "tokens")
