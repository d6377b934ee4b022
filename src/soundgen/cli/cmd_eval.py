"""``soundgen eval codec|train-classifier|generation|prompts``: evaluate codecs and generation against baselines."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from soundgen.cli.cmd_codec import CODEC_MODEL_HELP
from soundgen.cli.sampling_options import add_sampling_options
from soundgen.errors import InvalidRequestError, SoundgenError
from soundgen.eval import CODEC_SYSTEMS as SYSTEMS


def register(groups: Any) -> None:
    """Add the ``eval`` group's commands."""
    ev = groups.group("eval")
    _register_codec(ev)
    _register_classifier(ev)
    _register_generation(ev)
    _register_prompts(ev)


def _register_codec(ev: Any) -> None:
    p = ev.add_parser("codec", help="compare a codec with Opus/MP3/codec2 on a dataset's clips")
    p.add_argument("--model", type=Path, help=CODEC_MODEL_HELP)
    p.add_argument("--data", type=Path, required=True, help="dataset directory")
    p.add_argument("--split", default="test", help="dataset split (default test)")
    p.add_argument("--bitrates", default="1.5,3,6", help="comma-separated kbps (default 1.5,3,6)")
    p.add_argument("--max-clips", type=int, default=20, help="clips to evaluate, taken in turn from each category "
                   "(default 20)")
    p.add_argument("--max-seconds", type=float, default=10.0, help="cut longer clips to their middle this many "
                   "seconds (default 10; 0 keeps whole clips)")
    p.add_argument("--out", type=Path, default=Path("eval_codec"), help="directory for JSON, Markdown and plot")
    p.add_argument("--no-visqol", action="store_true", help="skip ViSQOL (slow)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated systems to evaluate (default "
                   f"{','.join(SYSTEMS)}; e.g. soundgen alone to compare two codecs quickly)")
    p.set_defaults(func=_eval_codec)


def _register_classifier(ev: Any) -> None:
    p = ev.add_parser("train-classifier", help="train the in-project audio classifier on a dataset's categories")
    p.add_argument("--data", type=Path, required=True, metavar="DATASET_DIR")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="classifier directory to write")
    p.add_argument("--epochs", type=int, default=30, help="passes over the training clips (default 30)")
    p.add_argument("--segment", type=float, default=2.0, help="seconds per training crop (default 2)")
    p.add_argument("--min-clips", type=int, default=5, help="categories with fewer training clips are left out (5)")
    p.add_argument("--batch-size", type=int, default=32, help="crops per step (default 32)")
    p.add_argument("--max-clips-per-label", type=int, default=400,
                   help="training clips drawn per category at most (default 400; fewer trains faster)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--codec",
        metavar="DIR",
        help="codec model directory: also train on each clip's round trip through it, so that the classifier judges "
        "generated audio (which always comes out of a codec) by its content, not by the codec's artefacts",
    )
    p.add_argument(
        "--codec-share", type=float, default=0.5, help="with --codec: share of crops taken from the round trips (0.5)"
    )
    p.set_defaults(func=_train_classifier)


def _register_generation(ev: Any) -> None:
    p = ev.add_parser("generation", help="evaluate generation: prompt adherence, Frechet distance, speed, memory")
    p.add_argument("--model", type=Path, metavar="DIR", help="model directory (default: the bundled model)")
    p.add_argument("--prompts", type=Path, required=True, metavar="FILE", help="JSONL {prompt, category} or TSV lines")
    p.add_argument("--data", type=Path, required=True, metavar="DATASET_DIR", help="real clips (held-out split)")
    p.add_argument(
        "--classifier", type=Path, metavar="DIR", help="from 'eval train-classifier' (default DATA/classifier)"
    )
    p.add_argument("--split", default="test", help="real clips to compare with (default test)")
    p.add_argument("--count", type=int, default=4, help="sounds per prompt (default 4)")
    p.add_argument("--duration", type=float, default=4.0, help="seconds per sound (default 4)")
    add_sampling_options(p, seed_help="seed of the first prompt's sounds, {range} (default 0; prompt i uses seed + i)",
                          seed=0)
    p.add_argument("--max-real", type=int, default=500, help="real clips at most (default 500)")
    p.add_argument("--out", type=Path, default=Path("eval_generation"), help="directory for report.json and report.md")
    p.set_defaults(func=_eval_generation)


