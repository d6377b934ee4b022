"""Shared test setup: quiet progress bars, one torch thread (the machine has 2 cores shared by everything)."""

from __future__ import annotations

import os

os.environ.setdefault("SOUNDGEN_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a core dependency
    pass
