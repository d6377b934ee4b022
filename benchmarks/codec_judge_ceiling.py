"""What a codec leaves for a listener to recognise: a classifier on held-out real clips, as they are and after a
round trip through each codec, per category, beside the codecs it compares in one run; and a contact sheet.

Prompt adherence can never beat the classifier's accuracy on real clips through the codec the LM writes for
(``eval generation`` reports that figure for one model; this compares codecs, at several codebook counts, before
any LM is trained on them). The classifier should be the project's kept judge (models/eval-classifier); it was
trained on clean clips and their round trips through the bundled codec, which favours that codec: read a gain of
another codec as a lower bound.

    python benchmarks/codec_judge_ceiling.py --models models/default/codec RUN/export ... --data CORPUS \
        [--classifier models/eval-classifier] [--codebooks 4,12] [--per-label 10] [--sheet PNG] [--out JSON]

The contact sheet (``--sheet``) shows the spectrogram of one test clip of each ``--sheet-categories`` category as
it is and through every codec at the first codebook count.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from soundgen.codec.io import codec_dir_in, load_codec, resolve_model_dir
from soundgen.eval.classifier import codec_round_trips, load_classifier, load_split

ROOT = Path(__file__).resolve().parents[1]
SHEET = "music/brass,music/strings,music/woodwind,music/piano,impact/metal,footsteps,explosion,alarm"


def _accuracy(classifier: object, labels: list[str], clips: list[np.ndarray], truth: list[str]) -> dict[str, float]:
    per: dict[str, list[int]] = {}
    for audio, label in zip(clips, truth, strict=True):
        row = per.setdefault(label, [0, 0])
        row[1] += 1
        row[0] += labels[int(np.argmax(classifier.analyse(audio)[0]))] == label  # type: ignore[attr-defined]
    out = {"all": sum(r[0] for r in per.values()) / max(1, sum(r[1] for r in per.values()))}
    out.update({k: r[0] / r[1] for k, r in sorted(per.items())})
    return out


def _spectrogram(x: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, (0, 1024)), 1024)[::128] * np.hanning(1024)
    return 20 * np.log10(np.abs(np.fft.rfft(frames, axis=-1)).T + 1e-6)


def _sheet(path: Path, rows: list[tuple[str, list[tuple[str, np.ndarray]]]], rate: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = len(rows[0][1])
    fig, axes = plt.subplots(len(rows), cols, figsize=(4.2 * cols, 2.3 * len(rows)), squeeze=False)
    for i, (label, panels) in enumerate(rows):
        for j, (name, audio) in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(_spectrogram(audio), origin="lower", aspect="auto", vmin=-80, vmax=20,
                      extent=(0, len(audio) / rate, 0, rate / 2))
            ax.set_title(f"{label}: {name}", fontsize=8)
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=60)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", type=Path, required=True, help="codec (or model) directories")
    p.add_argument("--data", type=Path, required=True, help="dataset with a test split")
    p.add_argument("--classifier", type=Path, default=ROOT / "models" / "eval-classifier")
    p.add_argument("--codebooks", default="4,12", help="comma-separated codebook counts (default 4,12)")
    p.add_argument("--per-label", type=int, default=10, help="test clips per category (default 10)")
    p.add_argument("--seed", type=int, default=1001)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sheet", type=Path, default=None, help="write a contact sheet PNG here")
    p.add_argument("--sheet-categories", default=SHEET)
    p.add_argument("--sheet-seconds", type=float, default=3.0)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "codec_judge_ceiling.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    classifier, _ = load_classifier(args.classifier)
    labels = list(classifier.cfg.labels)
    rate = classifier.cfg.sample_rate
    clips, truth = load_split(args.data, "test", labels, rate, args.per_label, np.random.default_rng(args.seed))
    if not clips:
        raise SystemExit(f"no test clips of the classifier's categories in {args.data}")
    counts = [int(k) for k in args.codebooks.split(",")]
    results: dict[str, dict[str, float]] = {"real": _accuracy(classifier, labels, clips, truth)}
    codecs = {str(m): load_codec(resolve_model_dir(codec_dir_in(m))) for m in args.models}
    for name, codec in codecs.items():
        for k in counts:
            coded = codec_round_trips(codec, clips, rate, [k], 0, "ceiling")
            results[f"{name} @ {k}"] = _accuracy(classifier, labels, coded, truth)
    report = {"data": str(args.data), "classifier": str(args.classifier), "clips": len(clips),
              "per_label": args.per_label, "seed": args.seed, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"| category | {' | '.join(results)} |")
    print(f"|---|{'---:|' * len(results)}")
    for cat in results["real"]:
        cells = [f"{r[cat]:.2f}" if cat in r else "-" for r in results.values()]
        print(f"| {cat} | {' | '.join(cells)} |")
    if args.sheet:
        cats = args.sheet_categories.split(",")
        picked, chosen = load_split(args.data, "test", cats, rate, 1, np.random.default_rng(args.seed + 4))
        keep = int(args.sheet_seconds * rate)
        picked = [c[:keep] for c in picked]
        coded_by = {name: codec_round_trips(codec, picked, rate, [counts[0]], 0, "sheet")
                    for name, codec in codecs.items()}
        rows = [(label, [("real", audio)] + [(f"{n} @ {counts[0]}", coded_by[n][i]) for n in codecs])
                for i, (label, audio) in enumerate(zip(chosen, picked, strict=True))]
        _sheet(args.sheet, rows, rate)
        print(f"wrote {args.sheet}")


if __name__ == "__main__":
    main()
