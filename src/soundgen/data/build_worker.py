"""The per-file half of the dataset builder: find audio in sources, and turn one file into clips.

:func:`scan_sources` lists every audio file in folders (recursively), zip-like archives and single files.
:func:`process_item` runs in a worker process: decode -> mono -> resample -> trim silence -> slice -> write
PCM16 WAVs named by the hash of their samples. It never raises for a bad file: the reason is in its result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import soundfile as sf

from soundgen.audio.archive import ARCHIVE_SUFFIXES, member_path
from soundgen.audio.io import trim_silence
from soundgen.audio.stream import MonoDecode, decode_mono
from soundgen.data.captions import sidecar_names
from soundgen.data.source_io import UnsafeSourceError, check_regular, open_source, printable, read_small, utf8_name
from soundgen.errors import AudioReadError, InvalidAudioError, SoundgenError
from soundgen.utils import atomic_path

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = frozenset(
    ".wav .wave .flac .ogg .oga .opus .mp3 .aif .aiff .aifc .au .caf .w64 .wv .m4a .aac .wma .mka".split()
)
SkipReason = Literal[
    "empty", "corrupt", "truncated", "invalid", "silent", "too_short", "too_long", "too_large", "not_a_file",
    "bad_name", "unreadable", "write_failed", "error",
]
# Reasons that depend only on the file and the settings: remembered in the cache, not retried.
STABLE_REASONS = frozenset(
    {"empty", "corrupt", "truncated", "invalid", "silent", "too_short", "too_long", "too_large"}
)
MAX_SIDECAR_BYTES = 1 << 20


class DataSourceError(SoundgenError):
    """A dataset source (folder, archive or file) is missing or unusable."""


@dataclass(frozen=True)
class ProcessSettings:
    """The settings that change the processed audio (all of them go into the cache key).

    Attributes:
        sample_rate: output rate in Hz.
        min_duration: clips shorter than this (seconds, after trimming) are skipped.
        max_duration: longer audio is sliced into equal segments no longer than this (seconds).
        max_file_duration: files longer than this (seconds) are skipped, to bound memory.
        silence_threshold_db: frames quieter than this (RMS dBFS) count as silence.
        trim: cut leading and trailing silence.
    """

    sample_rate: int = 16000
    min_duration: float = 0.05
    max_duration: float = 30.0
    max_file_duration: float = 1200.0
    silence_threshold_db: float = -50.0
    trim: bool = True

    def fingerprint(self) -> str:
        """Short hash of the settings (and of the processing version)."""
        text = json.dumps([PROCESS_VERSION, *self.__dict__.values()])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


PROCESS_VERSION = 1


@dataclass(frozen=True)
class SourceItem:
    """One audio file found in a source.

    Attributes:
        source: default source name (the folder or archive name).
        path: absolute path of the file (of the archive, for members).
        member: the archive member name, or None for plain files.
        relative: the path relative to the source, ``/`` separated, used to derive captions and splits.
        keys: every name a metadata row may use for this file (absolute and relative forms).
        size: bytes of the file (of the member, for members).
        stamp: modification time in ns (CRC of the member, for members) for the cache key.
        sidecar: the sidecar file (or member) describing this file, if any.
    """

    source: str
    path: str
    member: str | None
    relative: str
    keys: tuple[str, ...]
    size: int
    stamp: int
    sidecar: str | None = None

    @property
    def source_file(self) -> str:
        """``path`` or ``path::member``: the original file, as written in manifests and reports."""
        return member_path(self.path, self.member) if self.member is not None else self.path

    def cache_key(self, settings: ProcessSettings) -> str:
        text = json.dumps([self.source_file, self.size, self.stamp, settings.fingerprint()])
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Segment:
    """One written clip: ``id`` (hash of its PCM16 samples), ``duration`` and ``start`` in the source (s)."""

    id: str
    duration: float
    start: float


@dataclass
class ItemResult:
    """What became of one source file: its clips, or why it was skipped."""

    key: str
    source_file: str
    status: Literal["ok", "skipped"]
    reason: str = ""
    detail: str = ""
    segments: list[Segment] = field(default_factory=list)
    input_duration: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key, "source_file": self.source_file, "status": self.status, "reason": self.reason,
            "detail": self.detail, "input_duration": self.input_duration,
            "segments": [s.__dict__ for s in self.segments],
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> ItemResult:
        segs = d.get("segments") or []
        if not isinstance(segs, list):
            raise ValueError("segments must be a list")
        return cls(
            key=str(d["key"]), source_file=str(d["source_file"]), status="ok" if d["status"] == "ok" else "skipped",
            reason=str(d.get("reason", "")), detail=str(d.get("detail", "")),
            segments=[Segment(str(s["id"]), float(s["duration"]), float(s["start"])) for s in segs],
            input_duration=float(d.get("input_duration", 0.0)),  # type: ignore[arg-type]
        )


def clip_location(clip_id: str) -> str:
    """Where a clip's WAV lives, relative to the dataset: ``audio/<id[:2]>/<id>.wav``."""
    return f"audio/{clip_id[:2]}/{clip_id}.wav"


