"""``soundgen model release``: copy a model directory beside its target, add the model card, move it into place."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from soundgen.errors import ModelNotFoundError, SoundgenError
from soundgen.model_files import write_example_prompts
from soundgen.release.card import SHEET, ReleaseInputs, model_card
from soundgen.release.hashes import CARD, model_files
from soundgen.release.reports import prompts_that_worked
from soundgen.utils import swap_into_place

MAX_BYTES_DEFAULT = 60 * 1024 * 1024
MODEL_PARTS = ("codec/config.json", "codec/model.safetensors", "lm/config.json", "lm/model.safetensors")


class ReleaseError(SoundgenError):
    """The release cannot be assembled (missing parts, too large, target in the way)."""


def release_model(inputs: ReleaseInputs, out_dir: str | Path, *, force: bool = False,
                  max_bytes: int = MAX_BYTES_DEFAULT) -> Path:
    """Copy the model directory to ``out_dir`` and write its model card (assembled beside it, moved into place).

    Raises:
        ModelNotFoundError: ``inputs.model_dir`` is not a model directory.
        ReleaseError: the model is larger than ``max_bytes``, or ``out_dir`` exists and ``force`` is False.
    """
    src = Path(inputs.model_dir)
    for part in MODEL_PARTS:
        if not (src / part).is_file():
            raise ModelNotFoundError(f"{src} is not a model directory (no {part}); make one with 'soundgen lm export'")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not force:
        raise ReleaseError(f"{out} already exists; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _copy_model(src, tmp, inputs.generation_eval)
        total = sum(path.stat().st_size for path in model_files(tmp))  # hashing waits for the card
        if total > max_bytes:
            raise ReleaseError(
                f"the model is {total / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB limit; export with "
                "--fp16 or train a smaller model"
            )
        (tmp / CARD).write_text(model_card(inputs, tmp), encoding="utf-8")
        swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _copy_model(src: Path, dst: Path, generation_eval: Path | None) -> None:
    """The model's files but its card and hidden files, the generation report's contact sheet, and as example
    prompts (``prompts.json``, the page's suggestions) the prompts that evaluation heard right every time, in place
    of the training captions ``lm export`` suggests."""
    for item in src.iterdir():
        if item.name == CARD or item.name.startswith("."):
            continue
        if item.is_dir():
            shutil.copytree(item, dst / item.name, ignore=shutil.ignore_patterns(".*"))
        else:
            shutil.copy2(item, dst / item.name)
    sheet = generation_eval / SHEET if generation_eval is not None else None
    if sheet is not None and sheet.is_file():  # what the model made, to look at beside the numbers
        shutil.copy2(sheet, dst / SHEET)
    worked = prompts_that_worked(generation_eval)
    if worked:
        write_example_prompts(dst, worked)
