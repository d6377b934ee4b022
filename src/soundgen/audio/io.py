"""Read any common audio file, convert it, and write it back.

Reading tries libsndfile (through soundfile: wav, flac, ogg/vorbis, opus, mp3, aiff, ...) first and falls back
to ffmpeg for other containers (WavPack ``.wv``, m4a/aac, wma, ...) when ffmpeg is installed. Every failure is an
:class:`~soundgen.errors.AudioReadError` that names the file and what to do. Arrays are ``[C, T]`` float32 in
-1..1 throughout.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from soundgen.audio.archive import read_member, split_member_path
from soundgen.audio.writer import AudioFileWriter, AudioFormat, write_blocks, write_settings
from soundgen.errors import AudioReadError, AudioWriteError, InvalidAudioError

log = logging.getLogger(__name__)

FFMPEG_TIMEOUT_S = 600


@dataclass
class Audio:
    """Decoded audio.

    Attributes:
        samples: float32 array ``[C, T]``.
        sample_rate: samples per second.
    """

    samples: np.ndarray
    sample_rate: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.shape[1] / self.sample_rate


def ffmpeg_path() -> str | None:
    """The ffmpeg executable, or None when it is not installed."""
    return shutil.which("ffmpeg")


def read_audio(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    sample_rate: int | None = None,
    channels: int | None = None,
    max_duration: float | None = None,
) -> Audio:
    """Decode an audio file (or bytes, or an archive member ``game.pk3::snd/boom.ogg``).

    Args:
        source: a path, a ``archive::member`` string, or the file's bytes.
        name: file name used in messages (and as a format hint for ffmpeg) when ``source`` is bytes.
        sample_rate: resample to this rate (soxr, high quality) when given.
        channels: convert to this many channels (1 = mono mix-down) when given.
        max_duration: refuse files longer than this many seconds before decoding them whole, when known.

    Returns:
        Audio with samples ``[C, T]`` float32.

    Raises:
        AudioReadError: missing, empty, corrupt or unsupported file (the message says what to install).
        InvalidAudioError: the decoded audio holds NaN or infinite samples.
    """
    data, label = _load_source(source, name)
    audio = _decode_soundfile(data, label, max_duration)
    if audio is None:
        audio = _decode_ffmpeg(data, label, max_duration)
    if audio.samples.shape[1] == 0:
        raise AudioReadError(f"{label}: the file holds no audio samples (zero length)")
    if max_duration is not None and audio.duration > max_duration:
        raise AudioReadError(f"{label}: {audio.duration:.0f} s is longer than the {max_duration:.0f} s limit")
    if not np.isfinite(audio.samples).all():
        raise InvalidAudioError(f"{label}: the audio holds NaN or infinite samples")
    if channels is not None:
        audio = Audio(to_channels(audio.samples, channels), audio.sample_rate)
    if sample_rate is not None and sample_rate != audio.sample_rate:
        audio = Audio(resample(audio.samples, audio.sample_rate, sample_rate), sample_rate)
    return audio


def _load_source(source: str | Path | bytes, name: str | None) -> tuple[bytes | Path, str]:
    if isinstance(source, bytes | bytearray):
        return bytes(source), name or "<audio bytes>"
    text = str(source)
    member = split_member_path(text)
    if member is not None and member[0].is_file():
        return read_member(*member), text
    path = Path(source)
    if not path.exists():
        raise AudioReadError(f"{path}: no such file")
    if not path.is_file():
        raise AudioReadError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise AudioReadError(f"{path}: the file is empty (0 bytes)")
    return path, str(path)


def _decode_soundfile(data: bytes | Path, label: str, max_duration: float | None) -> Audio | None:
    """Decode with libsndfile; None when libsndfile cannot read this format (ffmpeg may)."""
    handle: Path | io.BytesIO = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with sf.SoundFile(handle) as f:
            if f.frames > 0 and f.samplerate > 0 and max_duration is not None:
                if f.frames / f.samplerate > max_duration:
                    raise AudioReadError(
                        f"{label}: {f.frames / f.samplerate:.0f} s is longer than the {max_duration:.0f} s limit"
                    )
            samples = f.read(dtype="float32", always_2d=True)
            rate = int(f.samplerate)
    except AudioReadError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as e:
        log.debug("libsndfile cannot read %s: %s", label, e)
        return None
    if rate <= 0:
        raise AudioReadError(f"{label}: invalid sample rate {rate}")
    return Audio(np.ascontiguousarray(samples.T), rate)


def _decode_ffmpeg(data: bytes | Path, label: str, max_duration: float | None = None) -> Audio:
    with tempfile.TemporaryDirectory(prefix="soundgen-ffmpeg-") as tmp:
        out = Path(tmp) / "decoded.wav"
        # A second past the limit is enough to tell that a file is too long, and bounds what a long one costs.
        ffmpeg_to_wav(data, out, label, None if max_duration is None else max_duration + 1.0)
        try:
            samples, rate = sf.read(str(out), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise AudioReadError(f"{label}: ffmpeg output unreadable: {e}") from e
    return Audio(np.ascontiguousarray(samples.T), int(rate))


def ffmpeg_to_wav(data: bytes | Path, out: Path, label: str, max_duration: float | None = None) -> None:
    """Decode a file (its path, or its bytes through stdin) with ffmpeg into a float32 WAV at ``out``.

    Args:
        max_duration: stop after this many seconds of audio, when given.

    Raises:
        AudioReadError: ffmpeg is not installed, fails, times out or finds no audio.
    """
    exe = ffmpeg_path()
    if exe is None:
        raise AudioReadError(
            f"{label}: cannot decode this file: libsndfile does not read its format and ffmpeg is not installed "
            "(install it, e.g. 'apt-get install ffmpeg', or convert the file to WAV/FLAC)"
        )
    src = "pipe:0" if isinstance(data, bytes) else str(data)
    cmd = [exe, "-nostdin", "-v", "error", "-y", "-i", src, "-vn", "-c:a", "pcm_f32le", "-f", "wav", str(out)]
    if max_duration is not None:
        cmd[-3:-3] = ["-t", f"{max_duration:.3f}"]
    if isinstance(data, bytes):
        cmd[1] = "-hide_banner"  # stdin carries the data
    try:
        proc = subprocess.run(
            cmd, input=data if isinstance(data, bytes) else None, capture_output=True, timeout=FFMPEG_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise AudioReadError(f"{label}: ffmpeg took over {FFMPEG_TIMEOUT_S} s to decode it") from e
    if proc.returncode != 0 or not out.exists() or out.stat().st_size <= 44:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = err[-1] if err else "no audio stream"
        raise AudioReadError(f"{label}: cannot decode (not a readable audio file; ffmpeg says: {reason})")


def to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Convert ``[C, T]`` to ``[channels, T]``: average down to mono, repeat mono up, else keep the first ones."""
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    x = np.atleast_2d(x)
    c = x.shape[0]
    if c == channels:
        return x
    if channels == 1:
        return x.mean(axis=0, keepdims=True, dtype=np.float32)
    if c == 1:
        return np.repeat(x, channels, axis=0)
    if c > channels:
        return x[:channels]
    return np.concatenate([x, np.repeat(x[-1:], channels - c, axis=0)], axis=0)


