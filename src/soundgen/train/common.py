"""What the training loops share: run directories, checkpoints, devices, autocast, seeds, logging.

A run directory holds ``config.yaml`` (the resolved config), ``checkpoints/step_XXXXXXXX.pt`` (the last few,
written atomically, loaded with ``weights_only=True``) and ``tb/`` (TensorBoard scalars, images, audio).
Training resumes from the newest checkpoint automatically. Under torchrun only rank 0 writes into a run
directory (config, checkpoints, ``progress.jsonl``, TensorBoard); every rank reads the same checkpoints.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from soundgen import distributed
from soundgen.config import config_to_dict, save_config
from soundgen.errors import CorruptFileError
from soundgen.utils import atomic_write

log = logging.getLogger(__name__)

_CKPT = re.compile(r"^step_(\d{8})\.pt$")


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU. Under torchrun, ``cuda`` means this local rank's GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return distributed.device_for_rank(torch.device(name))


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CPU and CUDA when ``enabled``; a no-op context otherwise."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def use_autocast(choice: Literal["auto", "bf16", "fp32"], device: torch.device) -> bool:
    """Whether a loop trains under bf16 autocast: ``auto`` on CUDA only (on CPU bf16 measured slower for both
    the codec's convolutions and the LM's small matrices), ``bf16`` always, ``fp32`` never."""
    return choice == "bf16" or (choice == "auto" and device.type == "cuda")


def learning_rate(
    step: int,
    peak: float,
    *,
    warmup_steps: int = 0,
    decay_start: int | None = None,
    decay_steps: int = 1,
    min_ratio: float = 0.1,
) -> float:
    """The learning rate of step ``step`` in both training loops: a linear warm-up to ``peak`` over
    ``warmup_steps``, ``peak`` until ``decay_start`` (None: for ever), then a cosine down to ``peak * min_ratio``
    over ``decay_steps``, which it keeps."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if decay_start is None or step <= decay_start:
        return peak
    done = min(1.0, (step - decay_start) / max(1, decay_steps))
    low = peak * min_ratio
    return low + (peak - low) * 0.5 * (1.0 + math.cos(math.pi * done))


@dataclass
class TrainResult:
    """Where a training run (either loop) ended."""

    run_dir: Path
    step: int
    losses: dict[str, float]
    """The last step's losses by name (the LM: ``loss``; the codec: ``loss/mel``, ``loss/l1``...)."""
    steps_per_second: float
    validation: dict[str, float]
    """The last validation's metrics by name, empty when none ran (the LM: ``loss``; the codec: ``mel@6kbps``,
    ``stft@6kbps``... per bitrate, see :func:`by_bitrate`)."""


