"""Fixtures of the multi-process training tests: a tiny 8 kHz dataset and the tiny codec's token cache of it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sg_testdata import write_labelled_dataset


@pytest.fixture(scope="module")
def tiny_codec_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labelled dataset at the tiny codec's sample rate, with train and valid splits."""
    root = tmp_path_factory.mktemp("dist_data") / "ds"
    write_labelled_dataset(root, {"train": 6, "valid": 3}, sr=8000)
    return root


@pytest.fixture(scope="module")
def tiny_tokens(tiny_codec_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny codec's (random weights) token cache of :func:`tiny_codec_data`."""
    from soundgen.codec.config import CodecConfig
    from soundgen.codec.model import build_codec
    from soundgen.data.tokens import tokenize_dataset

    out = tmp_path_factory.mktemp("dist_tokens") / "tokens"
    torch.manual_seed(0)
    tokenize_dataset(tiny_codec_data, build_codec(CodecConfig.tiny()).eval(), out, splits=("train", "valid"))
    return out