def resample(x: np.ndarray, sr_in: int, sr_out: int, quality: str = "HQ") -> np.ndarray:
    """Resample ``[C, T]`` (or ``[T]``) from ``sr_in`` to ``sr_out`` Hz with soxr."""
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    y = soxr.resample(np.ascontiguousarray(x.T if x.ndim == 2 else x), sr_in, sr_out, quality=quality)
    return np.ascontiguousarray(y.T if x.ndim == 2 else y, dtype=np.float32)


SILENT_DBFS = -50.0
"""A clip whose peak stays below this level is silence to a listener."""


def is_silent(audio: np.ndarray, threshold_dbfs: float = SILENT_DBFS) -> bool:
    """Whether ``audio`` (any shape) peaks below ``threshold_dbfs``."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return peak < 10 ** (threshold_dbfs / 20)


def peak_normalize(x: np.ndarray, peak_db: float = -1.0) -> np.ndarray:
    """Scale so the largest absolute sample sits at ``peak_db`` dBFS; silence is returned unchanged."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak < 1e-9:
        return x
    return (x * (10 ** (peak_db / 20) / peak)).astype(np.float32)


def _biquad_response(b: tuple[float, ...], a: tuple[float, ...], w: np.ndarray) -> np.ndarray:
    z = np.exp(-1j * w)
    return (b[0] + b[1] * z + b[2] * z**2) / (a[0] + a[1] * z + a[2] * z**2)


