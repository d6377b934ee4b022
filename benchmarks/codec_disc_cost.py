"""What the adversarial discriminator costs a codec training step, beside the plain step in the same run.

A codec step with the discriminator runs the multi-scale STFT discriminator three times (on the reconstruction for
the generator's losses, on the real audio for the feature targets, and on both for its own update) and
backpropagates through it twice. This times, in one process and interleaved so that machine load hits both alike:

- ``plain``: a reconstruction-only step (l1 + multi-scale mel);
- ``adversarial``: a step with the discriminator (trained, and its losses reaching the generator);
- for each ``--every`` k: the mean cost of a step when the discriminator takes part every k-th step
  (``train.disc_every``), measured over runs of k steps, and its ratio to the plain step.

    python benchmarks/codec_disc_cost.py [--config configs/codec/decoder_finetune.yaml] [--threads 1]
        [--every 1,2,4,8] [--repeats 5] [--filters 32] [--crop 0.5]

The codec starts from random weights of the config's shape (speed does not depend on the weights). Writes JSON to
``benchmarks/results/codec_disc_cost.json`` (or ``--out``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from soundgen.codec import CodecRunConfig
from soundgen.config import load_config
from soundgen.train.codec import CodecTrainer

ROOT = Path(__file__).resolve().parents[1]


def _timed_steps(trainer: CodecTrainer, wav: torch.Tensor, steps: int) -> float:
    """Seconds per step over ``steps`` consecutive training steps."""
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(wav)
    return (time.perf_counter() - t0) / steps


def measure(cfg: CodecRunConfig, every: list[int], repeats: int, seed: int = 0) -> dict[str, Any]:
    """Per-step seconds of each mode (median over ``repeats``, interleaved) and ratios to the plain step."""
    torch.manual_seed(seed)
    t = cfg.train
    n = int(t.segment_seconds * cfg.model.sample_rate)
    wav = 0.1 * torch.randn(t.batch_size, cfg.model.channels, n)
    trainers: dict[str, tuple[CodecTrainer, int]] = {}  # name -> trainer, steps per timed block
    for name, k in [("plain", 0), ("adversarial", 1), *((f"every_{k}", k) for k in every if k > 1)]:
        train = dataclasses.replace(t, discriminator=k > 0, disc_start_step=0, disc_every=max(k, 1))
        trainer = CodecTrainer(CodecRunConfig(model=cfg.model, train=train), torch.device("cpu"))
        trainer.train_step(wav)  # warm-up: allocations, first-call costs
        trainers[name] = trainer, max(k, 2)
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(repeats):
        for name, (trainer, steps) in trainers.items():
            trainer.step = 0  # each block starts on an adversarial step: a block of k steps holds exactly one
            times[name].append(_timed_steps(trainer, wav, steps))
    median = {name: statistics.median(v) for name, v in times.items()}
    return {
        "seconds_per_step": median,
        "ratio_to_plain": {name: median[name] / median["plain"] for name in median},
        "all_seconds_per_step": times,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs/codec/decoder_finetune.yaml")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--every", default="1,2,4,8", help="comma-separated disc_every values to price")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--filters", type=int, default=None, help="override train.disc_filters")
    ap.add_argument("--crop", type=float, default=None, help="override train.disc_crop_seconds")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/codec_disc_cost.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(CodecRunConfig, args.config)
    if args.filters:
        cfg.train.disc_filters = args.filters
    if args.crop is not None:
        cfg.train.disc_crop_seconds = args.crop
    every = sorted({int(x) for x in args.every.split(",") if x.strip()})
    result = measure(cfg, every, args.repeats)
    result.update(
        config=str(args.config),
        threads=args.threads,
        disc_filters=cfg.train.disc_filters,
        disc_windows=cfg.train.disc_windows,
        disc_crop_seconds=cfg.train.disc_crop_seconds,
        batch=f"{cfg.train.batch_size} x {cfg.train.segment_seconds:g} s",
        machine=f"{platform.machine()}, {os.cpu_count()} cores",
        load_average=os.getloadavg()[0],
        torch=torch.__version__,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print("| step | s/step | x plain |\n|---|---:|---:|")
    for name, sec in result["seconds_per_step"].items():
        print(f"| {name} | {sec:.3f} | {result['ratio_to_plain'][name]:.2f} |")
    print(f"(load {result['load_average']:.1f}; {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
