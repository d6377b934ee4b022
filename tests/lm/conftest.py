"""Fixtures of the LM tests: a tiny dataset on disk, a tiny codec directory, its token cache."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from sg_testdata import write_labelled_dataset


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
    write_labelled_dataset(root / "ds", {"train": 6, "valid": 3, "test": 3})
    torch.manual_seed(0)
    codec = build_codec(CodecConfig.tiny()).eval()
    save_codec(codec, root / "codec")
    tokenize_dataset(root / "ds", codec, root / "tokens")
    return Assets(root / "ds", root / "codec", root / "tokens")
