"""LM training speed: steps per second at batch 8 x 250 frames for a d256 x 6 layer model (target >= 2).

Times soundgen's LM (delay pattern, K=4 codebooks of 1024, hashed text encoder) beside a peer of the same size
built from PyTorch's reference ``nn.TransformerDecoder`` (pre-norm, causal self-attention + cross-attention)
with the same embeddings, heads and loss, in the same run. JSON out.

    python benchmarks/lm_train_speed.py [--threads 2] [--steps 5] [--out benchmarks/results/lm_train_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
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


def time_training(kind: str, args: argparse.Namespace) -> dict[str, object]:
    import torch

    torch.manual_seed(0)
    lm, cond = build(kind, args.d_model, args.layers, args.heads)
    params = [*lm.parameters(), *cond.parameters()]  # type: ignore[attr-defined]
    opt = torch.optim.AdamW(params, lr=1e-4)
    codes = torch.randint(0, 1024, (args.batch, 4, args.frames))
    captions = [f"a sound number {i}" for i in range(args.batch)]

    def step() -> float:
        result = lm.compute_loss(codes, lm.memory(cond.encode(captions)))  # type: ignore[attr-defined]
        opt.zero_grad()
        result.loss.backward()
        opt.step()
        return float(result.loss.detach())

    step()  # warm-up
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    rate = args.steps / (time.perf_counter() - started)
    return {
        "model": kind,
        "steps_per_second": round(rate, 3),
        "parameters_m": round(sum(p.numel() for p in params) / 1e6, 2),
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
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "lm_train_speed.json")
    args = p.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    ours = time_training("soundgen", args)
    peer = time_training("peer", args)
    report = {
        "benchmark": "lm_train_speed",
        "setup": f"batch {args.batch} x {args.frames} frames, d{args.d_model} x {args.layers} layers, "
        f"{args.threads} threads, CPU, fp32 (bf16 autocast is far slower on CPUs without native bf16)",
        "load_average_1min_at_start": round(load, 2),
        "soundgen": ours,
        "peer_torch_transformer_decoder": peer,
        "ratio_vs_peer": round(float(ours["steps_per_second"]) / float(peer["steps_per_second"]), 2),  # type: ignore[arg-type]
        "target_steps_per_second": 2.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