# ----------------------------------------------------------------------------------------------- scanning


def scan_sources(sources: list[Path], exclude: Path | None = None) -> tuple[list[SourceItem], list[ItemResult]]:
    """Find the audio files of every source, sorted by ``source_file``.

    Args:
        sources: folders (searched recursively, archives inside included), archives, single audio files.
        exclude: a folder never searched (the output folder, when it lies inside a source).

    Returns:
        The items, and a skipped result for each archive that cannot be opened.

    Raises:
        DataSourceError: a source does not exist or is neither a folder, an archive nor an audio file.
    """
    items: list[SourceItem] = []
    broken: list[ItemResult] = []
    for src in sources:
        src = Path(src).absolute()
        if not utf8_name(str(src)):
            raise DataSourceError(f"source {printable(src)}: its path is not valid UTF-8; rename it")
        if not src.exists():
            raise DataSourceError(f"source {src} does not exist (pass folders, .zip/.pk3/.wz archives or audio files)")
        if src.is_dir():
            _scan_folder(src, exclude, items, broken)
        elif src.suffix.lower() in ARCHIVE_SUFFIXES | AUDIO_SUFFIXES:
            try:
                check_regular(src)
            except UnsafeSourceError as e:
                raise DataSourceError(f"source {e}: pass folders, archives or audio files") from e
            if src.suffix.lower() in ARCHIVE_SUFFIXES:
                _scan_archive(src, src.stem, None, items, broken)
            else:
                items.append(_file_item(src, src.parent.name or "files", src.name))
        else:
            raise DataSourceError(
                f"source {src} is not a folder, a .zip/.pk3/.wz archive or an audio file "
                f"({', '.join(sorted(AUDIO_SUFFIXES))})"
            )
    unique = {i.source_file: i for i in items}  # the same file named twice is built once
    return sorted(unique.values(), key=lambda i: i.source_file), broken


