"""``soundgen codec train|export|encode|decode|fit-entropy``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from soundgen.audio.archive import MEMBER_SEPARATOR
from soundgen.cli.overrides import add_override_options, collect_overrides
from soundgen.errors import AudioReadError, SoundgenError
from soundgen.utils import check_writable

CODEC_MODEL_HELP = (
    "codec model directory (default: codec/ of the model 'generate' uses: $SOUNDGEN_MODEL or models/default)"
)


def _config_options(parser: argparse.ArgumentParser) -> None:
    """Add one ``--section.key=VALUE`` override option per field of the codec run config."""
    from soundgen.codec.config import CodecRunConfig

    add_override_options(parser, CodecRunConfig, "--train.lr=3e-4 --model.strides=[2,4,5,8]")


def register(groups: Any) -> None:
    codec = groups.group("codec")
    p = codec.add_parser(
        "train",
        help="train a codec on a dataset (resumes from RUN_DIR's last checkpoint)",
        epilog="Any config key can be overridden on the command line: --train.lr=3e-4 --model.strides=[2,4,5,8]",
    )
    p.add_argument("--config", type=Path, help="YAML config (sections model: and train:); default: built-in defaults")
    p.add_argument("--data", type=Path, required=True, help="dataset directory built by 'soundgen data build'")
    p.add_argument("--out", type=Path, required=True, help="run directory (checkpoints, TensorBoard logs)")
    p.add_argument("--steps", type=int, help="train until this many steps (overrides train.steps)")
    p.add_argument("--init", type=Path, metavar="MODEL_DIR",
                   help="start a new run from a released codec (or model) directory: its encoder and quantizer, and "
                   "its decoder when the config asks for the same kind; with --train.freeze_encoder=true only a "
                   "decoder is trained, so the released codes stay valid")
    _config_options(p)
    p.set_defaults(func=cmd_train)

    p = codec.add_parser("export", help="write a run's codec as a model directory (config.json + model.safetensors)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, required=True, help="model directory to write")
    p.add_argument("--fp16", action="store_true", help="store weights as float16")
    p.add_argument("--model-id", help="name recorded in the model and in every file it encodes")
    p.set_defaults(func=cmd_export)

    p = codec.add_parser("encode", help="compress an audio file to .sgc")
    p.add_argument("input", type=Path, help="audio file (any rate, channels and readable format; also ARCHIVE::MEMBER)")
    p.add_argument("output", type=Path, help="output .sgc file")
    p.add_argument("--bitrate", type=float, default=6.0, help="kbps (default 6: 12 codebooks of the default model)")
    p.add_argument("--model", type=Path, help=CODEC_MODEL_HELP)
    p.add_argument("--entropy", action=argparse.BooleanOptionalAction, default=None,
                   help="range-code the codes with the model's entropy tables (.sgc version 3; default: when the "
                   "model has them, see 'codec fit-entropy'); --no-entropy bit-packs them (version 2)")
    p.set_defaults(func=cmd_encode)

    p = codec.add_parser("decode", help="decode a .sgc file to audio (.wav, .flac, .ogg, ...)")
    p.add_argument("input", type=Path, help=".sgc file")
    p.add_argument("output", type=Path, help="audio file to write; format from its suffix")
    p.add_argument("--model", type=Path, help=CODEC_MODEL_HELP)
    p.add_argument("--sample-rate", type=int, help="output sample rate (default: the codec's)")
    p.set_defaults(func=cmd_decode)

    p = codec.add_parser(
        "fit-entropy",
        help="fit the entropy tables that range-code a codec's .sgc files (writes MODEL_DIR/entropy.safetensors)",
        description="Count how the codec's codes follow each other in a token cache (or a dataset's clips) and write "
        "the probability tables that 'codec encode' range-codes its files with (.sgc version 3, about a third "
        "smaller). The tables belong to these weights: fit them again after retraining (or, when only a decoder was "
        "retrained on frozen codes, copy them with --tables-from).",
    )
    p.add_argument("model_dir", type=Path, help="codec model directory (or a model directory holding codec/)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--tokens", type=Path, help="token cache of this codec, made by 'soundgen data tokenize "
                        "DATASET --codec MODEL_DIR --n-codebooks 12' (its train split fits, valid chooses)")
    source.add_argument("--data", type=Path, help="dataset directory: its train and valid clips are encoded first "
                        "(into a temporary token cache)")
    source.add_argument("--tables-from", type=Path, metavar="MODEL_DIR",
                        help="copy the tables of another codec that writes the same codes (same encoder and "
                        "quantizer: a decoder trained on its frozen codes); refused for any other codec")
    p.add_argument("--max-contexts", type=int, default=16, help="most tables per codebook (default 16: ~400 KiB "
                   "for 12 codebooks of 1024)")
    p.set_defaults(func=cmd_fit_entropy)


def cmd_train(args: argparse.Namespace) -> int:
    from soundgen.codec.config import CodecRunConfig
    from soundgen.config import load_config
    from soundgen.train.codec import train_codec
    from soundgen.train.common import by_bitrate

    cfg = load_config(CodecRunConfig, args.config, collect_overrides(args))
    if not args.data.is_dir():
        raise SoundgenError(f"dataset directory {args.data} does not exist; build one with 'soundgen data build'")
    result = train_codec(cfg, args.data, args.out, steps=args.steps, init=args.init)
    from soundgen.distributed import is_main

    if not is_main():  # under torchrun, rank 0 alone reports
        return 0
    losses = " ".join(f"{k.split('/')[-1]}={v:.4f}" for k, v in result.losses.items() if k.startswith("loss/"))
    print(f"trained to step {result.step} in {result.run_dir} ({result.steps_per_second:.2f} steps/s) {losses}")
    for where, metrics in by_bitrate(result.validation).items():
        print(f"  valid @ {where.removesuffix('kbps')} kbps: " + " ".join(f"{k}={v:.3f}" for k, v in metrics.items()))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from soundgen.train.codec import export_run

    out = export_run(args.run_dir, args.out, fp16=args.fp16, model_id=args.model_id)
    print(f"exported codec to {out}")
    return 0


def _check_input(path: Path) -> None:
    # archive members (game.pk3::snd/boom.ogg) are checked when they are read
    if MEMBER_SEPARATOR not in str(path) and not path.is_file():
        raise AudioReadError(f"{path}: no such file")


def _check_output(src: Path, out: Path) -> None:
    """Refuse an output that is the input (or the archive holding it), however it is named: the write would
    replace the file being read."""
    from soundgen.audio.archive import split_member_path

    member = split_member_path(str(src))
    source = member[0] if member is not None else src
    same = source.resolve() == out.resolve()
    if not same and source.exists() and out.exists():
        same = os.path.samefile(source, out)  # hard links
    if same:
        raise SoundgenError(f"{out} is the input file itself; writing it would destroy {src}: pick another output")


def cmd_encode(args: argparse.Namespace) -> int:
    from soundgen.codec.entropy import load_tables
    from soundgen.codec.io import load_codec, resolve_model_dir
    from soundgen.codec.sgc.files import encode_file

    _check_input(args.input)
    _check_output(args.input, args.output)
    check_writable(args.output)
    if args.bitrate <= 0:
        raise SoundgenError(f"--bitrate must be positive, got {args.bitrate}")
    codec = load_codec(args.model)
    # --entropy refuses stale tables (fitted for other weights) with their own message; by default they are ignored
    # with a warning and the file is bit-packed
    tables = (load_tables(resolve_model_dir(args.model), codec.model_hash, strict=bool(args.entropy))
              if args.entropy is not False else None)
    if args.entropy and tables is None:
        raise SoundgenError(
            f"the codec at {resolve_model_dir(args.model)} has no entropy tables; fit them with 'soundgen codec "
            "fit-entropy MODEL_DIR --tokens TOKENS_DIR', or leave out --entropy"
        )
    k = codec.set_bitrate(args.bitrate)
    result = encode_file(codec, args.input, args.output, tables=tables)
    coding = f"range-coded (tables {tables.hash_id})" if tables is not None else "bit-packed"
    print(
        f"{args.output}: {result.duration:.2f} s, {k} codebooks, {coding}, {result.bytes_written} bytes: "
        f"true bitrate {result.bitrate:.2f} kbps (file bytes x 8 / duration, header included), codes alone "
        f"{result.payload_bitrate:.2f} kbps, nominal {result.header.bitrate():.2f} kbps"
    )
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from soundgen.audio.writer import format_from_path
    from soundgen.codec.entropy import load_tables
    from soundgen.codec.io import load_codec, resolve_model_dir
    from soundgen.codec.sgc.files import decode_file

    _check_input(args.input)
    _check_output(args.input, args.output)
    format_from_path(args.output)  # an unknown suffix is refused before the model loads
    check_writable(args.output)
    if args.sample_rate is not None and not 1000 <= args.sample_rate <= 384000:
        raise SoundgenError(f"--sample-rate must be between 1000 and 384000, got {args.sample_rate}")
    codec = load_codec(args.model)
    tables = load_tables(resolve_model_dir(args.model), codec.model_hash)
    header = decode_file(codec, args.input, args.output, sample_rate=args.sample_rate, tables=tables)
    print(f"{args.output}: {header.length / header.sample_rate:.2f} s from {header.n_codebooks} codebooks")
    return 0


def _copy_tables(codec: Any, model_dir: Path, source: Path) -> int:
    from soundgen.codec.entropy import load_tables, save_tables
    from soundgen.codec.io import codec_dir_in, codes_hash, load_codec, resolve_model_dir

    source_dir = resolve_model_dir(codec_dir_in(source))
    other = load_codec(source_dir)
    codes = codes_hash(codec)
    if codes_hash(other) != codes:
        raise SoundgenError(
            f"{source_dir} writes other codes than {model_dir} (another encoder or quantizer), so its tables do not "
            f"fit: fit them with --tokens or --data"
        )
    tables = load_tables(source_dir, other.model_hash, strict=True)
    if tables is None:
        raise SoundgenError(f"{source_dir} has no entropy tables to copy")
    info: dict[str, object] = {
        "tables_from": str(source_dir), "fitted_for": other.model_hash, "codes_hash": codes
    }
    path = save_tables(model_dir, tables, codec_hash=codec.model_hash, info=info)
    print(f"wrote {path} (tables {tables.hash_id}, copied from {source_dir}: both codecs write the same codes)")
    return 0


def cmd_fit_entropy(args: argparse.Namespace) -> int:
    import tempfile

    from soundgen.codec.entropy import ENTROPY_FILE, fit_summary, fit_tables, save_tables
    from soundgen.codec.io import codec_dir_in, load_codec, resolve_model_dir
    from soundgen.data.tokens import TokenCache, TokenCacheError, read_meta, tokenize_dataset

    model_dir = resolve_model_dir(codec_dir_in(args.model_dir))
    check_writable(model_dir / ENTROPY_FILE)
    if not 1 <= args.max_contexts <= 256:
        raise SoundgenError(f"--max-contexts must be between 1 and 256, got {args.max_contexts}")
    codec = load_codec(model_dir)
    if args.tables_from is not None:
        return _copy_tables(codec, model_dir, args.tables_from)
    with tempfile.TemporaryDirectory(prefix="soundgen-fit-entropy-") as tmp:
        tokens = args.tokens
        if args.data is not None:
            codec.set_n_codebooks(codec.max_codebooks)
            tokens = Path(tmp) / "tokens"
            tokenize_dataset(args.data, codec, tokens, splits=("train", "valid"))
        meta = read_meta(tokens)
        if meta.codec_hash != codec.model_hash or meta.codebook_size != codec.codebook_size:
            raise TokenCacheError(
                f"{tokens} holds codes of another codec ({meta.codec_hash[:12]}), not of {model_dir} "
                f"({codec.model_hash[:12]}); tokenize with --codec {model_dir}"
            )
        train = TokenCache(tokens, "train")
        try:
            valid = TokenCache(tokens, "valid")
            heldout = [valid.codes(i) for i in range(len(valid))]
        except TokenCacheError:
            heldout = []
        clips = [train.codes(i) for i in range(len(train))]
        tables, report = fit_tables(
            clips, codec.codebook_size, codec.max_codebooks, heldout=heldout, max_contexts=args.max_contexts
        )
    info = {"tokens": str(args.tokens or args.data), "max_contexts": args.max_contexts, **fit_summary(report)}
    path = save_tables(model_dir, tables, codec_hash=codec.model_hash, info=info)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB, tables {tables.hash_id}) from {report.clips} clips, "
          f"{report.frames} frames; held-out bits per code (of {report.raw_bits}):")
    for c in report.codebooks:
        print(f"  codebook {c.codebook}: {c.heldout_bits:.2f} ({c.prev_buckets}x{c.coarse_buckets} contexts; "
              f"one table: {c.unconditional_bits:.2f})" if c.frames else f"  codebook {c.codebook}: no data, uniform")
    for kbps in codec.config.bitrates:
        k = codec.config.codebooks_for_bitrate(kbps)
        coded = report.bits_per_frame(k) * codec.frame_rate / 1000
        print(f"  {kbps:g} kbps ({k} codebooks): codes {coded:.2f} kbps on held-out clips, "
              f"{100 * (1 - coded / codec.config.bitrate(k)):.0f} % smaller")
    return 0
