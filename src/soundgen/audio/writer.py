"""Write audio files block by block, so that writing an hour of audio costs what one block does.

:class:`AudioFileWriter` takes ``[C, t]`` blocks as they are made (a codec decoding a long file, for one) and hands
them to libsndfile, which encodes every format soundgen writes (wav, flac, ogg/vorbis, opus, mp3) as a stream:
memory stays at one block, whatever the length. The file is written under a temporary name beside the output and
renamed when complete, so a failure part-way (a corrupt input found late, a full disk) never leaves a half-written
file under the final name. A libsndfile too old for a format (mp3 needs 1.1.0) is refused before any work starts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
import soundfile as sf
import soxr

from soundgen.errors import AudioWriteError, InvalidAudioError, OutputWriteError
from soundgen.utils import atomic_path, write_error

AudioFormat = Literal["wav", "flac", "ogg", "opus", "mp3"]
WRITE_FORMATS: dict[str, tuple[str, str | None]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
# Opus only runs at these rates; other rates are resampled to 48 kHz on write.
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
# libsndfile 1.2.2 crashes encoding ~40 s of Ogg Vorbis in one call; writing in blocks avoids it (and is cheap).
WRITE_BLOCK_FRAMES = 1 << 16
# What libsndfile raises when it fails to write; soundfile asserts that a write took every frame, so a short
# write (a full disk) is an AssertionError.
_LIBRARY_ERRORS = (sf.LibsndfileError, RuntimeError, ValueError, AssertionError, OSError)


def format_from_path(path: str | Path) -> str:
    """The write format named by a file's suffix (``.oga`` counts as ogg)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    suffix = {"oga": "ogg", "wave": "wav"}.get(suffix, suffix)
    if suffix not in WRITE_FORMATS:
        raise AudioWriteError(
            f"{path}: cannot tell the format from the suffix '.{suffix}'; use one of "
            + ", ".join(f".{f}" for f in WRITE_FORMATS)
        )
    return suffix


def write_settings(fmt: str, sample_rate: int) -> tuple[int, str, str | None]:
    """The file's sample rate, libsndfile format and subtype for audio at ``sample_rate`` written as ``fmt``.

    Raises:
        AudioWriteError: an unknown format, or one this libsndfile cannot write.
    """
    if fmt not in WRITE_FORMATS:
        raise AudioWriteError(f"unknown audio format '{fmt}'; choose one of {', '.join(WRITE_FORMATS)}")
    major, subtype = WRITE_FORMATS[fmt]
    if not sf.check_format(major, subtype):
        raise AudioWriteError(
            f"the installed libsndfile ({sf.__libsndfile_version__}) cannot write {fmt}; upgrade it (mp3 needs "
            "1.1.0 or later) or choose .wav, .flac or .ogg"
        )
    if fmt == "opus" and sample_rate not in OPUS_RATES:
        return 48000, major, subtype
    if fmt == "mp3" and not 8000 <= sample_rate <= 48000:
        return 44100, major, subtype
    return sample_rate, major, subtype


