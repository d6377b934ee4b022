"""``soundgen data build`` (folders, archives and files of audio into a dataset) and ``soundgen data tokenize``
(a dataset into a token cache)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from soundgen.errors import SoundgenError


class DataArgumentError(SoundgenError):
    """A ``soundgen data`` option has an invalid value."""


def register(groups: Any) -> None:
    """Add ``soundgen data build`` and ``soundgen data tokenize``."""
    data = groups.group("data")
    _register_build(data)
    _register_tokenize(data)


def _register_build(data: Any) -> None:
    p = data.add_parser(
        "build",
        help="build a dataset (clips, manifests, report) from audio folders, archives and files",
        description=(
            "Scan SRC folders (recursively), .zip/.pk3/.wz archives and audio files; decode, mix to mono, "
            "resample, trim silence, slice long files, drop duplicates, split train/valid/test by source file "
            "and write DIR/audio/, DIR/{train,valid,test}/manifest.jsonl, DIR/report.json and DIR/report.md. "
            "Running it again redoes only new or changed files. See docs/data.md."
        ),
    )
    p.add_argument("sources", nargs="+", metavar="SRC", help="folder, archive (.zip/.pk3/.wz) or audio file")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder to create or update")
    p.add_argument("--sample-rate", type=int, default=16000, metavar="HZ", help="output sample rate (16000)")
    p.add_argument("--captions", metavar="FILE", help="CSV or JSONL metadata: path, caption, tags, licence, ...")
    p.add_argument("--workers", type=int, metavar="N", help="worker processes (default 2, at most the CPU cores)")
    p.add_argument("--force-workers", action="store_true", help="allow --workers above the number of CPU cores")
    p.add_argument("--min-duration", type=float, default=0.05, metavar="S", help="skip shorter clips, s (0.05)")
    p.add_argument("--max-duration", type=float, default=30.0, metavar="S", help="slice audio longer than this, s (30)")
    p.add_argument(
        "--max-file-duration", type=float, default=1200.0, metavar="S", help="skip files longer than this, s (1200)"
    )
    p.add_argument("--silence-db", type=float, default=-50.0, metavar="DB", help="silence threshold in dBFS (-50)")
    p.add_argument("--no-trim", action="store_true", help="keep leading and trailing silence")
    p.add_argument(
        "--split", default="0.9,0.05,0.05", metavar="TRAIN,VALID,TEST", help="split fractions (0.9,0.05,0.05)"
    )
    p.set_defaults(func=_build)


def _register_tokenize(data: Any) -> None:
    p = data.add_parser(
        "tokenize",
        help="encode a dataset's clips into a token cache for LM training (resumable)",
        description="Encode every clip of DATASET_DIR once with the codec into memory-mappable token shards "
        "(captions and categories alongside). Rerunning it continues where it stopped.",
    )
    p.add_argument("dataset", type=Path, metavar="DATASET_DIR")
    p.add_argument("--codec", type=Path, required=True, metavar="MODEL_DIR", help="codec directory (or a model dir)")
    p.add_argument("--out", type=Path, required=True, metavar="TOKENS_DIR", help="token cache to create or resume")
    p.add_argument("--n-codebooks", type=int, help="codebooks to keep (default: the codec's current setting)")
    p.add_argument("--bitrate", type=float, help="pick the codebooks by bitrate in kbps instead")
    p.add_argument("--splits", default="train,valid,test", help="comma-separated splits (default train,valid,test)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.set_defaults(func=_tokenize)


def _parse_split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise DataArgumentError(f"--split needs three comma-separated fractions like 0.9,0.05,0.05, got '{text}'")
    return parts[0], parts[1], parts[2]


def _build(args: argparse.Namespace) -> int:
    from soundgen.cli.limits import check_workers
    from soundgen.data.build import BuildConfig, build_dataset

    cfg = BuildConfig(
        sample_rate=args.sample_rate,
        min_duration=args.min_duration,
        max_duration=args.max_duration,
        max_file_duration=args.max_file_duration,
        silence_threshold_db=args.silence_db,
        trim=not args.no_trim,
        split_fractions=_parse_split(args.split),
        workers=check_workers(args.workers, 2, args.force_workers),
    )
    report = build_dataset(args.sources, args.out, captions=args.captions, config=cfg)
    splits = ", ".join(f"{s} {report.clips[s]} ({report.hours[s]:.2f} h)" for s in report.clips)
    print(f"dataset {report.out}: {report.total_clips} clips from {report.files} files: {splits}")
    print(
        f"skipped {len(report.skipped)} files, removed {report.duplicates} duplicates; decoded {report.processed} "
        f"files ({report.audio_seconds:.0f} s of audio), reused {report.cached} in {report.elapsed:.1f} s"
    )
    if report.skipped:
        reasons: dict[str, int] = {}
        for s in report.skipped:
            reasons[s.reason] = reasons.get(s.reason, 0) + 1
        print("skipped: " + ", ".join(f"{k} {n}" for k, n in sorted(reasons.items())) + f" (see {report.report_json})")
    return 0


def _tokenize(args: argparse.Namespace) -> int:
    from soundgen.codec.io import codec_dir_in, load_codec
    from soundgen.data.tokens import tokenize_dataset
    from soundgen.train.common import pick_device

    codec = load_codec(codec_dir_in(args.codec)).to(pick_device(args.device)).eval()
    if args.n_codebooks is not None and args.bitrate is not None:
        raise DataArgumentError("give --n-codebooks or --bitrate, not both")
    if args.n_codebooks is not None:
        if not 1 <= args.n_codebooks <= codec.config.n_codebooks:
            raise DataArgumentError(f"--n-codebooks must be between 1 and {codec.config.n_codebooks}")
        codec.set_n_codebooks(args.n_codebooks)
    elif args.bitrate is not None:
        codec.set_bitrate(args.bitrate)
    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    report = tokenize_dataset(args.dataset, codec, args.out, splits=splits)
    print(
        f"encoded {report.encoded} clips ({report.frames} frames, {codec.n_codebooks} codebooks) into "
        f"{report.shards} new shard(s) in {args.out}; {report.skipped_existing} already there; "
        f"{len(report.failed)} failed"
    )
    return 0
