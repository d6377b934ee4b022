"""A model directory on disk: where the default one is and the example prompts it suggests, for every layer.

A model directory (written by ``soundgen lm export``) holds ``codec/`` and ``lm/`` (each ``config.json`` +
``model.safetensors``), ``MODEL_CARD.md`` and, when the training captions gave some, ``prompts.json``: the example
prompts it suggests. ``soundgen generate``, ``soundgen codec encode/decode``, ``soundgen model verify`` and the
service all find the default model through :func:`default_model_dir`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from soundgen.errors import ModelNotFoundError

MODEL_ENV = "SOUNDGEN_MODEL"
BUNDLED_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "default"
EXAMPLE_PROMPTS_FILE = "prompts.json"
# Suggested where a model directory has no prompts.json (the service's page) and sampled in LM training logs.
EXAMPLE_PROMPTS = [
    "heavy rain", "a huge explosion", "footsteps on gravel", "a wooden door creaking open",
    "thunder rumbling far away", "sci-fi laser blaster", "birds singing in the morning",
    "a calm piano melody",
]

Part = Literal["codec", "lm"]


def default_model_dir(
    parts: Sequence[Part] = ("lm", "codec"), hint: str = "pass --model DIR (a directory made by 'soundgen lm export')"
) -> Path:
    """The default model directory: ``$SOUNDGEN_MODEL``, else the bundled ``<repo>/models/default``.

    Args:
        parts: the parts the caller needs (``codec/``, ``lm/``); each must have its ``config.json`` there.
        hint: what the user can do instead, for the error message.

    Raises:
        ModelNotFoundError: no model (or not those parts of one) is installed there.
    """
    env = os.environ.get(MODEL_ENV)
    path = Path(env) if env else BUNDLED_MODEL_DIR
    if not all((path / part / "config.json").is_file() for part in parts):
        where = f"${MODEL_ENV}" if env else "the bundled default"
        raise ModelNotFoundError(f"no model is installed at {path} ({where}); {hint} or set {MODEL_ENV}")
    return path


def read_example_prompts(model_dir: str | Path) -> list[str] | None:
    """Example prompts a model directory suggests (``prompts.json``, written by ``soundgen lm export`` from the
    training captions), or ``None`` when it has none or the file is unreadable."""
    path = Path(model_dir) / EXAMPLE_PROMPTS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    prompts = data.get("example_prompts") if isinstance(data, dict) else None
    if not isinstance(prompts, list) or not all(isinstance(p, str) and p.strip() for p in prompts):
        return None
    return prompts or None


def write_example_prompts(model_dir: str | Path, prompts: list[str]) -> None:
    """Write ``prompts.json`` into ``model_dir`` (read back by :func:`read_example_prompts`)."""
    text = json.dumps({"example_prompts": prompts}, indent=1) + "\n"
    (Path(model_dir) / EXAMPLE_PROMPTS_FILE).write_text(text)