def by_bitrate(validation: dict[str, float]) -> dict[str, dict[str, float]]:
    """``{"mel@6kbps": x, ...}`` grouped as ``{"6kbps": {"mel": x}, ...}`` (metrics without a bitrate under "")."""
    out: dict[str, dict[str, float]] = {}
    for key, value in validation.items():
        metric, _, where = key.partition("@")
        out.setdefault(where, {})[metric] = value
    return out


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@dataclass
class RunDir:
    """A training run's directory."""

    path: Path

    @classmethod
    def create(cls, path: str | Path, cfg: Any) -> RunDir:
        """Create (or reopen) a run directory and write the resolved config into it.

        When the directory already holds a different config, the new one is kept beside it as
        ``config.resumed.yaml`` and a warning says so: resuming with changed settings is allowed but visible.
        Ranks other than 0 only open the directory.
        """
        run = cls(Path(path))
        if not distributed.is_main():
            return run
        run.path.mkdir(parents=True, exist_ok=True)
        (run.path / "checkpoints").mkdir(exist_ok=True)
        target = run.path / "config.yaml"
        if target.exists():
            import yaml

            old = yaml.safe_load(target.read_text(encoding="utf-8"))
            if old != config_to_dict(cfg):
                log.warning("config differs from the one this run started with; see %s", run.path)
                save_config(cfg, run.path / "config.resumed.yaml")
        else:
            save_config(cfg, target)
        return run

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def checkpoints(self) -> list[Path]:
        """Checkpoints in this run, oldest first."""
        if not self.checkpoint_dir.exists():
            return []
        found = [p for p in self.checkpoint_dir.iterdir() if _CKPT.match(p.name)]
        return sorted(found, key=lambda p: p.name)

    def start_timing(self, step: int, device: torch.device | str) -> None:
        """Start timing this sitting at ``step``: every later :meth:`save` appends the steps since the previous
        save, their wall time and the hardware to ``progress.jsonl`` (a model card sums them)."""
        self._timing = (step, time.monotonic(), str(device))

    def save(self, step: int, state: dict[str, Any], keep: int = 3) -> Path:
        """Write ``state`` as the checkpoint of ``step`` atomically and keep only the ``keep`` newest.

        Only rank 0 writes (the checkpoint and ``progress.jsonl``); on other ranks this returns the path rank 0
        writes without touching the disk.
        """
        target = self.checkpoint_dir / f"step_{step:08d}.pt"
        if not distributed.is_main():
            return target
        with atomic_write(target) as f:
            torch.save(state, f)
        for old in self.checkpoints()[:-keep]:
            old.unlink(missing_ok=True)
        timing = getattr(self, "_timing", None)
        if timing is not None and step > timing[0]:
            now = time.monotonic()
            row = {
                "from_step": timing[0],
                "step": step,
                "seconds": round(now - timing[1], 3),
                "device": _hardware(timing[2], distributed.world_size()),
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            with open(self.path / "progress.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            self._timing = (step, now, timing[2])
        return target

    def load_latest(self, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
        """Load the newest readable checkpoint, or ``None`` when there is none.

        An unreadable newest checkpoint (e.g. the machine died while copying) is skipped with a warning in
        favour of the one before it.
        """
        for path in reversed(self.checkpoints()):
            try:
                state: dict[str, Any] = torch.load(path, map_location=map_location, weights_only=True)
                return state
            except Exception as e:  # noqa: BLE001 - any unreadable file is skipped the same way
                log.warning("skipping unreadable checkpoint %s: %s", path, e)
        if self.checkpoints():
            raise CorruptFileError(f"no readable checkpoint in {self.checkpoint_dir}")
        return None


class ScalarLogger:
    """TensorBoard logging when the ``tensorboard`` package is installed, else a no-op (with a note).

    Only rank 0 logs under torchrun; on other ranks every method is a no-op.
    """

    def __init__(self, log_dir: str | Path, enabled: bool = True) -> None:
        self._writer: Any = None
        if not enabled or not distributed.is_main():
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.info("tensorboard is not installed (pip install 'soundgen[train]'); not logging scalars")
            return
        self._writer = SummaryWriter(str(log_dir))

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self._writer is not None:
            self._writer.add_scalar(tag, value, step)

    def audio(self, tag: str, wav: torch.Tensor, step: int, sample_rate: int) -> None:
        """Log mono audio ``[T]``."""
        if self._writer is not None:
            self._writer.add_audio(tag, wav.detach().float().clamp(-1, 1).cpu(), step, sample_rate=sample_rate)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """Log an image ``[H, W]`` or ``[H, W, 3]`` with values in 0..1."""
        if self._writer is not None:
            fmt = "HW" if image.ndim == 2 else "HWC"
            self._writer.add_image(tag, image, step, dataformats=fmt)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _hardware(device: str, processes: int = 1) -> str:
    """The device in words: the GPU's name, or the CPU with its core count; ``N x`` in front for N processes."""
    if device.startswith("cuda") and torch.cuda.is_available():
        name = f"{torch.cuda.get_device_name(torch.device(device))} (CUDA)"
    else:
        name = f"CPU ({os.cpu_count()} cores, {platform.machine()})"
    return f"{processes} x {name}" if processes > 1 else name
