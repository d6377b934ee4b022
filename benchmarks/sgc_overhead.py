"""Container overhead of ``.sgc`` files on short clips: true bitrate against nominal, and where the bytes go.

A ``.sgc`` file carries, besides the codes, a 9-byte prefix, a deflated JSON header, 12 (version 2) or 13
(version 3) bytes of framing per chunk and a 44-byte trailer (docs/sgc_format.md). Those ~150 bytes are fixed, so
they weigh on short clips: this measures every part of real files, written by the codec itself, for clips of
0.5 / 1 / 2 / 5 / 10 s, bit-packed (version 2) and range-coded (version 3, when the codec has entropy tables), and
checks that the parts add up to the file size. It also prices two redundancies of the format (nothing is changed):
the header's full 64-digit weights hash (a 16-digit prefix, as ``entropy_hash`` uses, would identify the weights as
well) and the trailer's frame count and SHA-256 (the header has the frame count; every chunk has a CRC-32).

    python benchmarks/sgc_overhead.py [--model models/default/codec] [--data DATASET] [--bitrates 1.5,3,6]

Clips are windows of the dataset's test clips laid end to end (``--data``; default: a synthetic signal), taken at
``--windows`` offsets and averaged. Writes JSON to ``benchmarks/results/sgc_overhead.json`` (or ``--out``) and
prints a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soundgen.codec.entropy import load_tables
from soundgen.codec.io import load_codec, resolve_model_dir
from soundgen.codec.model import Codec
from soundgen.codec.sgc import container
from soundgen.codec.sgc.files import sgc_header, write_codes

ROOT = Path(__file__).resolve().parents[1]
PREFIX_BYTES = 9  # magic, version, header length
TRAILER_BYTES = 44  # magic, frame count, SHA-256
CHUNK_FRAMING = {2: 12, 3: 13}  # frames, (mode,) payload length, CRC-32
DURATIONS = (0.5, 1.0, 2.0, 5.0, 10.0)


def audio_source(data: Path | None, sample_rate: int, seconds: float) -> np.ndarray:
    """Mono audio ``[T]`` of at least ``seconds``: the dataset's test clips end to end, or a synthetic signal."""
    if data is None:
        rng = np.random.default_rng(0)
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        tone = sum(np.sin(2 * np.pi * 220 * k * t * (1 + 0.01 * np.sin(t))) / k for k in range(1, 6))
        return (0.2 * tone + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
    from soundgen.audio.io import read_audio
    from soundgen.data.manifest import read_manifest

    parts = [read_audio(c.path(data), sample_rate=sample_rate, channels=1).samples[0]
             for c in read_manifest(data, "test")]
    if not parts:
        raise SystemExit(f"{data} has no test clips")
    x = np.concatenate(parts)
    return np.tile(x, math.ceil(seconds * sample_rate / len(x)))


def parts_of(path: Path, version: int, chunk_frames: int, frames: int, payload: int) -> dict[str, int]:
    """The file's bytes by part; the header length is read from the file's prefix."""
    data = path.read_bytes()
    header = int.from_bytes(data[5:9], "little")
    chunks = math.ceil(frames / chunk_frames)
    out = {"prefix": PREFIX_BYTES, "header": header, "framing": chunks * CHUNK_FRAMING[version], "payload": payload,
           "trailer": TRAILER_BYTES}
    assert sum(out.values()) == len(data), f"{path}: parts {out} do not add up to {len(data)} bytes"
    return out


def header_bytes(codec: Codec, k: int, frames: int, length: int, tables: Any, hash_digits: int = 64) -> int:
    """The deflated header's size, computed as the format says; ``hash_digits`` < 64 prices a shorter
    ``model_hash`` (a what-if: the format needs all 64)."""
    h = sgc_header(codec, k, container.DEFAULT_CHUNK_FRAMES, codec.sample_rate, codec.channels)
    fields = {**dataclasses.asdict(h), "frame_count": frames, "length": length}
    fields["model_hash"] = fields["model_hash"][:hash_digits]
    if tables is not None:
        fields["entropy_hash"] = tables.hash_id
    else:
        fields.pop("entropy_hash", None)
    text = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    z = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zdict=container.HEADER_DICT_V3 if tables else container.HEADER_DICT)
    return len(z.compress(text) + z.flush())


