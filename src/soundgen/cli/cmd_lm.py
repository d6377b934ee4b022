"""``soundgen lm train|export``: train the text-to-sound LM on a token cache and export it as a model directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from soundgen.cli.overrides import add_override_options, collect_overrides


def _override_options(parser: argparse.ArgumentParser) -> None:
    """One hidden ``--section.key=VALUE`` option per field of the LM run config (nested sections too)."""
    from soundgen.lm.config import LMRunConfig

    add_override_options(parser, LMRunConfig, "--train.lr=3e-4 --model.text.kind=hashed")


def register(groups: Any) -> None:
    """Add ``soundgen lm train`` and ``soundgen lm export``."""
    _register_lm(groups.group("lm"))


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
        from soundgen.codec.io import codec_dir_in, load_codec

        codec = load_codec(codec_dir_in(args.codec))
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
    from soundgen.codec.io import codec_dir_in
    from soundgen.train.export import export_model

    result = export_model(args.run_dir, codec_dir_in(args.codec), args.out, force=args.force, fp16=args.fp16)
    print(f"exported step {result.step} to {result.out_dir}")
    return 0
