"""Codec speed: encode/decode real-time factor (and training steps/s) beside EnCodec's 24 kHz model.

Both models run in the same process on the same machine, alternating, with random weights (speed does not
depend on the weights). EnCodec comes from the ``encodec`` package (``pip install encodec einops``); its
modules import torchaudio at the top although the model never uses it, so a stand-in module is placed in
``sys.modules`` when torchaudio is absent.

    python benchmarks/codec_speed.py [--threads 1,2] [--seconds 10] [--repeats 5] [--train-steps 5]

Writes JSON to ``benchmarks/results/codec_speed.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from soundgen.codec import CodecRunConfig, build_codec
from soundgen.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def load_encodec() -> Any:
    """EnCodec's 24 kHz model class (random weights), with a stand-in for torchaudio when it is absent."""
    try:
        import torchaudio  # noqa: F401
    except ImportError:
        stub = types.ModuleType("torchaudio")
        stub.transforms = types.ModuleType("torchaudio.transforms")  # type: ignore[attr-defined]
        sys.modules["torchaudio"] = stub
        sys.modules["torchaudio.transforms"] = stub.transforms  # type: ignore[attr-defined]
    from encodec import EncodecModel

    model = EncodecModel.encodec_model_24khz(pretrained=False)
    model.set_target_bandwidth(6.0)
    return model.eval()


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``fn`` over ``repeats`` runs after one warm-up (the least disturbed by other load)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best and median wall time of each function, the functions alternating so that load hits all alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    out = {f"{name}_best_s": min(t) for name, t in times.items()}
    out.update({f"{name}_median_s": statistics.median(t) for name, t in times.items()})
    return out


def inference(seconds: float, repeats: int, cfg: CodecRunConfig, encodec: Any) -> dict[str, float]:
    """Real-time factors (audio seconds per wall second, best of ``repeats``) and soundgen/EnCodec ratios."""
    torch.manual_seed(0)
    codec = build_codec(cfg.model).eval()
    codec.set_bitrate(6.0)
    wav = torch.randn(1, 1, int(seconds * codec.sample_rate)) * 0.1
    wav24 = torch.randn(1, 1, int(seconds * 24000)) * 0.1
    codes = codec.encode(wav)
    with torch.no_grad():
        frames = encodec.encode(wav24)
        fns: dict[str, Callable[[], object]] = {
            "soundgen_encode": lambda: codec.encode(wav),
            "encodec_encode": lambda: encodec.encode(wav24),
            "soundgen_decode": lambda: codec.decode(codes),
            "encodec_decode": lambda: encodec.decode(frames),
        }
        times = interleaved(fns, repeats)
    out = {f"{name}_x_realtime": seconds / times[f"{name}_best_s"] for name in fns}
    out.update({f"{name}_x_realtime_median": seconds / times[f"{name}_median_s"] for name in fns})
    for what in ("encode", "decode"):
        out[f"{what}_ratio"] = out[f"soundgen_{what}_x_realtime"] / out[f"encodec_{what}_x_realtime"]
    return out


def training(steps: int, config: Path, encodec: Any) -> dict[str, float]:
    """Steps/s of soundgen training steps (no discriminator; float32 and bf16 autocast) and of an EnCodec
    forward/backward/update (float32), batch 8 x 1 s."""
    from soundgen.train.codec import CodecTrainer

    out: dict[str, float] = {}
    for precision in ("fp32", "bf16"):
        cfg = load_config(CodecRunConfig, config)
        cfg.train.discriminator = False
        cfg.train.autocast = precision  # type: ignore[assignment]
        trainer = CodecTrainer(cfg, torch.device("cpu"))
        wav = torch.randn(8, 1, cfg.model.sample_rate) * 0.1
        out[f"soundgen_{precision}_steps_per_s"] = 1 / timed(lambda tr=trainer, w=wav: tr.train_step(w), steps)  # type: ignore[misc]
    encodec.train()
    opt = torch.optim.Adam(encodec.parameters(), lr=1e-4)
    wav24 = torch.randn(8, 1, 24000) * 0.1

    def encodec_step() -> None:
        loss = (encodec(wav24) - wav24).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    out["encodec_fp32_steps_per_s"] = 1 / timed(encodec_step, steps)
    encodec.eval()
    out["fp32_ratio"] = out["soundgen_fp32_steps_per_s"] / out["encodec_fp32_steps_per_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "codec" / "default.yaml")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=0, help="also time training steps (0 = skip)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "codec_speed.json")
    args = parser.parse_args()
    encodec = load_encodec()
    results: dict[str, Any] = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "clip_seconds": args.seconds,
        "soundgen_config": str(args.config),
        "peer": "EnCodec 24 kHz (encodec package, random weights, 6 kbps)",
        "threads": {},
    }
    for n in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(n)
        cfg = load_config(CodecRunConfig, args.config)
        entry: dict[str, Any] = {"inference": inference(args.seconds, args.repeats, cfg, encodec)}
        if args.train_steps:
            entry["train"] = training(args.train_steps, args.config, encodec)
        results["threads"][str(n)] = entry
        print(json.dumps({n: entry}, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