class AudioFileWriter:
    """A context manager that writes ``[C, t]`` float blocks to an audio file as they come.

    The format comes from the suffix unless given; audio at a rate the format cannot hold (opus, mp3) is resampled
    on the way, streaming. Samples are clipped to -1..1. The file appears under ``path`` only when the ``with``
    block ends without an exception; otherwise nothing is left behind.

    Args:
        path: the file to write.
        sample_rate: the rate of the blocks given to :meth:`write`.
        channels: C, the channels of every block.
        format: one of :data:`WRITE_FORMATS` (default: from ``path``'s suffix).

    Raises:
        AudioWriteError: an unknown format or one this libsndfile cannot write (at construction).
        OutputWriteError: the file cannot be created or written (permission, a file in the way, full disk).
        InvalidAudioError: a block holds NaN or infinite samples.
    """

    def __init__(self, path: str | Path, sample_rate: int, channels: int, *, format: str | None = None) -> None:
        self.path = Path(path)
        self.channels = channels
        self.sample_rate = sample_rate
        self.file_rate, self._major, self._subtype = write_settings(format or format_from_path(path), sample_rate)
        self._stream = (
            soxr.ResampleStream(sample_rate, self.file_rate, channels, dtype="float32")
            if self.file_rate != sample_rate
            else None
        )
        self._atomic: contextlib.AbstractContextManager[Path] | None = None
        self._file: sf.SoundFile | None = None

    def __enter__(self) -> AudioFileWriter:
        atomic = atomic_path(self.path)
        try:
            tmp = atomic.__enter__()
        except OSError as e:
            raise write_error(self.path, e) from e
        self._atomic = atomic
        try:
            self._file = sf.SoundFile(
                str(tmp), "w", samplerate=self.file_rate, channels=self.channels, format=self._major,
                subtype=self._subtype,
            )
        except _LIBRARY_ERRORS as e:
            self._abort(e)
            raise self._mapped(e) from e
        except BaseException as e:
            self._abort(e)
            raise
        return self

    def write(self, block: np.ndarray) -> None:
        """Append ``[C, t]`` samples (a ``[t]`` array for mono)."""
        x = np.atleast_2d(np.asarray(block, dtype=np.float32))
        if x.shape[0] != self.channels:
            raise AudioWriteError(f"{self.path}: a block has {x.shape[0]} channels, the file {self.channels}")
        if not np.isfinite(x).all():
            raise InvalidAudioError(f"refusing to write audio that holds NaN or infinite samples to {self.path}")
        if self._stream is not None:
            x = self._stream.resample_chunk(np.ascontiguousarray(x.T)).T
        self._put(x)

    def _put(self, x: np.ndarray) -> None:
        assert self._file is not None, "write() outside the with block"
        data = np.clip(x, -1.0, 1.0).T
        try:
            for start in range(0, data.shape[0], WRITE_BLOCK_FRAMES):
                self._file.write(data[start : start + WRITE_BLOCK_FRAMES])
        except _LIBRARY_ERRORS as e:
            raise self._mapped(e) from e

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._atomic is not None and self._file is not None
        if error is not None:
            self._abort(error)  # the error goes on
            return
        try:
            if self._stream is not None:  # what the resampler still holds
                self._put(self._stream.resample_chunk(np.zeros((0, self.channels), np.float32), last=True).T)
            try:
                self._file.close()  # flushes what the encoder still holds
            except _LIBRARY_ERRORS as e:
                raise self._mapped(e) from e
        except BaseException as e:
            self._abort(e)
            raise
        try:
            self._atomic.__exit__(None, None, None)  # renames the finished file into place
        except OSError as e:
            raise write_error(self.path, e) from e

    def _abort(self, error: BaseException) -> None:
        """Close the file and remove it (the temporary name: nothing was published)."""
        if self._file is not None:
            with contextlib.suppress(Exception):
                self._file.close()
        assert self._atomic is not None
        self._atomic.__exit__(type(error), error, error.__traceback__)

    def _mapped(self, e: Exception) -> Exception:
        """The error a user sees for ``e``, raised by libsndfile or the OS while writing."""
        if isinstance(e, OSError):
            return write_error(self.path, e)
        # libsndfile reports a failed write(2) as "System error." without its errno: a full disk is the usual cause,
        # so look whether the disk has room left.
        if _disk_full(self.path.parent):
            return write_error(self.path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        if isinstance(e, AssertionError):  # soundfile: libsndfile took fewer frames than given
            return OutputWriteError(f"cannot write {self.path}: the write stopped short")
        return OutputWriteError(f"cannot write {self.path}: libsndfile says '{e}'")


def _disk_full(folder: Path, room: int = 1 << 20) -> bool:
    """Whether the file system holding ``folder`` has less than ``room`` bytes free for this user."""
    try:
        return shutil.disk_usage(folder).free < room
    except OSError:
        return False


def write_blocks(target: Any, data: np.ndarray, rate: int, major: str, subtype: str | None) -> None:
    """Write ``[T, C]`` samples to ``target`` (a path or a binary file object) in blocks of
    :data:`WRITE_BLOCK_FRAMES`."""
    with sf.SoundFile(target, "w", samplerate=rate, channels=data.shape[1], format=major, subtype=subtype) as f:
        for start in range(0, data.shape[0], WRITE_BLOCK_FRAMES):
            f.write(data[start : start + WRITE_BLOCK_FRAMES])