def _k_weighting(n_fft: int, sample_rate: int) -> np.ndarray:
    """Magnitude-and-phase response of BS.1770's K-weighting (shelf + high-pass) at the rfft bins."""
    w = np.linspace(0, np.pi, n_fft // 2 + 1)
    k = np.tan(np.pi * 1681.974450955533 / sample_rate)
    vh, q = 10 ** (3.999843853973347 / 20), 0.7071752369554196  # +4 dB high shelf at ~1.7 kHz
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf_b = ((vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0)
    shelf_a = (1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    k2 = np.tan(np.pi * 38.13547087602444 / sample_rate)
    q2 = 0.5003270373238773
    a02 = 1 + k2 / q2 + k2 * k2
    hp_b = (1.0, -2.0, 1.0)
    hp_a = (1.0, 2 * (k2 * k2 - 1) / a02, (1 - k2 / q2 + k2 * k2) / a02)
    return _biquad_response(shelf_b, shelf_a, w) * _biquad_response(hp_b, hp_a, w)


def loudness(x: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770: K-weighting, 400 ms blocks, absolute and relative gates).

    The K-weighting filter is applied in the frequency domain. Returns ``-inf`` for silence.
    """
    x = np.atleast_2d(x).astype(np.float64)
    n = x.shape[1]
    block, hop = int(0.4 * sample_rate), int(0.1 * sample_rate)
    if n < block:
        x = np.pad(x, ((0, 0), (0, block - n)))
        n = block
    n_fft = 1 << int(np.ceil(np.log2(n + 1)))
    weighted = np.fft.irfft(np.fft.rfft(x, n_fft) * _k_weighting(n_fft, sample_rate), n_fft)[:, :n]
    starts = np.arange(0, n - block + 1, hop)
    power = np.array([np.mean(weighted[:, s : s + block] ** 2, axis=1).sum() for s in starts])
    with np.errstate(divide="ignore"):
        lk = -0.691 + 10 * np.log10(power)
    gated = power[lk > -70]
    if gated.size == 0:
        return float("-inf")
    relative = -0.691 + 10 * np.log10(gated.mean()) - 10
    final = power[(lk > -70) & (lk > relative)]
    return float(-0.691 + 10 * np.log10(final.mean()))


def loudness_normalize(
    x: np.ndarray, sample_rate: int, target_lufs: float = -23.0, peak_limit_db: float = -1.0
) -> np.ndarray:
    """Scale to ``target_lufs`` integrated loudness, then lower the gain if a peak would pass ``peak_limit_db``."""
    current = loudness(x, sample_rate)
    if not np.isfinite(current):
        return x
    y = x * np.float32(10 ** ((target_lufs - current) / 20))
    peak = float(np.max(np.abs(y)))
    limit = 10 ** (peak_limit_db / 20)
    if peak > limit:
        y = y * np.float32(limit / peak)
    return y.astype(np.float32)


def trim_silence(
    x: np.ndarray, sample_rate: int, threshold_db: float = -50.0, frame_ms: float = 10.0, pad_ms: float = 20.0
) -> np.ndarray:
    """Cut leading and trailing frames whose RMS is below ``threshold_db`` dBFS; ``[C, 0]`` if all silent."""
    x = np.atleast_2d(x)
    frame = max(1, int(sample_rate * frame_ms / 1000))
    n_frames = int(np.ceil(x.shape[1] / frame))
    if n_frames == 0:
        return x
    rms = np.sqrt(_frame_power(x, frame, n_frames) + 1e-20)
    loud = np.nonzero(20 * np.log10(rms) > threshold_db)[0]
    if loud.size == 0:
        return x[:, :0]
    pad = int(sample_rate * pad_ms / 1000)
    start = max(0, loud[0] * frame - pad)
    end = min(x.shape[1], (loud[-1] + 1) * frame + pad)
    return x[:, start:end]


def _frame_power(x: np.ndarray, frame: int, n_frames: int, frames_per_block: int = 4096) -> np.ndarray:
    """Mean square of each ``frame``-sample frame of ``[C, T]`` (the last one zero-padded), ``[n_frames]``.

    Computed a block of frames at a time, so a long recording needs no padded or squared copy of itself.
    """
    power = np.empty(n_frames, np.float32)
    for first in range(0, n_frames, frames_per_block):
        chunk = x[:, first * frame : (first + frames_per_block) * frame]
        k = -(-chunk.shape[1] // frame)
        padded = np.pad(chunk, ((0, 0), (0, k * frame - chunk.shape[1])))
        power[first : first + k] = np.mean(padded.reshape(x.shape[0], k, frame) ** 2, axis=(0, 2))
    return power


def _prepare_write(samples: np.ndarray, sample_rate: int, fmt: str) -> tuple[np.ndarray, int, str, str | None]:
    rate, major, subtype = write_settings(fmt, sample_rate)
    x = _checked(samples)
    if rate != sample_rate:
        x = resample(x, sample_rate, rate)
    return np.clip(x, -1.0, 1.0).T, rate, major, subtype


def _checked(samples: np.ndarray) -> np.ndarray:
    """``[C, T]`` float32 samples to write (a ``[T]`` array is mono), refusing transposed or non-finite ones."""
    x = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    if x.shape[0] > 8 and x.shape[1] <= 8:
        raise AudioWriteError(f"samples must be [C, T]; got shape {tuple(x.shape)} (transposed?)")
    if not np.isfinite(x).all():
        raise InvalidAudioError("refusing to write audio that holds NaN or infinite samples")
    return x


def encode_audio_bytes(samples: np.ndarray, sample_rate: int, format: AudioFormat | str) -> bytes:
    """Encode ``[C, T]`` samples into the bytes of a wav/flac/ogg/opus/mp3 file."""
    data, rate, major, subtype = _prepare_write(samples, sample_rate, format)
    buf = io.BytesIO()
    try:
        write_blocks(buf, data, rate, major, subtype)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise AudioWriteError(f"cannot encode audio as {format}: {e}") from e
    return buf.getvalue()


def write_audio(
    path: str | Path, samples: np.ndarray, sample_rate: int, *, format: AudioFormat | str | None = None
) -> Path:
    """Write ``[C, T]`` (or ``[T]``) float samples; the format comes from the suffix unless given.

    The file appears under its final name only when complete (:class:`~soundgen.audio.writer.AudioFileWriter`,
    which also writes audio block by block as it is made).

    Raises:
        AudioWriteError: unknown format, transposed samples; OutputWriteError: the file cannot be written.
        InvalidAudioError: NaN or infinite samples.
    """
    x = _checked(samples)
    with AudioFileWriter(path, sample_rate, x.shape[0], format=format) as out:
        out.write(x)
    return Path(path)
