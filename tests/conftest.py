"""Shared test setup: quiet progress bars, one torch thread (the machine has 2 cores shared by everything), and
the fixtures tests of several packages start from."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from sg_testdata import LMAssets, make_signal, write_codec_dataset, write_lm_assets

os.environ.setdefault("SOUNDGEN_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a core dependency
    pass


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """A 3-clip dataset at 8 kHz (the tiny codec's rate), train and valid splits."""
    return write_codec_dataset(tmp_path / "data", 8000)


@pytest.fixture
def signal() -> Callable[..., object]:
    """The :func:`sg_testdata.make_signal` factory."""
    return make_signal


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> LMAssets:
    """:class:`sg_testdata.LMAssets`, made once per test module."""
    return write_lm_assets(tmp_path_factory.mktemp("lm_assets"))
