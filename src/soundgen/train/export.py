"""``soundgen lm export``: a training run + a codec -> a model directory that ``TextToSound.load`` reads.

The directory holds ``codec/`` (config.json + model.safetensors), ``lm/`` (config.json naming the text encoder
+ model.safetensors), ``prompts.json`` and ``MODEL_CARD.md`` (written by :mod:`soundgen.release.card` from the
run and its dataset; ``soundgen model release`` rewrites it from every report of the chain). It is assembled beside
the target and moved into place at the end, so a failed export never leaves a half-written model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from soundgen.config import load_config
from soundgen.errors import ConfigError, ModelNotFoundError, SoundgenError
from soundgen.lm.conditioners import build_conditioner
from soundgen.lm.io import LoadedLM, save_lm
from soundgen.lm.model import LMModel
from soundgen.model_files import write_example_prompts
from soundgen.release.card import ReleaseInputs, model_card
from soundgen.release.hashes import CARD
from soundgen.train.common import RunDir
from soundgen.utils import swap_into_place

EXPORT_LIMITS = (
    "Trained only on the data above: prompts far from its captions and categories give generic sounds.",
    "Generated audio may resemble training clips; respect the licences of the sources above.",
)


class ExportError(SoundgenError):
    """The run and the codec cannot be exported together, or the target is in the way."""


@dataclass
class ExportResult:
    """What was exported."""

    out_dir: Path
    step: int


def load_run(run_dir: str | Path) -> tuple[LoadedLM, int]:
    """The LM and text encoder of a run's newest checkpoint (eval mode), and its step."""
    from soundgen.lm.config import LMRunConfig

    run = RunDir(Path(run_dir))
    cfg_path = run.path / "config.yaml"
    if not cfg_path.is_file():
        raise ModelNotFoundError(
            f"{run_dir} is not an LM run directory (no config.yaml); train with 'soundgen lm train'"
        )
    try:
        cfg = load_config(LMRunConfig, cfg_path)
    except ConfigError as e:
        raise ExportError(f"{cfg_path} is not an LM run config: {e}") from e
    state = run.load_latest()
    if state is None:
        raise ModelNotFoundError(f"{run_dir} has no checkpoint yet; train longer (checkpoint_every steps)")
    conditioner = build_conditioner(cfg.model.text)
    lm = LMModel(cfg.model, conditioner.dim)
    lm.load_state_dict(state["model"])
    conditioner.load_state_dict(state["conditioner"])
    return LoadedLM(lm.eval(), conditioner.eval()), int(state["step"])


def export_model(
    run_dir: str | Path, codec_dir: str | Path, out_dir: str | Path, force: bool = False, fp16: bool = False
) -> ExportResult:
    """Write a model directory from a run's newest checkpoint and a codec directory.

    With ``fp16`` the LM's weights are stored as float16 (half the size); the codec directory is copied as it is
    (export it with ``soundgen codec export --fp16`` for the same).

    Raises:
        ExportError: the codec does not match the LM, or ``out_dir`` exists and ``force`` is False.
    """
    from soundgen.codec.io import load_codec

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not force:
        raise ExportError(f"{out} already exists; choose another --out or pass --force to replace it")
    loaded, step = load_run(run_dir)
    codec = load_codec(codec_dir)
    cfg = loaded.lm.cfg
    if cfg.codebook_size != codec.codebook_size or abs(cfg.frame_rate - float(codec.frame_rate)) > 1e-6:
        raise ExportError(
            f"the codec at {codec_dir} ({codec.codebook_size} codes, {codec.frame_rate} frames/s) is not the one "
            f"the LM was trained on ({cfg.codebook_size} codes, {cfg.frame_rate} frames/s)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copytree(Path(codec_dir), tmp / "codec", ignore=shutil.ignore_patterns(".*"))
        save_lm(loaded.lm, loaded.conditioner, tmp / "lm", extra={"train_steps": step}, fp16=fp16)
        prompts = example_prompts(Path(run_dir))
        if prompts:
            write_example_prompts(tmp, prompts)
        (tmp / CARD).write_text(model_card(_card_inputs(tmp, Path(run_dir)), tmp), encoding="utf-8")
        swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out, step)


def _card_inputs(model_dir: Path, run_dir: Path) -> ReleaseInputs:
    """What an export knows for its card: the run (steps, time, hardware) and the dataset behind its tokens."""
    return ReleaseInputs(
        model_dir=model_dir,
        lm_run=run_dir,
        corpus_dir=_run_dataset(run_dir),
        limits=list(EXPORT_LIMITS),
        title="soundgen text-to-sound model",
        intro="A text-to-sound model made with soundgen's own commands: a neural audio codec and a transformer LM "
        f"over its codes (delay pattern, cross-attention to a text encoder, classifier-free guidance), trained in "
        f"run `{run_dir.name}`.",
    )


def _run_dataset(run_dir: Path) -> Path | None:
    """The dataset behind the run's token cache, when it is recorded and still there."""
    meta_file = run_dir / "tokens.json"
    if not meta_file.is_file():
        return None
    dataset = json.loads(meta_file.read_text(encoding="utf-8")).get("dataset")
    return Path(dataset) if dataset and Path(dataset).is_dir() else None


def example_prompts(run_dir: Path, limit: int = 8) -> list[str]:
    """Training captions to suggest as prompts: one per category in turn, so every category is shown."""
    from soundgen.data.manifest import manifest_path, read_manifest

    dataset = _run_dataset(run_dir)
    if dataset is None or not manifest_path(dataset, "train").is_file():
        return []
    by_category: dict[str, list[str]] = {}
    for clip in sorted(read_manifest(dataset, "train"), key=lambda c: c.caption):
        captions = by_category.setdefault(clip.category, [])
        if clip.caption not in captions:
            captions.append(clip.caption)
    out: list[str] = []
    for rank in range(limit):
        out += [c[rank] for _, c in sorted(by_category.items()) if rank < len(c)]
    return out[:limit]
