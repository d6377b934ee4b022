"""``soundgen model release`` (a model directory + its model card) and ``soundgen model verify``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(groups: Any) -> None:
    """Add ``soundgen model release`` and ``soundgen model verify``."""
    model = groups.group("model")
    p = model.add_parser(
        "release",
        help="copy a model directory and write its MODEL_CARD.md from the training chain's reports",
        description="Assemble a released model: the files of MODEL_DIR (made by 'soundgen lm export') plus a "
        "MODEL_CARD.md with the data, licences and attributions (from the corpus recipe report), training steps "
        "and time, the evaluation reports, the benchmarks' figures, known limits and every file's SHA-256.",
    )
    p.add_argument("model_dir", type=Path, metavar="MODEL_DIR")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="release directory (e.g. models/default)")
    p.add_argument("--corpus", type=Path, help="dataset made by 'soundgen data recipe default'")
    p.add_argument("--codec-run", type=Path, help="the codec's training run directory")
    p.add_argument("--lm-run", type=Path, help="the LM's training run directory")
    p.add_argument("--codec-eval", type=Path, help="--out of 'soundgen eval codec'")
    p.add_argument("--generation-eval", type=Path, help="--out of 'soundgen eval generation'")
    p.add_argument("--classifier", type=Path, help="--out of 'soundgen eval train-classifier'")
    p.add_argument("--bench", type=Path, action="append", default=[], metavar="JSON", help="benchmark JSON (repeat)")
    p.add_argument("--commands", type=Path, metavar="FILE", help="text file: the commands that made the model")
    p.add_argument("--limits", type=Path, metavar="FILE", help="text file: known limits, one per line")
    p.add_argument("--hardware", default="", help="where it was trained, in words (default: from the runs)")
    p.add_argument("--training-note", action="append", default=[], metavar="TEXT",
                   help="a fact about the training the runs did not record (repeat)")
    p.add_argument("--max-mb", type=float, default=60.0, help="refuse a model larger than this (MiB, default 60)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_release)
    v = model.add_parser("verify", help="check a released model's files against its MODEL_CARD.md")
    v.add_argument("model_dir", type=Path, nargs="?", default=None, metavar="MODEL_DIR",
                   help="default: the bundled model")
    v.set_defaults(func=_verify)


def _lines(path: Path | None) -> list[str]:
    from soundgen.errors import SoundgenError

    if path is None:
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SoundgenError(f"cannot read {path}: {e}") from e
    return [line.rstrip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _release(args: argparse.Namespace) -> int:
    from soundgen.release import ReleaseInputs, release_model

    inputs = ReleaseInputs(
        model_dir=args.model_dir,
        corpus_dir=args.corpus,
        codec_run=args.codec_run,
        lm_run=args.lm_run,
        codec_eval=args.codec_eval,
        generation_eval=args.generation_eval,
        classifier=args.classifier,
        benchmarks=list(args.bench),
        commands=_lines(args.commands),
        limits=_lines(args.limits),
        hardware=args.hardware,
        training_notes=list(args.training_note),
    )
    out = release_model(inputs, args.out, force=args.force, max_bytes=int(args.max_mb * 2**20))
    print(f"released {args.model_dir} to {out} (card: {out / 'MODEL_CARD.md'})")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from soundgen.model_files import default_model_dir
    from soundgen.release import verify_model

    root = args.model_dir if args.model_dir is not None else default_model_dir()
    files = verify_model(root)
    print(f"{root}: {len(files)} files match MODEL_CARD.md")
    return 0
