"""``soundgen data tokenize``, ``soundgen lm train|export``, ``soundgen generate``, ``soundgen eval generation``
and ``soundgen eval train-classifier``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from soundgen.cli.overrides import add_override_options, collect_overrides
from soundgen.errors import InvalidRequestError, SoundgenError


class LMArgumentError(SoundgenError):
    """An option of an LM command has an invalid value."""


def _override_options(parser: argparse.ArgumentParser) -> None:
    """One hidden ``--section.key=VALUE`` option per field of the LM run config (nested sections too)."""
    from soundgen.lm.config import LMRunConfig

    add_override_options(parser, LMRunConfig, "--train.lr=3e-4 --model.text.kind=hashed")


def register(groups: Any) -> None:
    """Add the token cache, LM, generation and generation-evaluation commands."""
    _register_tokenize(groups.group("data"))
    _register_lm(groups.group("lm"))
    _register_generate(groups.top)
    _register_eval(groups.group("eval"))


def _register_tokenize(data: Any) -> None:
    p = data.add_parser(
        "tokenize",
        help="encode a dataset's clips into a token cache for LM training (resumable)",
        description="Encode every clip of DATASET_DIR once with the codec into memory-mappable token shards "
        "(captions and categories alongside). Rerunning it continues where it stopped.",
    )
    p.add_argument("dataset", type=Path, metavar="DATASET_DIR")
    p.add_argument("--codec", type=Path, required=True, metavar="MODEL_DIR", help="codec directory (or a model dir)")
    p.add_argument("--out", type=Path, required=True, metavar="TOKENS_DIR", help="token cache to create or resume")
    p.add_argument("--n-codebooks", type=int, help="codebooks to keep (default: the codec's current setting)")
    p.add_argument("--bitrate", type=float, help="pick the codebooks by bitrate in kbps instead")
    p.add_argument("--splits", default="train,valid,test", help="comma-separated splits (default train,valid,test)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.set_defaults(func=_tokenize)


def _register_lm(lm: Any) -> None:
    p = lm.add_parser(
        "train",
        help="train the text-to-sound LM on a token cache (resumes a run directory)",
        description="Train the LM on a token cache. Rerunning with the same --out resumes from its newest checkpoint. "
        "Any config value can be overridden as --section.key=VALUE, e.g. --train.lr=3e-4 --model.text.kind=hashed.",
    )
    p.add_argument("--config", type=Path, help="YAML config (sections model: and train:), e.g. configs/lm/default.yaml")
    p.add_argument("--tokens", type=Path, required=True, metavar="TOKENS_DIR", help="made by 'soundgen data tokenize'")
    p.add_argument("--codec", type=Path, metavar="MODEL_DIR", help="codec of the tokens (for audio samples in logs)")
    p.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run directory (created or resumed)")
    p.add_argument("--steps", type=int, help="train until this many steps (overrides train.steps)")
    p.add_argument("--init", type=Path, metavar="MODEL_DIR",
                   help="start a new run from a released model's LM (e.g. models/default to fine-tune the bundled "
                   "model on your own sounds); its shape replaces the config's model shape. A run that already has "
                   "checkpoints resumes from them instead")
    _override_options(p)
    p.set_defaults(func=_train)
    p = lm.add_parser("export", help="write a run's LM and its codec as a model directory")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--codec", type=Path, required=True, metavar="MODEL_DIR", help="codec the tokens were made with")
    p.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR", help="model directory to write")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--fp16", action="store_true", help="store the LM's weights as float16 (half the size)")
    p.set_defaults(func=_export)


def _register_generate(top: Any) -> None:
    p = top.add_parser("generate", help="generate sound from a text prompt", description="Generate sound from text.")
    p.add_argument("prompt", help="what the sound should be, e.g. 'a heavy door slams'")
    p.add_argument("-d", "--duration", type=float, default=5.0, help="seconds per sound (default 5)")
    p.add_argument("-n", "--count", type=int, default=1, help="sounds to generate; >1 numbers the files")
    _sampling_options(p, seed_help="random seed, {range} (printed when not given)")
    p.add_argument(
        "--continue",
        dest="continue_from",
        type=Path,
        metavar="FILE",
        help="audio to continue: each sound starts with it (as the codec hears it; its last 60 s when longer) and "
        "goes on for -d seconds",
    )
    p.add_argument("--model", type=Path, metavar="DIR", help="model directory (default: the bundled model)")
    p.add_argument(
        "-o", "--output", type=Path, required=True, metavar="OUT.wav", help="file to write (.wav/.flac/.ogg/.mp3)"
    )
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--dtype", default="float32", metavar="{float32,bfloat16}",
                   help="LM inference precision (default float32: the fastest on AVX2 CPUs for a model stored in "
                        "float16, as exported ones are, which decodes through lossless float16-packed GEMMs)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.set_defaults(func=_generate)


def _sampling_options(p: argparse.ArgumentParser, seed_help: str, seed: int | None = None) -> None:
    """The sampling options (``--seed --cfg --top-k --top-p --temperature --negative-prompt``), their defaults and
    ranges those of :mod:`soundgen.lm.sampling_params`, which checks them."""
    from soundgen.lm.sampling_params import CFG_COEF, DEFAULTS, SEED, TEMPERATURE, TOP_K, TOP_P, Limit

    def text(what: str, limit: Limit, default: float) -> str:
        return f"{what}, {limit.text()} (default {default:g}" + (f"; {limit.off})" if limit.off else ")")

    p.add_argument("--seed", type=int, default=seed, help=seed_help.format(range=SEED.text()))
    p.add_argument("--cfg", type=float, default=DEFAULTS.cfg_coef,
                   help=text("classifier-free guidance strength", CFG_COEF, DEFAULTS.cfg_coef))
    p.add_argument("--top-k", type=int, default=DEFAULTS.top_k,
                   help=text("sample among the k likeliest tokens", TOP_K, DEFAULTS.top_k))
    p.add_argument("--top-p", type=float, default=DEFAULTS.top_p,
                   help=text("nucleus sampling threshold", TOP_P, DEFAULTS.top_p))
    p.add_argument("--temperature", type=float, default=DEFAULTS.temperature,
                   help=text("sampling temperature", TEMPERATURE, DEFAULTS.temperature))
    p.add_argument("--negative-prompt", metavar="TEXT",
                   help="what the sound should not be, e.g. 'music, voices': guidance steers away from it instead of "
                   "from no text (no effect with --cfg 1); as long as a prompt may be")


def _register_eval(ev: Any) -> None:
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
    _sampling_options(p, seed_help="seed of the first prompt's sounds, {range} (default 0; prompt i uses seed + i)",
                      seed=0)
    p.add_argument("--max-real", type=int, default=500, help="real clips at most (default 500)")
    p.add_argument("--out", type=Path, default=Path("eval_generation"), help="directory for report.json and report.md")
    p.set_defaults(func=_eval_generation)
    p = ev.add_parser("prompts", help="write evaluation prompts from a dataset's own captions, per category")
    p.add_argument("--data", type=Path, required=True, metavar="DATASET_DIR")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="JSONL file for 'eval generation --prompts'")
    p.add_argument("--per-category", type=int, default=1, help="distinct captions per category (default 1)")
    p.add_argument("--classifier", type=Path, metavar="DIR",
                   help="only the categories this classifier knows (from 'eval train-classifier')")
    p.set_defaults(func=_eval_prompts)


def _codec_dir(path: Path) -> Path:
    """A codec directory, or the ``codec/`` inside a model directory."""
    found = path / "codec" if (path / "codec" / "config.json").is_file() else path
    if not (found / "config.json").is_file():
        from soundgen.errors import ModelNotFoundError

        raise ModelNotFoundError(
            f"no codec at {path}: --codec takes a directory written by 'soundgen codec export' or a model directory"
        )
    return found


def _tokenize(args: argparse.Namespace) -> int:
    from soundgen.codec.io import load_codec
    from soundgen.data.tokens import tokenize_dataset
    from soundgen.train.common import pick_device

    codec = load_codec(_codec_dir(args.codec)).to(pick_device(args.device)).eval()
    if args.n_codebooks is not None and args.bitrate is not None:
        raise LMArgumentError("give --n-codebooks or --bitrate, not both")
    if args.n_codebooks is not None:
        if not 1 <= args.n_codebooks <= codec.config.n_codebooks:
            raise LMArgumentError(f"--n-codebooks must be between 1 and {codec.config.n_codebooks}")
        codec.set_n_codebooks(args.n_codebooks)
    elif args.bitrate is not None:
        codec.set_bitrate(args.bitrate)
    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    report = tokenize_dataset(args.dataset, codec, args.out, splits=splits)
    print(
        f"encoded {report.encoded} clips ({report.frames} frames, {codec.n_codebooks} codebooks) into "
        f"{report.shards} new shard(s) in {args.out}; {report.skipped_existing} already there; "
        f"{len(report.failed)} failed"
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from soundgen.config import load_config
    from soundgen.lm.config import LMRunConfig
    from soundgen.train.lm import train_lm

    overrides = collect_overrides(args)
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    cfg = load_config(LMRunConfig, args.config, overrides)
    codec = None
    if args.codec is not None:
        from soundgen.codec.io import load_codec

        codec = load_codec(_codec_dir(args.codec))
    result = train_lm(cfg, args.tokens, args.out, codec, init=args.init)
    from soundgen.distributed import is_main

    if not is_main():  # under torchrun, rank 0 alone reports
        return 0
    if result.steps_per_second == 0:  # resumed at or past train.steps: nothing ran
        print(f"already trained to step {result.step}; run in {args.out} (raise --steps to train further)")
        return 0
    valid = f", valid loss {result.validation['loss']:.3f}" if "loss" in result.validation else ""
    print(
        f"step {result.step}: loss {result.losses['loss']:.3f}{valid} ({result.steps_per_second:.2f} steps/s); "
        f"run in {args.out}"
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    from soundgen.train.export import export_model

    result = export_model(args.run_dir, _codec_dir(args.codec), args.out, force=args.force, fp16=args.fp16)
    print(f"exported step {result.step} to {result.out_dir}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from soundgen.audio.io import write_audio
    from soundgen.audio.writer import format_from_path
    from soundgen.pipeline import GenerationRequest, TextToSound, check_dtype
    from soundgen.utils import check_writable

    check_dtype(args.dtype)  # int8 (removed) and unknown values: one line saying why, before any work
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    format_from_path(args.output)  # refuse an unknown suffix or an unwritable place before spending time generating
    req = GenerationRequest(
        args.prompt, args.duration, args.count, seed=args.seed, cfg_coef=args.cfg, temperature=args.temperature,
        top_k=args.top_k, top_p=args.top_p, negative_prompt=args.negative_prompt,
    )
    req.check()
    paths = _numbered(args.output, req.count)
    for path in paths:
        check_writable(path)
    tts = TextToSound.load(args.model, device=args.device, dtype=args.dtype)
    result = _run_generation(tts, req, args.continue_from)
    for path, audio in zip(paths, result.audio, strict=True):
        write_audio(path, audio, result.sample_rate)
        print(path)
    speed = result.duration * len(result.audio) / max(result.elapsed, 1e-9)
    print(
        f"seed {result.seed}; {result.duration:.2f} s x {len(result.audio)} in {result.elapsed:.1f} s "
        f"({speed:.1f}x real time)",
        file=sys.stderr,
    )
    return 0


def _run_generation(tts: Any, req: Any, continue_from: Path | None) -> Any:
    from soundgen.utils import progress

    bar = progress(desc="generate", unit="step")

    def on_step(step: int, total: int) -> None:
        bar.total = total
        bar.update(step - bar.n)

    try:
        if continue_from is None:
            return tts.generate(req, progress=on_step)
        audio = _prompt_audio(tts, continue_from)
        return tts.generate_batch(
            [req.prompt] * req.count,
            req.duration,
            req.sampling(),
            seed=req.seed,
            audio_prompt=audio.samples,
            audio_prompt_rate=audio.sample_rate,
            progress=on_step,
        )
    finally:
        bar.close()


CONTINUE_MAX_SECONDS = 60.0


def _prompt_audio(tts: Any, path: Path) -> Any:
    """The audio to continue, cropped to its last minute (or the model's window, if longer: the LM never looks
    further back), read without decoding the rest, so a 1-hour file costs what its last minute does."""
    from soundgen.audio.stream import read_audio_tail

    keep = max(CONTINUE_MAX_SECONDS, tts.lm.cfg.max_frames / tts.lm.cfg.frame_rate)
    audio, seconds = read_audio_tail(path, keep)
    if seconds > keep:
        print(f"--continue: using the last {keep:.0f} s of {path} ({seconds:.0f} s)", file=sys.stderr)
    return audio


def _numbered(path: Path, count: int) -> list[Path]:
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}_{i + 1}{path.suffix}") for i in range(count)]


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
