"""Codec speed: encode/decode real-time factor (and training steps/s) beside EnCodec's 24 kHz model.

Every soundgen config (by default ``configs/codec/default.yaml``, the SEANet decoder, and ``fourier.yaml``, the
Fourier-head decoder) and EnCodec run in the same process on the same machine, alternating, with random weights
(speed does not depend on the weights). The JSON gives each config's ratio to EnCodec and to the first config.
EnCodec comes from the ``encodec`` package (``pip install encodec einops``); its modules import torchaudio at the
top although the model never uses it, so a stand-in module is placed in ``sys.modules`` when torchaudio is absent.

    python benchmarks/codec_speed.py [--config A.yaml --config B.yaml] [--threads 1,2] [--seconds 10] \
        [--repeats 5] [--train-steps 5]

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
    stubbed = []
    try:
        import torchaudio  # noqa: F401
    except ImportError:
        stub = types.ModuleType("torchaudio")
        stub.transforms = types.ModuleType("torchaudio.transforms")  # type: ignore[attr-defined]
        stubbed = ["torchaudio", "torchaudio.transforms"]
        sys.modules["torchaudio"] = stub
        sys.modules["torchaudio.transforms"] = stub.transforms  # type: ignore[attr-defined]
    try:
        from encodec import EncodecModel
    finally:
        # encodec's modules keep the stand-in they imported; nothing else in this process may find it (a later
        # `import torchaudio` elsewhere, e.g. by transformers' optional checks, must fail as it would without it)
        for name in stubbed:
            sys.modules.pop(name, None)

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


def inference(seconds: float, repeats: int, cfgs: dict[str, CodecRunConfig], encodec: Any) -> dict[str, Any]:
    """Real-time factors (audio seconds per wall second, best and median of ``repeats``) of every soundgen config
    and of EnCodec, all timed alternately; each config's ratios to EnCodec and to the first config."""
    wav24 = torch.randn(1, 1, int(seconds * 24000)) * 0.1
    fns: dict[str, Callable[[], object]] = {}
    with torch.no_grad():
        frames = encodec.encode(wav24)
        fns["encodec_encode"] = lambda: encodec.encode(wav24)
        fns["encodec_decode"] = lambda: encodec.decode(frames)
        for name, cfg in cfgs.items():
            torch.manual_seed(0)
            codec = build_codec(cfg.model).eval()
            codec.set_bitrate(6.0)
            wav = torch.randn(1, 1, int(seconds * codec.sample_rate)) * 0.1
            codes = codec.encode(wav)
            fns[f"{name}_encode"] = lambda c=codec, w=wav: c.encode(w)  # type: ignore[misc]
            fns[f"{name}_decode"] = lambda c=codec, k=codes: c.decode(k)  # type: ignore[misc]
        times = interleaved(fns, repeats)
    rt = {name: seconds / times[f"{name}_best_s"] for name in fns}
    median = {name: seconds / times[f"{name}_median_s"] for name in fns}
    out: dict[str, Any] = {f"encodec_{w}_x_realtime": rt[f"encodec_{w}"] for w in ("encode", "decode")}
    out.update({f"encodec_{w}_x_realtime_median": median[f"encodec_{w}"] for w in ("encode", "decode")})
    first = next(iter(cfgs))
    out["configs"] = {}
    for name, cfg in cfgs.items():
        entry: dict[str, Any] = {"decoder": cfg.model.decoder}
        for w in ("encode", "decode"):
            entry[f"{w}_x_realtime"] = rt[f"{name}_{w}"]
            entry[f"{w}_x_realtime_median"] = median[f"{name}_{w}"]
            entry[f"{w}_ratio_to_encodec"] = rt[f"{name}_{w}"] / rt[f"encodec_{w}"]
            entry[f"{w}_ratio_to_{first}"] = rt[f"{name}_{w}"] / rt[f"{first}_{w}"]
        out["configs"][name] = entry
    return out


def training(steps: int, configs: dict[str, Path], encodec: Any) -> dict[str, float]:
    """Steps/s of each config's training steps (no discriminator; float32 and bf16 autocast) and of an EnCodec
    forward/backward/update (float32), batch 8 x 1 s."""
    from soundgen.train.codec import CodecTrainer

    out: dict[str, float] = {}
    for name, config in configs.items():
        for precision in ("fp32", "bf16"):
            cfg = load_config(CodecRunConfig, config)
            cfg.train.discriminator = False
            cfg.train.autocast = precision  # type: ignore[assignment]
            trainer = CodecTrainer(cfg, torch.device("cpu"))
            wav = torch.randn(8, 1, cfg.model.sample_rate) * 0.1
            step = lambda tr=trainer, w=wav: tr.train_step(w)  # type: ignore[misc]  # noqa: E731
            out[f"{name}_{precision}_steps_per_s"] = 1 / timed(step, steps)
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
    for name in configs:
        out[f"{name}_fp32_ratio_to_encodec"] = out[f"{name}_fp32_steps_per_s"] / out["encodec_fp32_steps_per_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, action="append", default=None,
                        help="a soundgen codec config; repeat for several (default: default.yaml and fourier.yaml, "
                        "the SEANet and the Fourier-head decoder)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=0, help="also time training steps (0 = skip)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "codec_speed.json")
    args = parser.parse_args()
    paths: list[Path] = args.config or [ROOT / "configs" / "codec" / n for n in ("default.yaml", "fourier.yaml")]
    configs = {p.stem: p for p in paths}
    if len(configs) != len(paths):
        parser.error("configs need different file names (their stems name them in the results)")
    encodec = load_encodec()
    results: dict[str, Any] = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "clip_seconds": args.seconds,
        "repeats": args.repeats,
        "soundgen_configs": {name: str(p) for name, p in configs.items()},
        "peer": "EnCodec 24 kHz (encodec package, random weights, 6 kbps)",
        "threads": {},
    }
    for n in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(n)
        cfgs = {name: load_config(CodecRunConfig, p) for name, p in configs.items()}
        entry: dict[str, Any] = {"inference": inference(args.seconds, args.repeats, cfgs, encodec)}
        if args.train_steps:
            entry["train"] = training(args.train_steps, configs, encodec)
        results["threads"][str(n)] = entry
        print(json.dumps({n: entry}, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
