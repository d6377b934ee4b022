"""``soundgen generate``: sound from a text prompt (or the continuation of an audio file)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from soundgen.cli.sampling_options import add_sampling_options

CONTINUE_MAX_SECONDS = 60.0


def register(groups: Any) -> None:
    """Add ``soundgen generate`` at the top level."""
    p = groups.top.add_parser("generate", help="generate sound from a text prompt",
                              description="Generate sound from text.")
    p.add_argument("prompt", help="what the sound should be, e.g. 'a heavy door slams'")
    p.add_argument("-d", "--duration", type=float, default=5.0, help="seconds per sound (default 5)")
    p.add_argument("-n", "--count", type=int, default=1, help="sounds to generate; >1 numbers the files")
    add_sampling_options(p, seed_help="random seed, {range} (printed when not given)")
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
    if result.regenerated:
        print(f"{result.regenerated} draw(s) came back silent and were drawn again", file=sys.stderr)
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