def _register_prompts(ev: Any) -> None:
    p = ev.add_parser("prompts", help="write evaluation prompts from a dataset's own captions, per category")
    p.add_argument("--data", type=Path, required=True, metavar="DATASET_DIR")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="JSONL file for 'eval generation --prompts'")
    p.add_argument("--per-category", type=int, default=1, help="distinct captions per category (default 1)")
    p.add_argument("--classifier", type=Path, metavar="DIR",
                   help="only the categories this classifier knows (from 'eval train-classifier')")
    p.set_defaults(func=_eval_prompts)


def _eval_codec(args: argparse.Namespace) -> int:
    from soundgen.eval.codec_eval import run_codec_eval

    try:
        bitrates = [float(b) for b in args.bitrates.split(",") if b.strip()]
    except ValueError as e:
        raise SoundgenError(f"--bitrates must be comma-separated numbers, got '{args.bitrates}'") from e
    if not bitrates or any(b <= 0 for b in bitrates):
        raise SoundgenError("--bitrates must list positive numbers")
    report = run_codec_eval(
        args.model,
        args.data,
        bitrates,
        args.out,
        split=args.split,
        max_clips=args.max_clips,
        visqol=not args.no_visqol,
        max_seconds=args.max_seconds,
        systems=[x.strip() for x in args.systems.split(",") if x.strip()],
    )
    print(report.markdown)
    print(f"wrote {args.out}/codec_eval.json, codec_eval.md and codec_eval.png")
    return 0


def _train_classifier(args: argparse.Namespace) -> int:
    from soundgen.train.classifier import ClassifierTrainConfig, train_classifier

    if not 0.0 <= args.codec_share <= 1.0:
        raise InvalidRequestError(f"--codec-share must be between 0 and 1, got {args.codec_share}")
    if args.max_clips_per_label < 1:
        raise InvalidRequestError(f"--max-clips-per-label must be at least 1, got {args.max_clips_per_label}")
    cfg = ClassifierTrainConfig(
        epochs=args.epochs,
        segment=args.segment,
        batch_size=args.batch_size,
        min_clips=args.min_clips,
        max_clips_per_label=args.max_clips_per_label,
        seed=args.seed,
        codec=str(args.codec) if args.codec else None,
        codec_share=args.codec_share,
    )
    result = train_classifier(args.data, args.out, cfg)
    through = "" if result.codec_accuracy is None else f", {result.codec_accuracy:.3f} through the codec"
    print(
        f"classifier of {len(result.labels)} categories written to {args.out}; held-out ({result.eval_split}) "
        f"accuracy {result.accuracy:.3f}{through} on {result.eval_clips} clips (chance {result.chance:.3f})"
    )
    return 0


def _eval_generation(args: argparse.Namespace) -> int:
    from soundgen.eval.generation_eval import GenerationEvalConfig, evaluate_generation
    from soundgen.lm.sampling_params import SamplingParams

    sampling = SamplingParams(
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, cfg_coef=args.cfg, seed=args.seed,
        negative_prompt=args.negative_prompt,
    )
    cfg = GenerationEvalConfig(
        count=args.count, duration=args.duration, sampling=sampling, split=args.split, max_real=args.max_real
    )
    classifier = args.classifier or args.data / "classifier"
    report = evaluate_generation(args.model, args.prompts, args.data, classifier, args.out, cfg)
    print(
        f"prompt adherence {report.adherence:.3f}; Frechet distance {report.frechet_distance:.3f}; "
        f"{report.real_time_factor:.2f}x real time; report in {args.out}"
    )
    return 0


def _eval_prompts(args: argparse.Namespace) -> int:
    import json

    from soundgen.eval.generation_eval import prompts_from_dataset
    from soundgen.utils import atomic_write

    labels = None
    if args.classifier is not None:
        from soundgen.eval.classifier import load_classifier

        labels = list(load_classifier(args.classifier)[0].cfg.labels)
    rows = prompts_from_dataset(args.data, per_category=args.per_category, labels=labels)
    with atomic_write(args.out, "w") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    print(f"wrote {len(rows)} prompts of {len({r['category'] for r in rows})} categories to {args.out}")
    return 0
