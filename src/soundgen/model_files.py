"""A model directory on disk: what it holds besides its parts' weights, in one place for every layer.

A model directory (written by ``soundgen lm export``) holds ``codec/`` and ``lm/`` (each ``config.json`` +
``model.safetensors``), ``MODEL_CARD.md`` and, when the training captions gave some, ``prompts.json``: the example
prompts it suggests.
"""

from __future__ import annotations

import json
from pathlib import Path

EXAMPLE_PROMPTS_FILE = "prompts.json"


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
