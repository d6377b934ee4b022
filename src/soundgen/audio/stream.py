"""Decode audio in blocks straight to mono at a target rate, so a decode's memory follows its output.

:func:`~soundgen.audio.io.read_audio` holds a whole file at its own rate and channels (a 2-hour 48 kHz stereo
file is 2.8 GB of float32 before anything else happens). :func:`decode_mono` reads 64k-frame blocks, mixes each
to mono and feeds a streaming resampler (bit-identical to resampling the whole array), so its peak memory is about
``4 bytes x sample_rate x duration`` of the *output*, whatever the source's rate, channels or size; and it stops
as soon as the audio passes the duration limit, a header that lies included.
"""

from __future__ import annotations

import io
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from soundgen.audio.archive import read_member, split_member_path
from soundgen.audio.io import Audio, ffmpeg_to_wav
from soundgen.errors import AudioReadError, InvalidAudioError

BLOCK_FRAMES = 1 << 16
MAX_RESERVE = 1 << 28  # samples reserved up front at most (1 GiB of address space; pages fill as written)
HEAD_BYTES = 1 << 16  # bytes read for header checks (WAV chunks, FLAC STREAMINFO, MP3 Xing)


@dataclass
class MonoDecode:
    """Audio decoded by :func:`decode_mono`.

    Attributes:
        samples: float32 ``[1, T]`` at ``sample_rate``.
        sample_rate: the asked rate.
        source_rate: the file's own rate.
        source_frames: frames decoded at the file's own rate.
        declared_frames: frames the file's header promises, when it says (see :func:`declared_frames`).
    """

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    source_frames: int
    declared_frames: int | None

    @property
    def source_duration(self) -> float:
        """Seconds of audio in the file."""
        return self.source_frames / self.source_rate


def decode_mono(
    source: Path | BinaryIO, *, sample_rate: int, max_duration: float | None = None, name: str | None = None
) -> MonoDecode:
    """Decode a file (a path, or a seekable binary handle such as an archive member) to mono at ``sample_rate``.

    libsndfile reads what it can; other formats go through ffmpeg (a handle is first copied to a temporary file
    in blocks), asked to stop at ``max_duration``.

    Raises:
        AudioReadError: unreadable, empty (``zero length``) or longer than ``max_duration`` (``longer than``).
        InvalidAudioError: NaN or infinite samples.
    """
    label = name or str(source)
    head = _head(source)
    reported: tuple[int, str] | None = None
    try:
        with sf.SoundFile(source) as f:
            reported = (f.frames, f.format)
            samples, frames, rate = _stream(f, label, sample_rate, max_duration)
    except (AudioReadError, InvalidAudioError):
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):  # unknown format, or lost sync midway
        samples, frames, rate = _decode_with_ffmpeg(source, label, sample_rate, max_duration)
    declared = declared_frames(head, *reported) if reported is not None else declared_frames(head)
    return MonoDecode(samples, sample_rate, rate, frames, declared)


def _head(source: Path | BinaryIO) -> bytes:
    if isinstance(source, Path):
        with open(source, "rb") as f:
            return f.read(HEAD_BYTES)
    source.seek(0)
    head = source.read(HEAD_BYTES)
    source.seek(0)
    return head


def _stream(
    f: sf.SoundFile, label: str, sample_rate: int, max_duration: float | None
) -> tuple[np.ndarray, int, int]:
    """``([1, T] at sample_rate, frames decoded, source rate)`` of an open file, a block at a time."""
    rate = int(f.samplerate)
    if rate <= 0:
        raise AudioReadError(f"{label}: invalid sample rate {rate}")
    if f.frames > 0 and max_duration is not None and f.frames / rate > max_duration:
        raise AudioReadError(f"{label}: {f.frames / rate:.0f} s is longer than the {max_duration:.0f} s limit")
    limit = None if max_duration is None else int(max_duration * rate) + 1
    resampler = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32") if rate != sample_rate else None
    expected = int(min(max(f.frames, 0), limit or 1 << 40) * sample_rate / rate)
    out = _Growing(min(expected + 1024, MAX_RESERVE))
    frames = 0
    while True:
        block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
        if len(block) == 0:
            break
        frames += len(block)
        if limit is not None and frames > limit:
            raise AudioReadError(f"{label}: more than {max_duration:.0f} s, longer than the {max_duration:.0f} s limit")
        if not np.isfinite(block).all():
            raise InvalidAudioError(f"{label}: the audio holds NaN or infinite samples")
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        out.append(resampler.resample_chunk(mono) if resampler is not None else mono)
    if frames == 0:
        raise AudioReadError(f"{label}: the file holds no audio samples (zero length)")
    if resampler is not None:
        out.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    return out.array()[None], frames, rate


