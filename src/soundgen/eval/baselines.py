"""Reference codecs through ffmpeg: Opus (libopus), MP3 (libmp3lame) and codec2 (libcodec2).

Each baseline encodes a mono clip to a real file (so the bitrate can be read off its size, container
overhead included) and decodes it back to the clip's sample rate. A baseline that cannot reach a bitrate,
or whose encoder is not built into the installed ffmpeg, is reported as unavailable with the reason.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from soundgen.errors import MissingDependencyError

CODEC2_MODES = (700, 1200, 1300, 1400, 1600, 2400, 3200)
MP3_MIN_KBPS = 8.0
OPUS_MIN_KBPS = 6.0


@dataclass
class BaselineSpec:
    """How to run one baseline at one bitrate.

    Attributes:
        name: system name (``opus``, ``mp3``, ``codec2``).
        target_kbps: the bitrate asked for in the comparison.
        setting_kbps: the bitrate the encoder is set to (nearest it supports).
        suffix: file suffix of the compressed file.
        sample_rate: rate the encoder runs at (the clip is resampled by ffmpeg).
        args: ffmpeg encoder arguments.
        note: why the setting differs from the target, if it does.
    """

    name: str
    target_kbps: float
    setting_kbps: float
    suffix: str
    sample_rate: int
    args: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class CodedClip:
    """A clip through a baseline: decoded audio ``[T]`` at the input rate, file size and timings (seconds);
    ``payload_bytes``: the coded audio alone, where the system tells (soundgen's codes without the container)."""

    audio: np.ndarray
    file_bytes: int
    encode_seconds: float
    decode_seconds: float
    payload_bytes: int | None = None


def ffmpeg() -> str:
    """The ffmpeg executable; MissingDependencyError with install advice when absent."""
    path = shutil.which("ffmpeg")
    if path is None:
        raise MissingDependencyError("ffmpeg is needed for the baselines: apt-get install ffmpeg")
    return path


@functools.lru_cache(maxsize=1)
def available_encoders() -> frozenset[str]:
    """Names of the audio encoders the installed ffmpeg offers (empty when ffmpeg is missing)."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return frozenset()
    out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=60).stdout
    return frozenset(line.split()[1] for line in out.splitlines() if line.strip()[:1] == "A" and len(line.split()) > 1)


def baseline_specs(
    kbps: float, systems: Collection[str] = ("opus", "mp3", "codec2")
) -> tuple[list[BaselineSpec], list[str]]:
    """Baselines among ``systems`` to run at ``kbps`` and notes on the ones skipped."""
    enc = available_encoders()
    specs: list[BaselineSpec] = []
    notes: list[str] = []
    if "opus" in systems:
        if "libopus" in enc:
            setting = max(kbps, OPUS_MIN_KBPS)
            note = f"libopus goes no lower than {OPUS_MIN_KBPS:g} kbps" if setting != kbps else ""
            args = ["-c:a", "libopus", "-b:a", f"{int(setting * 1000)}", "-application", "audio", "-vbr", "on"]
            specs.append(BaselineSpec("opus", kbps, setting, ".opus", 16000, args, note))
        else:
            notes.append("opus skipped: ffmpeg has no libopus encoder")
    if "mp3" in systems:
        if "libmp3lame" not in enc:
            notes.append("mp3 skipped: ffmpeg has no libmp3lame encoder")
        elif kbps >= MP3_MIN_KBPS:
            args = ["-c:a", "libmp3lame", "-b:a", f"{int(kbps)}k"]
            specs.append(BaselineSpec("mp3", kbps, kbps, ".mp3", 8000, args))
        else:
            notes.append(f"mp3 skipped at {kbps:g} kbps: MP3 goes no lower than {MP3_MIN_KBPS:g} kbps")
    if "codec2" in systems:
        modes = [m for m in CODEC2_MODES if m <= kbps * 1000]
        if "libcodec2" not in enc:
            notes.append("codec2 skipped: ffmpeg has no libcodec2 encoder")
        elif modes:
            mode = max(modes)
            note = f"codec2 mode {mode} (highest not above the target); speech-only codec at 8 kHz"
            args = ["-c:a", "libcodec2", "-mode", str(mode)]
            specs.append(BaselineSpec("codec2", kbps, mode / 1000, ".c2", 8000, args, note))
        else:
            notes.append(f"codec2 skipped at {kbps:g} kbps: its lowest mode is 700 bps")
    return specs, notes


def _run(cmd: list[str]) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(cmd, capture_output=True, timeout=600)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise RuntimeError(f"ffmpeg failed: {tail[0]}")
    return proc


def run_baseline(spec: BaselineSpec, samples: np.ndarray, sample_rate: int) -> CodedClip:
    """Encode mono ``samples [T]`` with ``spec`` through a real file and decode back to ``sample_rate``."""
    exe = ffmpeg()
    with tempfile.TemporaryDirectory(prefix="soundgen-baseline-") as tmp:
        src, coded = Path(tmp) / "in.wav", Path(tmp) / f"coded{spec.suffix}"
        sf.write(src, samples.astype(np.float32), sample_rate, subtype="FLOAT")
        start = time.perf_counter()
        _run(
            [exe, "-v", "error", "-y", "-i", str(src), "-ac", "1", "-ar", str(spec.sample_rate), *spec.args, str(coded)]
        )
        encode_seconds = time.perf_counter() - start
        start = time.perf_counter()
        proc = _run([exe, "-v", "error", "-i", str(coded), "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-"])
        decode_seconds = time.perf_counter() - start
        audio = np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)
        return CodedClip(audio, coded.stat().st_size, encode_seconds, decode_seconds)
