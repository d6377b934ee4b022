"""Do a codec's quantized latents still hold a sound's fine spectrum? A probe, trained for a fixed wall-clock time.

A small non-causal ConvNeXt head learns to predict the log magnitude of a fine STFT of the original audio (640
points, hop 80: 25 Hz bins, 4 sub-frames per code frame) from the codec's quantized latents at ``--codebooks``;
the codec stays frozen. If partials the decoder drops come back in the probe, the decoder is the limit; if they
do not, the encoder has not kept them and no decoder trained on these codes can make them. The loss printed (L1
between log magnitudes plus spectral convergence, on fixed test crops) compares codecs, or a codec with the
spectral codec's own decoder at the same wall-clock time (``soundgen codec train --config
configs/codec/spectral.yaml``'s ``loss/logmag + loss/sc``).

    python benchmarks/codec_latent_probe.py --model models/default/codec --data CORPUS [--seconds 600] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from soundgen.codec.fourier import ConvNeXtBlock
from soundgen.codec.io import codec_dir_in, load_codec, resolve_model_dir
from soundgen.eval.classifier import load_split

ROOT = Path(__file__).resolve().parents[1]
N_FFT, HOP, SUB, CROP = 640, 80, 4, 32000


class Probe(nn.Module):
    def __init__(self, latent_dim: int, dim: int = 256, blocks: int = 6) -> None:
        super().__init__()
        self.embed = nn.Conv1d(latent_dim, dim, 3, padding=1)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(dim) for _ in range(blocks)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, SUB * (N_FFT // 2 + 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        y = self.head(self.norm(self.blocks(self.embed(z)).transpose(1, 2)))  # [B, F, SUB * bins]
        b, f, _ = y.shape
        return y.reshape(b, f * SUB, -1).transpose(1, 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, required=True, help="codec (or model) directory")
    p.add_argument("--data", type=Path, required=True, help="dataset with train and test splits")
    p.add_argument("--codebooks", type=int, default=4)
    p.add_argument("--per-label", type=int, default=40, help="training clips per category (default 40)")
    p.add_argument("--seconds", type=float, default=600.0, help="training wall-clock time (default 600)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "codec_latent_probe.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    codec = load_codec(resolve_model_dir(codec_dir_in(args.model))).float().eval()
    codec.set_n_codebooks(args.codebooks)
    window = torch.hann_window(N_FFT)

    def magnitude(x: torch.Tensor) -> torch.Tensor:
        s = torch.stft(x, N_FFT, HOP, window=window, center=True, return_complex=True).abs()
        return s[..., : x.shape[-1] // HOP]

    def crops(split: str, per_label: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng(seed)
        clips, _ = load_split(args.data, split, None, codec.sample_rate, per_label, rng)
        out = []
        for c in clips:
            c = np.pad(c, (0, max(0, CROP - len(c))))
            start = int(rng.integers(0, len(c) - CROP + 1))
            out.append(c[start : start + CROP])
        audio = torch.from_numpy(np.stack(out).astype(np.float32))
        with torch.no_grad():
            latents = torch.cat([codec.quantizer.decode(codec.encode(audio[i : i + 32, None]))
                                 for i in range(0, len(audio), 32)])
        return latents, audio

    z_train, x_train = crops("train", args.per_label, 0)
    z_test, x_test = crops("test", 3, 1)
    probe = Probe(z_train.shape[1])
    opt = torch.optim.AdamW(probe.parameters(), 1e-3)

    def loss(pred: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        m = magnitude(x)
        sc = torch.linalg.vector_norm(torch.exp(pred) - m) / torch.linalg.vector_norm(m).clamp(min=1e-6)
        return (pred - torch.log(m + 1e-4)).abs().mean() + sc

    curve, start, step = [], time.time(), 0
    frames = z_train.shape[-1]
    while time.time() - start < args.seconds:
        idx = torch.randint(0, len(z_train), (16,))
        off = int(torch.randint(0, frames - 50 + 1, ()))
        batch = loss(probe(z_train[idx, :, off : off + 50]), x_train[idx, off * 320 : (off + 50) * 320])
        opt.zero_grad()
        batch.backward()
        opt.step()
        step += 1
        if step % 200 == 0:
            with torch.no_grad():
                curve.append({"step": step, "seconds": round(time.time() - start), "test": float(loss(probe(z_test),
                                                                                                      x_test))})
            print(curve[-1], flush=True)
    report = {"model": str(args.model), "data": str(args.data), "codebooks": args.codebooks,
              "train_crops": len(z_train), "test_crops": len(z_test), "curve": curve}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
