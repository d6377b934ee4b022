"""Entropy coding of .sgc files: the saving in kbps on held-out clips per bitrate, and the coder's speed.

Tables are fitted on a token cache's train split (its valid split chooses their shapes) and measured on its test
split, which the fit never sees. Each held-out clip is written as a real ``.sgc`` file both ways, bit-packed
(version 2) and range-coded (version 3), at every bitrate, so the file figures include the container. Peers in the
same run: the bit-packed file compressed by LZMA (what a general-purpose compressor finds in the codes) and tables
without contexts (one per codebook: what the previous-frame and coarser-codebook contexts add).

    python benchmarks/entropy_saving.py --tokens TOKENS_DIR [--bitrates 1.5,3,6] [--max-contexts 16]

The token cache must hold all the codebooks of the highest bitrate (``soundgen data tokenize DATASET --codec
MODEL_DIR --out TOKENS_DIR --n-codebooks 12``). Writes ``benchmarks/results/entropy_saving.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import lzma
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from soundgen.audio.entropy import EntropyTables, decode_codes, encode_codes
from soundgen.codec.entropy import code_bits, fit_tables
from soundgen.codec.sgc.container import SgcHeader, bits_for, write_sgc
from soundgen.data.tokens import TokenCache, TokenMeta, read_meta

ROOT = Path(__file__).resolve().parents[1]


def load(tokens: Path, split: str) -> list[np.ndarray]:
    cache = TokenCache(tokens, split)
    return [np.asarray(cache.codes(i), dtype=np.int64) for i in range(len(cache))]


def file_sizes(clips: list[np.ndarray], k: int, tables: EntropyTables | None, meta: TokenMeta) -> tuple[int, int]:
    """Total bytes of the clips' .sgc files at ``k`` codebooks, and of those files compressed by LZMA. The header
    is the one ``codec encode`` writes for a mono file at the codec's rate (the real weights hash included)."""
    total = xz = 0
    rate, hop = meta.sample_rate, round(meta.sample_rate / meta.frame_rate)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.sgc"
        for codes in clips:
            header = SgcHeader("soundgen-default", meta.codec_hash, rate, 1, hop, k, 1024, bits_for(1024), 0, 0)
            header = dataclasses.replace(header, original_sample_rate=rate, original_channels=1)
            write_sgc(path, header, codes[:k], length=codes.shape[1] * hop, tables=tables)
            data = path.read_bytes()
            total += len(data)
            xz += len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    return total, xz


def speed(tables: EntropyTables, clips: list[np.ndarray], k: int, frames: int = 500) -> dict[str, float]:
    """Encode and decode time of ``frames`` frames x ``k`` codebooks (10 s at 50 frames/s), best of 5."""
    codes = np.concatenate(clips, axis=1)[:k, :frames]
    payload = encode_codes(tables, codes)
    enc, dec = [], []
    for _ in range(5):
        start = time.perf_counter()
        encode_codes(tables, codes)
        enc.append(time.perf_counter() - start)
        start = time.perf_counter()
        assert np.array_equal(decode_codes(tables, payload, k, codes.shape[1]), codes)
        dec.append(time.perf_counter() - start)
    return {
        "symbols": codes.size,
        "encode_s": min(enc),
        "decode_s": min(dec),
        "decode_symbols_per_s": codes.size / min(dec),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=Path, required=True, help="token cache (train, valid and test splits)")
    parser.add_argument("--bitrates", default="1.5,3,6", help="nominal kbps (10 bits a code)")
    parser.add_argument("--max-contexts", type=int, default=16)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "entropy_saving.json")
    args = parser.parse_args()
    meta = read_meta(args.tokens)
    if meta.codebook_size != 1024:
        raise SystemExit("this benchmark expects codebooks of 1024 entries")
    train, valid, test = load(args.tokens, "train"), load(args.tokens, "valid"), load(args.tokens, "test")
    start = time.perf_counter()
    tables, report = fit_tables(train, 1024, meta.n_codebooks, heldout=valid, max_contexts=args.max_contexts)
    fit_seconds = time.perf_counter() - start
    plain, _ = fit_tables(train, 1024, meta.n_codebooks, heldout=valid, max_contexts=1)
    seconds = sum(c.shape[1] for c in test) / meta.frame_rate
    kbps = lambda n: n * 8 / seconds / 1000  # noqa: E731
    rows = []
    for nominal in (float(b) for b in args.bitrates.split(",")):
        k = round(nominal * 1000 / meta.frame_rate / 10)
        if not 1 <= k <= meta.n_codebooks:
            raise SystemExit(f"{nominal} kbps needs {k} codebooks; the cache holds {meta.n_codebooks}")
        packed, packed_xz = file_sizes(test, k, None, meta)
        coded, _ = file_sizes(test, k, tables, meta)
        single, _ = file_sizes(test, k, plain, meta)
        codes = sum(len(encode_codes(tables, c[:k])) for c in test)
        row = {
            "nominal_kbps": nominal,
            "codebooks": k,
            "codes_kbps": kbps(codes),
            "codes_saving_pct": 100 * (1 - kbps(codes) / nominal),
            "codes_kbps_estimate": float(np.sum(code_bits(tables, [c[:k] for c in test]))) * meta.frame_rate / 1000,
            "file_kbps_bitpacked": kbps(packed),
            "file_kbps_range_coded": kbps(coded),
            "file_saving_kbps": kbps(packed - coded),
            "file_saving_pct": 100 * (1 - coded / packed),
            "peer_file_kbps_bitpacked_lzma": kbps(packed_xz),
            "peer_file_kbps_one_table_per_codebook": kbps(single),
            "ratio_range_coded_to_lzma": coded / packed_xz,
        }
        rows.append(row)
        print(json.dumps(row))
    results: dict[str, Any] = {
        "machine": platform.processor() or platform.machine(),
        "tokens": str(args.tokens),
        "codec_hash": meta.codec_hash,
        "train_clips": len(train),
        "train_frames": report.frames,
        "valid_clips": len(valid),
        "test_clips": len(test),
        "test_seconds": seconds,
        "mean_test_clip_seconds": seconds / max(1, len(test)),
        "max_contexts": args.max_contexts,
        "tables_hash": tables.hash_id,
        "tables_kib": len(tables.serialise()) / 1024,
        "fit_seconds": fit_seconds,
        "heldout_bits_per_codebook": [c.heldout_bits for c in report.codebooks],
        "contexts_per_codebook": [f"{c.prev_buckets}x{c.coarse_buckets}" for c in report.codebooks],
        "rows": rows,
        "speed_10s_12_codebooks": speed(tables, test, min(12, meta.n_codebooks)),
    }
    print(json.dumps(results["speed_10s_12_codebooks"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