def _scan_folder(root: Path, exclude: Path | None, items: list[SourceItem], broken: list[ItemResult]) -> None:
    # The output folder is compared resolved, so an --out reached through ".." or a link is left out too.
    skip_dir = exclude.resolve() if exclude is not None else None

    def unreadable(e: OSError) -> None:  # os.walk's errors: a folder without read permission
        where = printable(e.filename or root)
        broken.append(ItemResult(where, where, "skipped", "unreadable", f"cannot list the folder: {e.strerror}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        here = Path(dirpath)
        kept = []
        for d in sorted(dirnames):
            if d.startswith(".") or (skip_dir is not None and (here / d).resolve() == skip_dir):
                continue
            if not utf8_name(d):
                where = printable(here / d)
                broken.append(ItemResult(where, where, "skipped", "bad_name", "the folder's name is not valid UTF-8 "
                                         "(rename it); the files in it are left out"))
                continue
            kept.append(d)
        dirnames[:] = kept
        names = set(filenames)
        for name in sorted(filenames):
            if not name.startswith("."):  # hidden files, e.g. macOS "._boom.wav" resource forks
                _scan_file(root, here / name, names, items, broken)


def _scan_file(root: Path, path: Path, names: set[str], items: list[SourceItem], broken: list[ItemResult]) -> None:
    suffix = path.suffix.lower()
    if suffix not in AUDIO_SUFFIXES and suffix not in ARCHIVE_SUFFIXES:
        return
    where = printable(path)
    if not utf8_name(path.name):  # it would reach manifests, captions and split keys, which are UTF-8
        broken.append(ItemResult(where, where, "skipped", "bad_name", "the file name is not valid UTF-8 (rename it)"))
        return
    try:
        st = check_regular(path)
    except UnsafeSourceError as e:  # a FIFO would hang the build, a link to /dev/zero fill memory
        broken.append(ItemResult(where, where, "skipped", "not_a_file", str(e)))
        return
    except OSError as e:  # a dangling link, a file removed while scanning, no permission
        reason = "unreadable" if isinstance(e, PermissionError) else "corrupt"
        broken.append(ItemResult(where, where, "skipped", reason, f"cannot read: {e.strerror or e}"))
        return
    rel = path.relative_to(root).as_posix()
    if suffix in AUDIO_SUFFIXES:
        items.append(_file_item(path, root.name, rel, names, st))
    else:
        _scan_archive(path, root.name, rel, items, broken)


def _file_item(
    path: Path, source: str, rel: str, siblings: set[str] | None = None, st: os.stat_result | None = None
) -> SourceItem:
    st = st or path.stat()
    if siblings is None:
        siblings = {p.name for p in path.parent.iterdir()} if path.parent.is_dir() else set()
    sidecar = next((n for n in sidecar_names(path.name) if n in siblings and n != path.name), None)
    return SourceItem(
        source=source, path=str(path), member=None, relative=rel, keys=(str(path), rel), size=st.st_size,
        stamp=st.st_mtime_ns, sidecar=str(path.with_name(sidecar)) if sidecar else None,
    )


def _scan_archive(
    path: Path, source: str, rel: str | None, items: list[SourceItem], broken: list[ItemResult]
) -> None:
    """Add the audio members of an archive; ``rel`` is the archive's path inside a source folder, if any."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        broken.append(ItemResult(str(path), str(path), "skipped", "corrupt", f"cannot open archive: {e}"))
        return
    names = {i.filename for i in infos}
    for info in infos:
        if Path(info.filename).suffix.lower() not in AUDIO_SUFFIXES:
            continue
        member = info.filename
        sidecar = next((n for n in sidecar_names(member) if n in names and n != member), None)
        # Members of an archive given as a source are named by their path inside it; members of an archive
        # found in a folder keep the archive's path in front ("sub/game.pk3::sounds/boom.ogg").
        relative = member_path(rel, member) if rel is not None else member
        keys = (member_path(path, member), relative) + ((member_path(path.name, member),) if rel is None else ())
        items.append(
            SourceItem(
                source=source, path=str(path), member=member, relative=relative, keys=keys,
                size=info.file_size, stamp=info.CRC, sidecar=sidecar,
            )
        )


# --------------------------------------------------------------------------------------------- processing

def read_sidecar(item: SourceItem) -> bytes:
    """The bytes of an item's sidecar (a file beside it, or a member of its archive), at most 1 MiB.

    Raises:
        AudioReadError: not a regular file, or too large.
        OSError, KeyError, zipfile.BadZipFile: missing or unreadable.
    """
    assert item.sidecar is not None
    if item.member is None:
        return read_small(item.sidecar, None, MAX_SIDECAR_BYTES)
    return read_small(item.path, item.sidecar, MAX_SIDECAR_BYTES)


class _Skip(Exception):
    def __init__(self, reason: SkipReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def process_item(item: SourceItem, settings: ProcessSettings, dataset_dir: str) -> ItemResult:
    """Turn one source file into clips written under ``dataset_dir/audio``; never raises for a bad file.

    Returns:
        ``status="ok"`` with the segments, or ``status="skipped"`` with a reason (see ``SkipReason``).
    """
    key = item.cache_key(settings)
    try:
        segments, seconds = _process(item, settings, Path(dataset_dir))
    except _Skip as s:
        return ItemResult(key, item.source_file, "skipped", s.reason, s.detail)
    except Exception as e:  # noqa: BLE001 - one broken file must never stop a build
        log.debug("unexpected failure on %s", item.source_file, exc_info=True)
        return ItemResult(key, item.source_file, "skipped", "error", f"{type(e).__name__}: {e}")
    return ItemResult(key, item.source_file, "ok", segments=segments, input_duration=seconds)


def _process(item: SourceItem, settings: ProcessSettings, dataset_dir: Path) -> tuple[list[Segment], float]:
    try:
        with open_source(item.path, item.member) as (source, size):
            if size == 0:
                raise _Skip("empty", "the file is empty (0 bytes)")
            decoded = _decode(source, item, settings)
    except UnsafeSourceError as e:
        raise _Skip(e.reason, str(e)) from e
    except (zipfile.BadZipFile, zlib.error, KeyError, EOFError) as e:
        raise _Skip("corrupt", f"cannot read: {e}") from e
    except OSError as e:  # no permission, an I/O error: not the file's content, so retried by the next build
        raise _Skip("unreadable", f"cannot read: {e.strerror or e}") from e
    x, sr = decoded.samples, settings.sample_rate
    if settings.trim:
        x = trim_silence(x, sr, threshold_db=settings.silence_threshold_db)
    peak = max(float(x.max()), -float(x.min())) if x.size else 0.0  # no |x| copy of a long file
    if x.shape[1] == 0 or peak <= 10 ** (settings.silence_threshold_db / 20):
        raise _Skip("silent", f"no sound above {settings.silence_threshold_db:g} dBFS")
    if x.shape[1] < settings.min_duration * sr:
        raise _Skip("too_short", f"{x.shape[1] / sr:.3f} s of sound, under the {settings.min_duration:g} s minimum")
    segments = []
    for start, piece in _slices(x[0], sr, settings.max_duration):
        pcm = np.round(np.clip(piece, -1.0, 1.0) * 32767.0).astype("<i2")
        clip_id = hashlib.sha256(pcm.tobytes() + struct.pack("<I", sr)).hexdigest()[:20]
        try:
            _write_pcm16(dataset_dir / clip_location(clip_id), pcm, sr)
        except (OSError, sf.LibsndfileError) as e:  # the dataset's disk, not the file: retried next build
            raise _Skip("write_failed", f"cannot write its clip into {dataset_dir}: {e}") from e
        segments.append(Segment(clip_id, round(len(pcm) / sr, 6), round(start / sr, 6)))
    return segments, decoded.source_duration


def _decode(source: Path | BinaryIO, item: SourceItem, settings: ProcessSettings) -> MonoDecode:
    """Decode to mono at the target rate, in blocks; a file shorter than its header says is ``truncated``."""
    label = item.member or item.path
    try:
        decoded = decode_mono(
            source, sample_rate=settings.sample_rate, max_duration=settings.max_file_duration, name=label
        )
    except InvalidAudioError as e:
        raise _Skip("invalid", str(e)) from e
    except AudioReadError as e:
        text = str(e)
        reason: SkipReason = "too_long" if "longer than" in text else ("empty" if "zero length" in text else "corrupt")
        raise _Skip(reason, text) from e
    declared, got = decoded.declared_frames, decoded.source_frames
    # 1 % slack: MP3 headers estimate their length; lossless headers are exact.
    if declared is not None and got < declared * 0.99 - 64:
        raise _Skip("truncated", f"decoded {got} of the {declared} frames its header declares (cut short)")
    return decoded


def _slices(x: np.ndarray, sample_rate: int, max_duration: float) -> list[tuple[int, np.ndarray]]:
    """Cut ``[T]`` into ``ceil(T / max)`` equal pieces, so no piece is a tiny tail; ``(start, piece)`` pairs."""
    limit = max(1, int(max_duration * sample_rate))
    n = max(1, -(-len(x) // limit))
    bounds = [round(i * len(x) / n) for i in range(n + 1)]
    return [(bounds[i], x[bounds[i] : bounds[i + 1]]) for i in range(n)]


def _write_pcm16(path: Path, pcm: np.ndarray, sample_rate: int) -> None:
    """Write a mono PCM16 WAV unless a file with this content id is already there."""
    if path.is_file() and path.stat().st_size == 44 + 2 * len(pcm):
        return
    with atomic_path(path) as tmp:
        sf.write(str(tmp), pcm, sample_rate, format="WAV", subtype="PCM_16")
