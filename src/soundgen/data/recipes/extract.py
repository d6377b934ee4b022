"""Extract a package's audio into the staging folder, with a caption, category and licence for each file.

Handled formats: plain ogg/wav/flac/mp3/opus files (hard-linked, or copied across file systems), members of
zip-like archives (``.pk3``, ``.wz``, ``.zip``), Doom WADs (``DS*`` DMX sound lumps to WAV; MUS/MIDI music
lumps to MIDI files for rendering), WavPack (``.wv``) decoded to FLAC through ffmpeg, and MIDI files (kept
for rendering). Identical files (by content hash) are staged once per run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from soundgen.audio.archive import ARCHIVE_SUFFIXES, list_archive, member_path, read_member
from soundgen.audio.io import ffmpeg_path, write_audio
from soundgen.data.recipes import wad
from soundgen.data.recipes.describe import describe_effect
from soundgen.data.recipes.packages import Licence, PackageSpec
from soundgen.errors import AudioReadError, CorruptFileError, MissingDependencyError
from soundgen.utils import atomic_path, atomic_write

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = frozenset({".ogg", ".oga", ".wav", ".flac", ".mp3", ".opus", ".aif", ".aiff"})
MIDI_SUFFIXES = frozenset({".mid", ".midi"})
WAVPACK_SUFFIX = ".wv"
WAD_SUFFIX = ".wad"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class StagedClip:
    """One audio file in the staging folder and what the dataset builder should record for it.

    Attributes:
        path: location relative to the staging folder (``/`` separated).
        source_file: where it came from (``/usr/share/.../0snd.pk3::sound/boom.ogg``).
        captions: other plain-language captions of the same sound (training draws one of all of them).
    """

    path: str
    caption: str
    tags: list[str]
    licence: str
    category: str
    source: str
    source_file: str
    captions: list[str] = field(default_factory=list)

    def record(self) -> dict[str, object]:
        """The metadata JSONL row for the builder."""
        return {
            "path": self.path,
            "caption": self.caption,
            "tags": self.tags,
            "licence": self.licence,
            "category": self.category,
            "source": self.source,
            "source_file": self.source_file,
            **({"captions": self.captions} if self.captions else {}),
        }


@dataclass
class MidiFile:
    """A MIDI file found in a package (or converted from a MUS lump), waiting to be rendered.

    Attributes:
        path: the MIDI file on disk (in the recipe's work folder or the package).
        name: words naming the piece (``"e1m1"``, ``"transport tycoon theme"``).
    """

    path: Path
    name: str
    source: str
    title: str
    licence: str
    source_file: str
    tempo_known: bool = True


@dataclass
class Extraction:
    """What one package contributed: staged clips, MIDI files to render, and files that were skipped."""

    clips: list[StagedClip] = field(default_factory=list)
    midis: list[MidiFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    duplicates: int = 0


class Stager:
    """Writes files into ``staging/`` (audio) and ``work/`` (MIDI), once per distinct content."""

    def __init__(self, staging: Path, work: Path) -> None:
        self.staging, self.work = staging, work
        self.seen: set[str] = set()

    def first_time(self, data: bytes) -> bool:
        """True the first time these bytes are offered (later identical files are duplicates)."""
        digest = hashlib.sha256(data).hexdigest()
        if digest in self.seen:
            return False
        self.seen.add(digest)
        return True

    def write_bytes(self, relative: str, data: bytes, root: Path | None = None) -> Path:
        """Write ``data`` at ``root/relative`` (atomically; kept when already there)."""
        target = (root or self.staging) / relative
        if not (target.is_file() and target.stat().st_size == len(data)):
            with atomic_write(target) as f:
                f.write(data)
        return target

    def link(self, relative: str, source: Path) -> Path:
        """Hard-link ``source`` into the staging folder, copying when linking is not possible."""
        target = self.staging / relative
        if target.is_file() and target.stat().st_size == source.stat().st_size:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            tmp.unlink()
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
        return target


def safe_relative(*parts: str) -> str:
    """A staging path from path parts, with unsafe characters replaced and no ``..``."""
    pieces = [p for part in parts for p in PurePosixPath(part.replace("\\", "/")).parts]
    clean = [_UNSAFE.sub("_", p).strip("._") or "_" for p in pieces if p not in ("/", "..", ".")]
    return "/".join(clean)


def package_relative(path: Path) -> str:
    """The part of an installed path that names the sound: after ``/usr/share/games/`` or ``/usr/share/``."""
    parts = path.parts
    for root in (("usr", "share", "games"), ("usr", "share")):
        for i in range(len(parts) - len(root)):
            if parts[i : i + len(root)] == root:
                return "/".join(parts[i + len(root) :])
    return "/".join(parts[-4:])


class PackageExtractor:
    """Extracts one package's files. ``limit`` caps the clips staged (for smoke runs)."""

    def __init__(self, spec: PackageSpec, licence: Licence, stager: Stager, limit: int | None = None) -> None:
        self.spec, self.licence, self.stager, self.limit = spec, licence, stager, limit
        self.result = Extraction()

    def full(self) -> bool:
        """True when the clip limit is reached."""
        return self.limit is not None and len(self.result.clips) >= self.limit

    def run(self, files: Iterable[Path]) -> Extraction:
        """Extract every usable file; unreadable ones are logged and listed in ``skipped``."""
        for path in sorted(files):
            if self.full():
                break
            try:
                self.extract_file(path)
            except (AudioReadError, CorruptFileError, MissingDependencyError, OSError) as e:
                log.warning("skipping %s: %s", path, e)
                self.result.skipped.append(f"{path}: {e}")
        return self.result

    def extract_file(self, path: Path) -> None:
        """Dispatch one installed file on its suffix."""
        suffix = path.suffix.lower()
        rel = package_relative(path)
        if suffix in AUDIO_SUFFIXES:
            data = path.read_bytes()
            if self.stager.first_time(data):
                self._add(self.stager.link(safe_relative(self.spec.name, rel), path), rel, str(path))
            else:
                self.result.duplicates += 1
        elif suffix == WAVPACK_SUFFIX:
            self._wavpack(path.read_bytes(), rel, str(path))
        elif suffix in MIDI_SUFFIXES:
            self._midi(path.read_bytes(), rel, str(path))
        elif suffix in ARCHIVE_SUFFIXES:
            self.extract_archive(path, rel)
        elif suffix == WAD_SUFFIX:
            self.extract_wad(path, rel)

    def extract_archive(self, path: Path, rel: str) -> None:
        """Stage the audio, WavPack and MIDI members of a zip-like archive."""
        for member in list_archive(path):
            if self.full():
                return
            suffix = PurePosixPath(member).suffix.lower()
            if suffix not in AUDIO_SUFFIXES | MIDI_SUFFIXES | {WAVPACK_SUFFIX}:
                continue
            data = read_member(path, member)
            member_rel, origin = f"{rel}/{member}", member_path(path, member)
            if suffix == WAVPACK_SUFFIX:
                self._wavpack(data, member_rel, origin)
            elif suffix in MIDI_SUFFIXES:
                self._midi(data, member_rel, origin)
            elif self.stager.first_time(data):
                self._add(self.stager.write_bytes(safe_relative(self.spec.name, member_rel), data), member_rel, origin)
            else:
                self.result.duplicates += 1

    def extract_wad(self, path: Path, rel: str) -> None:
        """Stage the DMX sound lumps of a WAD as WAV files and keep its music lumps as MIDI."""
        for lump in wad.read_wad(path.read_bytes(), str(path)):
            if self.full():
                return
            origin, lump_rel = member_path(path, lump.name), f"{rel}/{lump.name}"
            if lump.name.startswith("DS") and wad.is_dmx_sound(lump.data):
                if not self.stager.first_time(lump.data):
                    self.result.duplicates += 1
                    continue
                sound = wad.decode_dmx_sound(lump.data, origin)
                target = self.stager.staging / safe_relative(self.spec.name, lump_rel + ".wav")
                if not target.is_file():
                    write_audio(target, sound.samples, sound.sample_rate)
                self._add(target, lump_rel, origin, lump=lump.name)
            elif lump.data.startswith(wad.MUS_MAGIC):
                midi = wad.mus_to_midi(lump.data, origin)
                self._midi(midi, lump_rel + ".mid", origin, tempo_known=False, name=_music_lump_name(lump.name))
            elif lump.data.startswith(wad.MIDI_MAGIC):
                self._midi(lump.data, lump_rel + ".mid", origin, name=_music_lump_name(lump.name))

    def _add(self, target: Path, rel: str, origin: str, lump: str | None = None) -> None:
        info = describe_effect(rel, self.spec, lump=lump)
        self.result.clips.append(
            StagedClip(
                path=target.relative_to(self.stager.staging).as_posix(),
                caption=info.caption,
                tags=info.tags,
                licence=self.licence.for_path(origin),
                category=info.category,
                source=self.spec.name,
                source_file=origin,
            )
        )

    def _wavpack(self, data: bytes, rel: str, origin: str) -> None:
        if not self.stager.first_time(data):
            self.result.duplicates += 1
            return
        target = self.stager.staging / safe_relative(self.spec.name, rel + ".flac")
        if not target.is_file():
            decode_wavpack(data, target, origin)
        self._add(target, rel, origin)

    def _midi(self, data: bytes, rel: str, origin: str, tempo_known: bool = True, name: str | None = None) -> None:
        if not data.startswith(wad.MIDI_MAGIC) or not self.stager.first_time(data):
            return
        target = self.stager.write_bytes(safe_relative(self.spec.name, rel), data, root=self.stager.work)
        name = name or " ".join(PurePosixPath(rel).stem.replace("_", " ").split()) or self.spec.title
        self.result.midis.append(
            MidiFile(
                target, name, self.spec.name, self.spec.title, self.licence.for_path(origin), origin, tempo_known
            )
        )


def _music_lump_name(lump: str) -> str:
    """``D_E1M1`` -> ``"E1M1"``, ``D_RUNNIN`` -> ``"RUNNIN"`` (Doom music lumps carry a ``D_`` prefix)."""
    return lump[2:] if lump.startswith("D_") and len(lump) > 2 else lump


def decode_wavpack(data: bytes, target: Path, label: str) -> None:
    """Decode WavPack bytes to a FLAC file with ffmpeg (atomically).

    Raises:
        MissingDependencyError: ffmpeg is not installed.
        AudioReadError: ffmpeg cannot decode the data.
    """
    exe = ffmpeg_path()
    if exe is None:
        raise MissingDependencyError("decoding WavPack (.wv) needs ffmpeg: install it (apt-get install ffmpeg)")
    with atomic_path(target) as tmp:
        cmd = [exe, "-nostdin", "-v", "error", "-y", "-f", "wv", "-i", "pipe:0", "-f", "flac", str(tmp)]
        proc = subprocess.run(cmd, input=data, capture_output=True, check=False)
        if proc.returncode != 0:
            raise AudioReadError(f"ffmpeg cannot decode WavPack {label}: {proc.stderr.decode(errors='replace')[-300:]}")
