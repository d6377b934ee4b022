"""LM training speed: steps per second at batch 8 x 250 frames for a d256 x 6 layer model (target >= 2).

Times soundgen's LM (delay pattern, K=4 codebooks of 1024, hashed text encoder) beside a peer of the same size
built from PyTorch's reference ``nn.TransformerDecoder`` (pre-norm, causal self-attention + cross-attention)
with the same embeddings, heads and loss, in the same run. JSON out.

It also measures this machine's ceiling for such a step (``roofline``): every matrix product (mm/addmm/bmm)
one soundgen training step runs (forward, backward, optimizer) is recorded with its shapes and strides, then each
is timed on its own, on fresh tensors, at the same thread count. Their sum is the time the step would take if it
did nothing but its matrix products, each as fast as it runs alone; ``1 / sum`` is a step rate no implementation
of this model in float32 can beat here (attention, softmax, norms and the optimizer only add to it). The FLOPs of
those products and the GFLOP/s they reach are reported beside it.

Both models train on the same batch with the same AdamW (``--optimizer``: the one soundgen's training builds, by
default); their steps alternate and each rate is 1 / the median step time, after two warm-up steps.

    python benchmarks/lm_train_speed.py [--threads 2] [--steps 5] [--out benchmarks/results/lm_train_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(kind: str, d: int, layers: int, heads: int) -> tuple[object, object]:
    import torch
    from torch import nn

    from soundgen.lm.conditioners import build_conditioner
    from soundgen.lm.config import LMConfig, TextEncoderConfig
    from soundgen.lm.model import LMModel

    cfg = LMConfig(
        n_codebooks=4,
        codebook_size=1024,
        d_model=d,
        n_layers=layers,
        n_heads=heads,
        max_frames=250,
        text=TextEncoderConfig(kind="hashed", dim=d),
    )
    cond = build_conditioner(cfg.text)
    lm = LMModel(cfg, cond.dim)
    if kind == "peer":
        # Same embeddings, heads and loss; the blocks replaced by torch's reference decoder.
        decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True), layers
        )

        class PeerBlocks(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.decoder = decoder

            def forward(self, x: torch.Tensor, memory: torch.Tensor, bias: torch.Tensor, *_: object) -> torch.Tensor:
                mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
                pad = bias[:, 0, 0] < 0
                return self.decoder(x, memory, tgt_mask=mask, tgt_is_causal=True, memory_key_padding_mask=pad)

        lm.blocks = nn.ModuleList([PeerBlocks()])
    return lm, cond


def training_step(kind: str, args: argparse.Namespace) -> tuple[Callable[[], float], int]:
    """A function running one training step of ``kind`` (the model's first step already taken), and the number
    of trained parameters."""
    import torch

    torch.manual_seed(0)
    lm, cond = build(kind, args.d_model, args.layers, args.heads)
    params = [*lm.parameters(), *cond.parameters()]  # type: ignore[attr-defined]
    if args.optimizer == "training":  # the AdamW that soundgen's training builds
        from soundgen.lm.config import LMTrainParams
        from soundgen.train.lm import build_optimizer

        opt = build_optimizer(params, LMTrainParams(lr=1e-4), torch.device("cpu"))
    else:  # torch's default AdamW (a per-tensor loop on a CPU)
        opt = torch.optim.AdamW(params, lr=1e-4)
    codes = torch.randint(0, 1024, (args.batch, 4, args.frames))
    captions = [f"a sound number {i}" for i in range(args.batch)]

    def step() -> float:
        result = lm.compute_loss(codes, lm.memory(cond.encode(captions)))  # type: ignore[attr-defined]
        opt.zero_grad()
        result.loss.backward()
        opt.step()
        return float(result.loss.detach())

    step()  # warm-up (and the optimizer's state)
    return step, sum(p.numel() for p in params)


def time_training(args: argparse.Namespace) -> list[dict[str, object]]:
    """Steps per second of soundgen and of the peer: their steps alternate (a load that comes and goes on a shared
    machine hits both alike) and each rate is 1 / the median step time."""
    kinds = ("soundgen", "peer")
    steps = {kind: training_step(kind, args) for kind in kinds}
    for kind in kinds:
        steps[kind][0]()  # a second warm-up: the allocator's heap has grown to a step's needs
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(args.steps):
        for kind in kinds:
            started = time.perf_counter()
            steps[kind][0]()
            times[kind].append(time.perf_counter() - started)
    return [
        {
            "model": kind,
            "steps_per_second": round(1.0 / statistics.median(times[kind]), 3),
            "step_seconds": [round(t, 3) for t in times[kind]],
            "parameters_m": round(steps[kind][1] / 1e6, 2),
        }
        for kind in kinds
    ]


GemmCall = tuple[str, tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]
"""A recorded matrix product: the aten op's name, its tensor arguments' shapes and strides."""


def record_gemms(step: Callable[[], float]) -> Counter[GemmCall]:
    """The matrix products one call of ``step`` runs, with how many times each (op, shapes, strides) occurs."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    ops = {
        torch.ops.aten.mm.default: "mm",
        torch.ops.aten.addmm.default: "addmm",
        torch.ops.aten.bmm.default: "bmm",
        torch.ops.aten.baddbmm.default: "baddbmm",
    }
    calls: Counter[GemmCall] = Counter()

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            name = ops.get(func)
            if name is not None:
                tensors = [a for a in args if isinstance(a, torch.Tensor)]
                calls[(name, tuple(tuple(t.shape) for t in tensors), tuple(t.stride() for t in tensors))] += 1
            return func(*args, **(kwargs or {}))

    with Recorder():
        step()
    return calls