def measure(codec: Codec, tables: Any, audio: np.ndarray, bitrates: list[float], windows: int) -> list[dict[str, Any]]:
    """One row per (duration, bitrate, version): mean bytes of each part over ``windows`` clips, and the rates."""
    sr = codec.sample_rate
    rows = []
    codec.set_n_codebooks(codec.max_codebooks)
    versions = [2] + ([3] if tables is not None else [])
    with tempfile.TemporaryDirectory(prefix="sgc-overhead-") as tmp:
        for seconds in DURATIONS:
            n = int(seconds * sr)
            starts = np.linspace(0, len(audio) - n, windows).astype(int)
            acc: dict[tuple[float, int], list[dict[str, int]]] = {}
            for start in starts:
                clip = torch.from_numpy(audio[start : start + n].copy())[None, None]
                codes = codec.encode(clip)[0].numpy()
                for kbps in bitrates:
                    k = codec.config.codebooks_for_bitrate(kbps)
                    for version in versions:
                        t = tables if version == 3 else None
                        r = write_codes(codec, codes[:k], n, Path(tmp) / "x.sgc", tables=t)
                        p = parts_of(Path(tmp) / "x.sgc", version, r.header.chunk_frames, r.header.frame_count,
                                     r.payload_bytes)
                        frames = r.header.frame_count
                        assert header_bytes(codec, k, frames, n, t) == p["header"], "header size recomputed"
                        p["header_short_hash"] = header_bytes(codec, k, frames, n, t, hash_digits=16)
                        acc.setdefault((kbps, version), []).append(p)
            for (kbps, version), found in acc.items():
                mean = {key: float(np.mean([f[key] for f in found])) for key in found[0]}
                total = sum(mean[key] for key in ("prefix", "header", "framing", "payload", "trailer"))
                overhead = total - mean["payload"]
                avoidable = (mean["header"] - mean["header_short_hash"]) + 8 + 28  # hash digits; count; SHA-256
                rows.append({
                    "seconds": seconds, "nominal_kbps": codec.config.bitrate(codec.config.codebooks_for_bitrate(kbps)),
                    "version": version, "bytes": total, **{f"{key}_bytes": v for key, v in mean.items()},
                    "overhead_bytes": overhead, "file_kbps": total * 8 / seconds / 1000,
                    "codes_kbps": mean["payload"] * 8 / seconds / 1000,
                    "overhead_kbps": overhead * 8 / seconds / 1000, "overhead_share": overhead / total,
                    "avoidable_bytes": avoidable, "avoidable_kbps": avoidable * 8 / seconds / 1000,
                })
    return rows


def to_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| clip s | nominal kbps | version | file bytes | of which overhead (header) | file kbps | codes kbps "
        "| overhead kbps (share) | avoidable kbps |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["version"], r["nominal_kbps"], r["seconds"])):
        lines.append(
            f"| {r['seconds']:g} | {r['nominal_kbps']:g} | {r['version']} | {r['bytes']:.0f} "
            f"| {r['overhead_bytes']:.0f} ({r['header_bytes']:.0f}) | {r['file_kbps']:.2f} | {r['codes_kbps']:.2f} "
            f"| {r['overhead_kbps']:.2f} ({100 * r['overhead_share']:.0f} %) | {r['avoidable_kbps']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "default" / "codec"))
    parser.add_argument("--data", type=Path, default=None, help="dataset whose test clips are the audio")
    parser.add_argument("--bitrates", default="1.5,3,6")
    parser.add_argument("--windows", type=int, default=8, help="clips per duration (default 8)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sgc_overhead.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    codec = load_codec(args.model).eval()
    tables = load_tables(resolve_model_dir(args.model), codec.model_hash)
    audio = audio_source(args.data, codec.sample_rate, max(DURATIONS) * 2)
    with torch.no_grad():
        rows = measure(codec, tables, audio, [float(b) for b in args.bitrates.split(",")], args.windows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    facts = {"model": args.model, "model_hash": codec.model_hash, "data": str(args.data), "windows": args.windows,
             "entropy_tables": tables.hash_id if tables is not None else None, "rows": rows}
    args.out.write_text(json.dumps(facts, indent=2))
    print(to_markdown(rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