class _Growing:
    """A float32 buffer appended to in place (sized from the header, so it rarely grows)."""

    def __init__(self, capacity: int) -> None:
        self.data = np.empty(max(capacity, 1), np.float32)
        self.size = 0

    def append(self, x: np.ndarray) -> None:
        if self.size + len(x) > len(self.data):
            grown = np.empty(max(self.size + len(x), len(self.data) * 3 // 2), np.float32)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : self.size + len(x)] = x
        self.size += len(x)

    def array(self) -> np.ndarray:
        # A view: the unused tail was never written, so it takes address space but no memory.
        return self.data[: self.size]


def _decode_with_ffmpeg(
    source: Path | BinaryIO, label: str, sample_rate: int, max_duration: float | None
) -> tuple[np.ndarray, int, int]:
    with tempfile.TemporaryDirectory(prefix="soundgen-decode-") as tmp:
        if not isinstance(source, Path):
            copy = Path(tmp) / "input"
            source.seek(0)
            with open(copy, "wb") as f:
                shutil.copyfileobj(source, f, 1 << 20)
            source = copy
        out = Path(tmp) / "decoded.wav"
        # One second past the limit, so that a file over it is told apart from one exactly at it.
        ffmpeg_to_wav(source, out, label, None if max_duration is None else max_duration + 1)
        try:
            with sf.SoundFile(out) as f:
                return _stream(f, label, sample_rate, max_duration)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise AudioReadError(f"{label}: ffmpeg output unreadable: {e}") from e


def read_audio_tail(source: str | Path, seconds: float) -> tuple[Audio, float]:
    """The last ``seconds`` of a file at its own rate and channels, and the file's whole duration.

    Only the tail is decoded (a seek where the format allows it, else blocks of which the last are kept), so a
    1-hour file costs no more memory than ``seconds`` of it. ``source`` may name an archive member.

    Raises:
        AudioReadError: missing, unreadable or empty.
        InvalidAudioError: NaN or infinite samples in the tail.
    """
    member = split_member_path(str(source))
    handle: Path | io.BytesIO = io.BytesIO(read_member(*member)) if member is not None else Path(source)
    if isinstance(handle, Path) and not handle.is_file():
        raise AudioReadError(f"{source}: no such file")
    try:
        with sf.SoundFile(handle) as f:
            return _tail(f, seconds, str(source))
    except (AudioReadError, InvalidAudioError):
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        pass  # a format libsndfile does not read: ffmpeg's
    with tempfile.TemporaryDirectory(prefix="soundgen-tail-") as tmp:
        out = Path(tmp) / "decoded.wav"
        if isinstance(handle, io.BytesIO):
            (Path(tmp) / "input").write_bytes(handle.getvalue())
            handle = Path(tmp) / "input"
        ffmpeg_to_wav(handle, out, str(source))
        with sf.SoundFile(out) as f:
            return _tail(f, seconds, str(source))


def _tail(f: sf.SoundFile, seconds: float, label: str) -> tuple[Audio, float]:
    rate = int(f.samplerate)
    if rate <= 0:
        raise AudioReadError(f"{label}: invalid sample rate {rate}")
    keep = max(1, int(seconds * rate))
    if f.seekable() and f.frames > 0:
        f.seek(max(0, f.frames - keep))
        x, total = f.read(keep, dtype="float32", always_2d=True), f.frames
    else:  # no seek: read it all, keeping the last blocks only
        blocks: list[np.ndarray] = []
        total = held = 0
        while len(block := f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)):
            blocks.append(block)
            total, held = total + len(block), held + len(block)
            while held - len(blocks[0]) >= keep:
                held -= len(blocks.pop(0))
        x = np.concatenate(blocks)[-keep:] if blocks else np.zeros((0, f.channels), np.float32)
    if len(x) == 0:
        raise AudioReadError(f"{label}: the file holds no audio samples (zero length)")
    if not np.isfinite(x).all():
        raise InvalidAudioError(f"{label}: the audio holds NaN or infinite samples")
    return Audio(np.ascontiguousarray(x.T), rate), total / rate


def declared_frames(head: bytes, reported: int | None = None, fmt: str | None = None) -> int | None:
    """Frames a file's header promises, if known.

    Args:
        head: the file's first bytes (:data:`HEAD_BYTES` is enough), or all of them.
        reported, fmt: libsndfile's frame count and format name, when the file is open; else ``head`` is asked.

    Returns:
        The WAV data chunk's or FLAC STREAMINFO's count, else libsndfile's (except an MP3 without a Xing/Info
        header, whose count is a guess), else None.
    """
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _wav_declared_frames(head)
    if head[:4] == b"fLaC" and len(head) >= 42:
        packed = int.from_bytes(head[18:26], "big")  # rate:20 | channels-1:3 | bits-1:5 | total samples:36
        total = packed & ((1 << 36) - 1)
        if total or reported is None:
            return total or None
    if reported is None:
        try:
            info = sf.info(io.BytesIO(head))
        except Exception:  # noqa: BLE001 - no header count is fine: nothing to compare
            return None
        reported, fmt = info.frames, info.format
    if fmt == "MP3" and b"Xing" not in head[:8192] and b"Info" not in head[:8192]:
        return None  # without a Xing/Info header the count is a guess from the first frame's bitrate
    return reported if 0 < reported < (1 << 62) else None


def _wav_declared_frames(data: bytes) -> int | None:
    pos, block_align = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk == b"fmt " and pos + 22 <= len(data):
            block_align = struct.unpack("<H", data[pos + 20 : pos + 22])[0]
        if chunk == b"data":
            if size in (0, 0xFFFFFFFF) or block_align <= 0:  # streamed WAVs leave the size open
                return None
            return size // block_align
        pos += 8 + size + (size & 1)
    return None
