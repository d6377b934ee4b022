"""Saving and loading the LM part of a model directory: ``lm/config.json`` + ``lm/model.safetensors``.

``model.safetensors`` holds the LM's weights under ``lm.`` and the text encoder's trainable weights (the hashed
encoder; none for the frozen MiniLM, which comes from its package) under ``conditioner.``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from soundgen.config import config_to_dict
from soundgen.errors import CorruptFileError, ModelNotFoundError
from soundgen.lm.conditioners import TextConditioner, build_conditioner
from soundgen.lm.config import FORMAT, VERSION, read_lm_config
from soundgen.lm.model import LMModel
from soundgen.utils import atomic_path, atomic_write

__all__ = ["FORMAT", "VERSION", "LoadedLM", "load_lm", "read_lm_config", "save_lm"]



@dataclass
class LoadedLM:
    """An LM and its text encoder, as read from a directory."""

    lm: LMModel
    conditioner: TextConditioner


def save_lm(
    lm: LMModel,
    conditioner: TextConditioner,
    out_dir: str | Path,
    extra: dict[str, Any] | None = None,
    *,
    fp16: bool = False,
) -> None:
    """Write ``config.json`` and ``model.safetensors`` into ``out_dir`` (each file atomically).

    Args:
        lm: the model.
        conditioner: its text encoder (its config is recorded; trainable weights saved).
        out_dir: target directory (created).
        extra: more JSON-serialisable facts to record in ``config.json`` (e.g. training steps).
        fp16: store floating-point weights as float16 (half the size; loaded back as float32).
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    def stored(v: torch.Tensor) -> torch.Tensor:
        v = v.detach().contiguous().cpu()
        if not v.is_floating_point():
            return v
        return v.half() if fp16 else v.float()

    tensors = {f"lm.{k}": stored(v) for k, v in lm.state_dict().items()}
    tensors.update({f"conditioner.{k}": stored(v) for k, v in conditioner.state_dict().items()})
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "text_encoder": lm.cfg.text.kind,
        "dtype": "float16" if fp16 else "float32",
        "lm": config_to_dict(lm.cfg),
        **(extra or {}),
    }
    with atomic_write(out / "config.json", "w") as f:
        json.dump(meta, f, indent=2)


def load_lm(lm_dir: str | Path, device: str | torch.device = "cpu") -> LoadedLM:
    """Load an LM directory (eval mode).

    Raises:
        ModelNotFoundError: the directory or a file is missing.
        CorruptFileError: the files are unreadable or do not match each other.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    cfg = read_lm_config(lm_dir)
    weights = Path(lm_dir) / "model.safetensors"
    if not weights.is_file():
        raise ModelNotFoundError(f"no LM weights at {weights} (export the model again)")
    try:
        tensors = load_file(str(weights), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise CorruptFileError(f"cannot read {weights}: {e}; re-export the model") from e
    conditioner = build_conditioner(cfg.text)
    lm = LMModel(cfg, conditioner.dim)
    _load_part(lm, tensors, "lm.", weights)
    _load_part(conditioner, tensors, "conditioner.", weights)
    return LoadedLM(lm.to(device).eval(), conditioner.to(device).eval())


def _load_part(module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str, where: Path) -> None:
    part = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        module.load_state_dict(part, strict=True)
    except RuntimeError as e:
        summary = " ".join(str(e).split())[:300]
        raise CorruptFileError(f"{where} does not match its config.json ({summary}); re-export the model") from e
