"""Generation speed: seconds of audio per wall-clock second, 10 s with CFG, batch 1, 2 threads.

Measures the default LM (configs/lm/default.yaml, or a trained --model) beside a MusicGen-small-sized
transformer (d1024, 24 layers, 16 heads; random weights) through the same generation loop, text encoder and
codec, in the same run. Each model runs in its own subprocess so that its peak RSS is its own.

    python benchmarks/generation_speed.py [--duration 10] [--threads 2] [--out benchmarks/results/generation_speed.json]

To measure a change, time the code before it in the same run: unpack the older source tree and pass it, e.g.
``git archive HEAD src | tar -x -C /tmp/base`` then ``--baseline-src /tmp/base/src``; the default LM then also
runs (float32) from that tree, back to back with the current code, and the report gives the speed-up of the
decoding loop over it; ``--repeat 3`` alternates them three times (the median ratio is the figure to quote).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(kind: str, model_dir: str | None, dtype: str) -> object:
    """The pipeline to time: the default LM or the MusicGen-small-sized peer, random weights unless --model."""
    import torch

    from soundgen.codec.config import CodecConfig
    from soundgen.codec.model import build_codec
    from soundgen.config import load_config
    from soundgen.lm.conditioners import build_conditioner
    from soundgen.lm.config import LMRunConfig
    from soundgen.lm.model import LMModel
    from soundgen.pipeline import TextToSound

    if kind == "default" and model_dir:
        return TextToSound.load(model_dir, dtype=dtype)  # type: ignore[arg-type]
    torch.manual_seed(0)
    codec = build_codec(CodecConfig()).eval()
    cfg = load_config(LMRunConfig, ROOT / "configs" / "lm" / "default.yaml").model
    if kind == "musicgen_small_size":
        cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.max_frames = 1024, 24, 16, 1500  # MusicGen-small, 30 s window
    cfg.codebook_size, cfg.frame_rate = codec.codebook_size, float(codec.frame_rate)
    conditioner = build_conditioner(cfg.text)
    lm = LMModel(cfg, conditioner.dim).eval()
    if dtype == "bfloat16":
        lm = lm.to(torch.bfloat16)
    return TextToSound(codec, lm, conditioner)


def step_matrices_kind(lm: object) -> str | None:
    """How the decoding steps held the output heads' matrix (``float16-packed``, ``float32``, ...), or None for a
    source tree without step weights (a --baseline-src tree may be older than this script)."""
    import torch

    weights = getattr(lm, "step_weights", None)
    if weights is not None:  # soundgen.lm.step_weights
        w = weights()
        return "float16-packed" if w.halves[-1] else str(w.matrices[-1].dtype).removeprefix("torch.")
    matrices = getattr(lm, "step_matrices", None)  # trees before the one decoding step (issue 12)
    if matrices is None:
        return None
    heads = matrices(lm.step_format).heads  # type: ignore[attr-defined]
    if isinstance(heads, torch.Tensor):
        return str(heads.dtype).removeprefix("torch.")
    return {"HalfPacked": "float16-packed", "ScriptObject": "int8"}.get(type(heads).__name__, type(heads).__name__)


def fused_step_used(lm: object) -> bool | None:
    """Whether :meth:`~soundgen.lm.model.LMModel.step_plan` runs this model's step as TorchScript
    (soundgen.lm.fused_step), or None for a source tree without it."""
    import torch

    with torch.inference_mode():
        plan = lm.step_plan(lm.null_memory(1))  # type: ignore[attr-defined]
    if hasattr(plan, "scripted"):
        return bool(plan.scripted)
    return plan.fused is not None if hasattr(plan, "fused") else None  # trees before the one decoding step


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from soundgen.pipeline import GenerationRequest

    t0 = time.perf_counter()
    tts = build(args.worker, args.model, args.dtype)
    load_s = time.perf_counter() - t0
    tts.generate(GenerationRequest("warm up", duration=0.3, seed=0, cfg_coef=args.cfg))  # type: ignore[attr-defined]
    timed = []  # (elapsed, lm seconds per step, steps, duration) of each generation, in order
    for i in range(args.generations if args.worker == "default" else 1):
        stamps: list[float] = []
        req = GenerationRequest("a heavy wooden door slams shut", duration=args.duration, seed=1 + i, cfg_coef=args.cfg)
        result = tts.generate(req, progress=lambda s, n, at=stamps: at.append(time.perf_counter()))  # type: ignore[attr-defined,misc]
        lm_step = (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)
        timed.append((result.elapsed, lm_step, len(stamps), result.duration))
    walls = [t[0] for t in timed]
    elapsed, lm_step, steps, duration = sorted(timed)[len(timed) // 2]  # the median generation
    lm = tts.lm  # type: ignore[attr-defined]
    import soundgen

    out = {
        "model": args.worker,
        "code": args.code_label,
        "source": str(Path(soundgen.__file__).parent),
        "dtype": args.dtype,
        "parameters_m": round(sum(p.numel() for p in lm.parameters()) / 1e6, 2),
        "d_model": lm.cfg.d_model,
        "n_layers": lm.cfg.n_layers,
        "duration_s": duration,
        # the median of this process's generations (the model stays loaded, as in the service's model process)
        "wall_s": round(elapsed, 3),
        "audio_s_per_wall_s": round(duration / elapsed, 3),
        # every generation's wall time in order; the first one after loading (a one-shot `soundgen generate`) apart
        "walls_s": [round(w, 3) for w in walls],
        "first_audio_s_per_wall_s": round(duration / walls[0], 3),
        "ms_per_step": round(1000 * elapsed / max(1, steps), 2),
        # the decoding loop alone (no text encoder, no codec; the prefills of later windows included)
        "lm_ms_per_step": round(1000 * lm_step, 2),
        "steps": steps,
        "step_matrices": step_matrices_kind(lm),
        "fused_step": fused_step_used(lm),
        "load_s": round(load_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(out))


def run_one(
    kind: str, args: argparse.Namespace, duration: float, dtype: str, src: str | None = None
) -> dict[str, object]:
    """Time one model in a fresh subprocess (``src``: another source tree to import soundgen from)."""
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--threads",
        str(args.threads),
        "--duration",
        str(duration),
        "--cfg",
        str(args.cfg),
        "--dtype",
        dtype,
        "--code-label",
        "baseline" if src else "current",
        "--generations",
        str(args.generations),
    ]
    if args.model:
        cmd += ["--model", args.model]
    env = {
        "SOUNDGEN_NO_PROGRESS": "1",
        "HF_HUB_OFFLINE": "1",
        "PATH": "/usr/bin:/bin",
        "OMP_NUM_THREADS": str(args.threads),
        "OMP_WAIT_POLICY": args.omp_wait_policy,
    }
    if src:
        env["PYTHONPATH"] = str(Path(src).resolve())  # ahead of the editable install of this checkout
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{proc.stderr}")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result), file=sys.stderr)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds to generate (default 10)")
    p.add_argument("--peer-duration", type=float, help="seconds for the MusicGen-sized peer (default: --duration)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cfg", type=float, default=3.0)
    p.add_argument(
        "--dtypes",
        default="float32,bfloat16",
        help="LM weight formats to time for the default LM (float32, bfloat16)",
    )
    p.add_argument("--model", help="a trained model directory to time instead of the random default LM")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "generation_speed.json")
    p.add_argument("--omp-wait-policy", default="PASSIVE", help="PASSIVE (as 'soundgen generate' sets) or ACTIVE")
    p.add_argument("--baseline-src", help="an older source tree (its src/ folder) to time the default LM with too")
    p.add_argument("--repeat", type=int, default=1, help="time the default LM (and the baseline) this many times")
    p.add_argument(
        "--generations",
        type=int,
        default=3,
        help="generations timed in each process of the default LM, after a short warm-up (the median is reported, "
        "and the first apart)",
    )
    p.add_argument("--code-label", default="current", help=argparse.SUPPRESS)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    args = p.parse_args()
    if "int8" in args.dtypes.split(","):
        p.error("--dtypes int8: the int8 decoding steps were removed (1.6x slower than float32, see lm/fused_step.py)")
    if args.worker:
        worker(args)
        return
    import os

    load_at_start = os.getloadavg()[0]
    runs: list[dict[str, object]] = []
    pairs: list[tuple[dict[str, object], dict[str, object]]] = []  # (baseline, current float32), back to back
    for _ in range(args.repeat):
        baseline = run_one("default", args, args.duration, "float32", args.baseline_src) if args.baseline_src else None
        these = [run_one("default", args, args.duration, d) for d in args.dtypes.split(",")]
        runs += these
        if baseline is not None:
            pairs.append((baseline, next((r for r in these if r["dtype"] == "float32"), these[0])))
    peer = run_one("musicgen_small_size", args, args.peer_duration or args.duration, "float32")
    best = max(runs, key=lambda r: float(r["audio_s_per_wall_s"]))  # type: ignore[arg-type]
    # the target is judged on the median float32 process (the default path), not on the best one
    f32 = [float(r["audio_s_per_wall_s"]) for r in runs if r["dtype"] == "float32"] or [0.0]  # type: ignore[arg-type]
    f32_rss = max((float(r["peak_rss_mb"]) for r in runs if r["dtype"] == "float32"), default=0.0)  # type: ignore[arg-type]
    ratios = [float(b["lm_ms_per_step"]) / float(c["lm_ms_per_step"]) for b, c in pairs]  # type: ignore[arg-type]
    baseline_report = {
        "runs": [b for b, _ in pairs],
        "lm_step_speedup_vs_baseline": [round(r, 2) for r in ratios],
        "median_lm_step_speedup_vs_baseline": round(statistics.median(ratios), 2) if ratios else None,
    }
    report = {
        "benchmark": "generation_speed",
        "setup": f"{args.duration:g} s with CFG {args.cfg:g}, batch 1, {args.threads} threads, CPU, "
        f"OMP_WAIT_POLICY={args.omp_wait_policy}",
        "load_average_1min_at_start": round(load_at_start, 2),
        "machine": platform.processor() or platform.machine(),
        "default": runs,
        "peer_musicgen_small_size": peer,
        "baseline": baseline_report if args.baseline_src else None,
        "speedup_vs_peer": round(float(best["audio_s_per_wall_s"]) / float(peer["audio_s_per_wall_s"]), 2),  # type: ignore[arg-type]
        "targets": {"audio_s_per_wall_s": 5.0, "peak_rss_mb": 1024},
        "float32_median_audio_s_per_wall_s": round(statistics.median(f32), 3),
        "meets_targets": statistics.median(f32) >= 5.0 and f32_rss < 1024,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
