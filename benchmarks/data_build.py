"""Dataset build speed: audio-seconds processed per wall-second, beside peers measured in the same run.

Peers: ffmpeg converting the same files to 16 kHz mono WAV (``ffmpeg -i X -ac 1 -ar 16000 Y``), one file at a
time and two at a time (the machine has 2 cores), and soundgen's own builder with one worker. Also the time of a
rebuild with nothing changed (the incremental cache). Writes JSON (default ``benchmarks/results/data_build.json``).

    .venv/bin/python benchmarks/data_build.py [--files 24] [--seconds 20] [--repeat 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

os.environ.setdefault("SOUNDGEN_NO_PROGRESS", "1")

from soundgen.data.build import build_dataset  # noqa: E402

# (suffix, sample rate, channels, soundfile format, subtype)
FORMATS = [
    (".wav", 44100, 2, "WAV", "PCM_16"),
    (".flac", 48000, 2, "FLAC", "PCM_16"),
    (".ogg", 44100, 1, "OGG", "VORBIS"),
    (".mp3", 44100, 2, "MP3", "MPEG_LAYER_III"),
    (".wav", 22050, 1, "WAV", "FLOAT"),
]


def make_corpus(folder: Path, files: int, seconds: float, seed: int = 0) -> float:
    """Write ``files`` test files (tones, chirps and noise bursts in several formats); return total seconds."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for i in range(files):
        suffix, sr, channels, fmt, subtype = FORMATS[i % len(FORMATS)]
        n = int(seconds * sr)
        t = np.arange(n) / sr
        f0 = 100 + 900 * rng.random()
        x = 0.3 * np.sin(2 * np.pi * (f0 + 200 * t / seconds) * t) + 0.05 * rng.standard_normal(n)
        x *= (np.sin(2 * np.pi * 0.5 * t) > -0.8)  # gaps, so trimming and level checks have work
        data = np.stack([x, np.roll(x, 17)], axis=1) if channels == 2 else x
        path = folder / f"cat{i % 4}" / f"clip_{i:03d}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written in 1 s blocks: libsndfile 1.2.2 crashes encoding ~40 s or more of Vorbis in one call.
        with sf.SoundFile(str(path), "w", sr, channels, format=fmt, subtype=subtype) as f:
            for start in range(0, n, sr):
                f.write(data[start : start + sr].astype(np.float32))
        total += n / sr
    return total


def ffmpeg_convert(files: list[Path], out: Path, parallel: int) -> float:
    """Convert each file with ``ffmpeg -i X -ac 1 -ar 16000 Y.wav``; return wall seconds."""
    out.mkdir(parents=True, exist_ok=True)

    def one(i_path: tuple[int, Path]) -> None:
        i, path = i_path
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(path), "-ac", "1", "-ar", "16000"]
        cmd.append(str(out / f"{i}.wav"))
        subprocess.run(cmd, check=True, capture_output=True)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, enumerate(files)))
    return time.perf_counter() - t0


def timed_build(src: Path, out: Path, workers: int) -> tuple[float, float]:
    """Fresh build; (wall seconds, audio seconds the builder reports decoding)."""
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    report = build_dataset([src], out, workers=workers)
    return time.perf_counter() - t0, report.audio_seconds


def run(files: int, seconds: float, repeat: int, workdir: Path) -> dict[str, object]:
    src = workdir / "src"
    audio_seconds = make_corpus(src, files, seconds)
    paths = sorted(p for p in src.rglob("*") if p.is_file())
    walls: dict[str, list[float]] = {k: [] for k in ("soundgen_2_workers", "soundgen_1_worker", "ffmpeg_serial",
                                                      "ffmpeg_2_parallel", "soundgen_rebuild_unchanged")}
    have_ffmpeg = shutil.which("ffmpeg") is not None
    for _ in range(repeat):  # interleaved, so load changes on the shared machine hit every contender alike
        wall, decoded = timed_build(src, workdir / "ds2", 2)
        assert abs(decoded - audio_seconds) < 1.0, (decoded, audio_seconds)
        walls["soundgen_2_workers"].append(wall)
        t0 = time.perf_counter()
        again = build_dataset([src], workdir / "ds2", workers=2)
        walls["soundgen_rebuild_unchanged"].append(time.perf_counter() - t0)
        assert again.processed == 0
        walls["soundgen_1_worker"].append(timed_build(src, workdir / "ds1", 1)[0])
        if have_ffmpeg:
            walls["ffmpeg_serial"].append(ffmpeg_convert(paths, workdir / "ff1", 1))
            walls["ffmpeg_2_parallel"].append(ffmpeg_convert(paths, workdir / "ff2", 2))
    med = {k: statistics.median(v) for k, v in walls.items() if v}
    speed = {k: audio_seconds / v for k, v in med.items() if k != "soundgen_rebuild_unchanged"}
    ratios = {f"soundgen_2_workers_vs_{k}": speed["soundgen_2_workers"] / v for k, v in speed.items()
              if k != "soundgen_2_workers"}
    return {
        "benchmark": "data_build",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                    "load_average_1min_at_end": round(os.getloadavg()[0], 2)},
        "corpus": {"files": files, "audio_seconds": round(audio_seconds, 3),
                   "formats": sorted({f"{p.suffix}" for p in paths}), "target": "16 kHz mono PCM16"},
        "repeat": repeat,
        "wall_seconds_median": {k: round(v, 4) for k, v in med.items()},
        "audio_seconds_per_wall_second": {k: round(v, 2) for k, v in speed.items()},
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "goal_audio_seconds_per_wall_second": 50,
        "goal_met": speed["soundgen_2_workers"] >= 50,
        "note": (
            "ffmpeg peers write WAVs only; soundgen also trims, checks, hashes, dedupes and writes manifests. "
            "On a machine shared under load with Linux autogroup scheduling, one session's processes share one "
            "CPU share, so 2 workers cannot beat 1 there; compare workers on an idle machine."
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each test file")
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender (median reported)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "data_build.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soundgen-bench-data-") as tmp:
        result = run(args.files, args.seconds, args.repeat, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