def gemm_flops(call: GemmCall) -> int:
    """Multiply-adds x 2 of one recorded product."""
    name, shapes, _ = call
    a, b = shapes[-2], shapes[-1]
    batch = a[0] if name in ("bmm", "baddbmm") else 1
    m, k = a[-2], a[-1]
    return 2 * batch * m * k * b[-1]


def time_gemm(call: GemmCall, repeats: int) -> float:
    """Median seconds of one recorded product, run alone on fresh tensors with its shapes and strides."""
    import torch

    name, shapes, strides = call
    tensors = [torch.empty_strided(sh, st).normal_() for sh, st in zip(shapes, strides, strict=True)]
    fn = getattr(torch, name)
    for _ in range(2):
        fn(*tensors)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn(*tensors)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def roofline(args: argparse.Namespace) -> dict[str, object]:
    """The step rate this machine allows for soundgen's training step if it did nothing but its matrix products."""
    step, _ = training_step("soundgen", args)
    calls = record_gemms(step)
    seconds = sum(count * time_gemm(call, args.gemm_repeats) for call, count in calls.items())
    flops = sum(count * gemm_flops(call) for call, count in calls.items())
    return {
        "gemm_calls_per_step": sum(calls.values()),
        "distinct_gemm_shapes": len(calls),
        "gemm_gflop_per_step": round(flops / 1e9, 2),
        "gemm_only_seconds_per_step": round(seconds, 4),
        "gemm_gflop_per_second_alone": round(flops / seconds / 1e9, 1),
        "ceiling_steps_per_second": round(1.0 / seconds, 3),
        "note": "each matrix product of one step timed alone at the same thread count; the step also runs "
        "attention, softmax, norms and AdamW, so no float32 implementation here can reach this rate",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--frames", type=int, default=250)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument(
        "--optimizer",
        choices=("training", "plain"),
        default="training",
        help="AdamW as soundgen's training builds it (fused on CPU), or torch's default (for older checkouts)",
    )
    p.add_argument("--gemm-repeats", type=int, default=7, help="timings per recorded matrix product (median)")
    p.add_argument("--no-roofline", action="store_true", help="skip the ceiling measurement")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "lm_train_speed.json")
    args = p.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    ours, peer = time_training(args)
    ceiling = None if args.no_roofline else roofline(args)
    report = {
        "benchmark": "lm_train_speed",
        "setup": f"batch {args.batch} x {args.frames} frames, d{args.d_model} x {args.layers} layers, "
        f"{args.threads} threads, {args.optimizer} AdamW, CPU, fp32 "
        "(bf16 autocast is far slower on CPUs without native bf16)",
        "load_average_1min_at_start": round(load, 2),
        "soundgen": ours,
        "peer_torch_transformer_decoder": peer,
        "ratio_vs_peer": round(float(ours["steps_per_second"]) / float(peer["steps_per_second"]), 2),  # type: ignore[arg-type]
        "target_steps_per_second": 2.0,
    }
    if ceiling is not None:
        report["roofline"] = ceiling
        rate, top = ours["steps_per_second"], ceiling["ceiling_steps_per_second"]
        assert isinstance(rate, float) and isinstance(top, float)
        report["share_of_ceiling"] = round(rate / top, 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
