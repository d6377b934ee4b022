"""How much noise a codec lays under tonal sounds: a quality probe, beside the codecs it compares in one run.

A note's harmonics leave the spectrum quiet between them; a decoder trained on a 64-band mel loss fills that space
with broadband noise, which the mel distance hardly sees and a listener hears as "noise, no pitch". For each
codec, at the codebooks the LM writes (4 = 2 kbps), this round-trips the test split's clips of the given
categories (default: every ``music/`` category but drums) and reports :func:`soundgen.eval.metrics.floor_rise_db`
(the 25th percentile of the 1-4 kHz STFT levels, decoded minus original, dB; 0 = no noise added) beside the mel
distance, per category and overall.

    python benchmarks/codec_noise_floor.py --models models/default/codec RUN/export ... --data CORPUS
        [--codebooks 4] [--clips-per-category 6] [--seconds 4] [--out JSON]

Writes JSON to ``benchmarks/results/codec_noise_floor.json`` (or ``--out``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from soundgen.codec.io import codec_dir_in, load_codec, resolve_model_dir
from soundgen.eval.metrics import floor_rise_db, mel_distance

ROOT = Path(__file__).resolve().parents[1]


def _clips(data: Path, prefix: str, per_category: int, seconds: float) -> dict[str, list[np.ndarray]]:
    rows = [json.loads(line) for line in (data / "test" / "manifest.jsonl").read_text().splitlines() if line]
    out: dict[str, list[np.ndarray]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["id"]):
        cat = row["category"]
        if not cat.startswith(prefix) or cat.endswith("drums") or len(out[cat]) >= per_category or row["duration"] < 1:
            continue
        audio, sr = sf.read(data / row["location"], dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)[: int(sr * seconds)]
        out[cat].append(audio)
    return dict(out)


def _summary(floors: list[float], mels: list[float]) -> dict[str, float]:
    return {"floor_rise_db": statistics.mean(floors), "mel": statistics.mean(mels), "clips": len(floors)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", type=Path, required=True, help="codec (or model) directories")
    p.add_argument("--data", type=Path, required=True, help="dataset with a test split (16 kHz clips)")
    p.add_argument("--prefix", default="music/", help="category prefix (default music/; drums are left out)")
    p.add_argument("--codebooks", type=int, default=4)
    p.add_argument("--clips-per-category", type=int, default=6)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "codec_noise_floor.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    clips = _clips(args.data, args.prefix, args.clips_per_category, args.seconds)
    if not clips:
        raise SystemExit(f"no test clips of categories {args.prefix}* in {args.data}")
    results: dict[str, dict[str, dict[str, float]]] = {}
    for model in args.models:
        codec = load_codec(resolve_model_dir(codec_dir_in(model)))
        codec.set_n_codebooks(args.codebooks)
        per_cat: dict[str, dict[str, float]] = {}
        floors_all, mels_all = [], []
        for cat, audios in clips.items():
            floors, mels = [], []
            for audio in audios:
                with torch.no_grad():
                    est = codec.decode(codec.encode(torch.from_numpy(audio)[None, None]))[0, 0].numpy()
                est = est[: len(audio)]
                floors.append(floor_rise_db(audio, est, codec.sample_rate))
                mels.append(mel_distance(audio, est, codec.sample_rate))
            per_cat[cat] = _summary(floors, mels)
            floors_all += floors
            mels_all += mels
        per_cat["all"] = _summary(floors_all, mels_all)
        results[str(model)] = per_cat
    report = {"data": str(args.data), "codebooks": args.codebooks, "seconds": args.seconds, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    cats = [*sorted(clips), "all"]
    print(f"| category (clips) | {' | '.join(f'{m} floor dB / mel' for m in results)} |")
    print(f"|---|{'---|' * len(results)}")
    for cat in cats:
        cells = [f"{r[cat]['floor_rise_db']:+.1f} / {r[cat]['mel']:.3f}" for r in results.values()]
        print(f"| {cat} ({next(iter(results.values()))[cat]['clips']}) | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
