"""Can a codec hold a steady tone? A quality probe, beside the codecs it compares in one run.

A note is a few steady partials. A codec whose frames do not join up in phase modulates each partial at its frame
rate (50 Hz) and multiples, which spreads the partial into sidebands that fill the space between harmonics: the
noise under every note (docs/codec_recipe.md). For each codec this sends steady sines (default 440, 1000 and
2500 Hz, 3 s at -6 dBFS) through its encoder and decoder, unquantized and at the codebooks the LM writes (4 =
2 kbps), and reports :func:`soundgen.eval.metrics.tone_modulation` of the middle 2 s: the rms of the envelope
relative to its mean and the rms of the phase in radians (0 and 0 for a steady tone), beside the level of the
strongest spur 20-400 Hz away from the tone (dB relative to the tone) and where the three strongest lie.

    python benchmarks/codec_tone_probe.py --models models/default/codec RUN/export ... [--codebooks 4]
        [--tones 440,1000,2500] [--out JSON]

Writes JSON to ``benchmarks/results/codec_tone_probe.json`` (or ``--out``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundgen.codec.io import codec_dir_in, load_codec, resolve_model_dir
from soundgen.eval.metrics import tone_modulation

ROOT = Path(__file__).resolve().parents[1]


def _spurs(y: np.ndarray, freq: float, rate: int) -> tuple[float, list[float]]:
    """The strongest spectral line 20-400 Hz either side of ``freq``, dB relative to the tone's, and the offsets
    from the tone (Hz, rounded to 5) of the three strongest such lines: a modulation at rate r puts lines at +-r."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / rate)
    tone = spec[np.abs(freqs - freq) <= 5].max()
    near = np.flatnonzero((np.abs(freqs - freq) >= 20) & (np.abs(freqs - freq) <= 400))
    level = float(20 * np.log10(max(spec[near].max(), 1e-12) / max(tone, 1e-12)))
    offsets: list[float] = []
    for i in near[np.argsort(spec[near])[::-1]]:
        off = float(5 * round((freqs[i] - freq) / 5))
        if all(abs(off - o) > 10 for o in offsets):
            offsets.append(off)
        if len(offsets) == 3:
            break
    return level, offsets


def probe(codec: Any, tones: list[float], codebooks: int) -> dict[str, dict[str, Any]]:
    """``{"<tone> Hz unquantized" | "<tone> Hz <k> codebooks": {amplitude_rms, phase_rms, spur_db,
    spur_offsets_hz}}``."""
    rate = int(codec.sample_rate)
    t = np.arange(3 * rate) / rate
    keep = slice(rate // 2, rate // 2 + 2 * rate)
    rows: dict[str, dict[str, Any]] = {}
    for freq in tones:
        x = torch.from_numpy((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32))[None, None]
        with torch.no_grad():
            outs = {"unquantized": codec.decoder(codec.encoder(x))}
            codec.set_n_codebooks(codebooks)
            outs[f"{codebooks} codebooks"] = codec.decode(codec.encode(x))
        for name, y in outs.items():
            seg = y[0, 0, : x.shape[-1]].float().numpy()[keep]
            amp, phase = tone_modulation(seg, freq, rate)
            level, offsets = _spurs(seg, freq, rate)
            rows[f"{freq:g} Hz {name}"] = {"amplitude_rms": round(amp, 4), "phase_rms": round(phase, 4),
                                           "spur_db": round(level, 1), "spur_offsets_hz": offsets}
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", type=Path, required=True, help="codec (or model) directories")
    p.add_argument("--codebooks", type=int, default=4)
    p.add_argument("--tones", default="440,1000,2500", help="comma-separated frequencies in Hz")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "codec_tone_probe.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    tones = [float(f) for f in args.tones.split(",") if f.strip()]
    results = {}
    for model in args.models:
        codec = load_codec(resolve_model_dir(codec_dir_in(model))).float().eval()
        results[str(model)] = probe(codec, tones, args.codebooks)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"codebooks": args.codebooks, "tones": tones, "results": results}, indent=2) + "\n")
    names = list(results)
    print(f"| tone | {' | '.join(f'{m}: amplitude / phase rad / spur dB' for m in names)} |")
    print(f"|---|{'---|' * len(names)}")
    for row in next(iter(results.values())):
        cells = [f"{r[row]['amplitude_rms']:.3f} / {r[row]['phase_rms']:.2f} / {r[row]['spur_db']:+.0f}"
                 for r in results.values()]
        print(f"| {row} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
