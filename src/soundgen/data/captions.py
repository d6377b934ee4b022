"""Captions, tags, licences and categories for the clips of a dataset.

Three places can describe a source file, and they are consulted in this order, field by field (the first one
that gives a field wins):

1. a metadata file (CSV or JSONL) passed to the build: one row per file with ``path`` and any of ``caption``,
   ``tags``, ``licence`` (or ``license``), ``category``, ``source`` (and ``source_file``, the original of a
   copied file);
2. a sidecar next to the audio file: ``boom.txt`` / ``boom.wav.txt`` (the caption as plain text) or
   ``boom.json`` / ``boom.wav.json`` (an object with the same keys as a metadata row);
3. the path itself: folder and file names split into words (see :func:`words_from_name`).

The rules are documented for users in ``docs/data.md``; keep the two in step.
"""

from __future__ import annotations

import csv
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundgen.audio.archive import MEMBER_SEPARATOR
from soundgen.errors import SoundgenError


class MetadataError(SoundgenError):
    """A caption metadata file (CSV/JSONL) or a sidecar is malformed."""


# Tokens that say nothing about the sound: file-type words, versioning, editing leftovers.
NOISE_WORDS = frozenset(
    """
    sfx snd snds sound sounds audio wav wave ogg oga mp3 flac opus aif aiff wv
    final fin new old copy tmp temp test untitled edit edited mix master mastered
    v rev take ver version bak backup orig original default sample samples data file files misc
    of the an
    """.split()
)
UNKNOWN_CATEGORY = "other"
UNKNOWN_LICENCE = "unknown"

# Any character that is not a letter or digit in Unicode separates words ("naïve_café" -> "naïve", "café").
_SEPARATORS = re.compile(r"[\W_]+")
_VERSION = re.compile(r"^v\d+$|^r\d+$|^take\d+$")
_HEX = re.compile(r"^[0-9a-f]{6,}$")


@dataclass
class CaptionInfo:
    """What is known about one source file; ``None`` means "not said here" (a later place may say it).

    Attributes:
        caption: one line of text describing the sound.
        tags: keywords.
        licence: licence name or text (e.g. "CC-BY-SA-4.0", "GPL-2+").
        category: a coarse class such as "explosion" or "music/piano".
        source: the package or collection the file comes from.
        source_file: the original file when the builder is given a copy (metadata files only).
        captions: alternative captions of the same sound (metadata files only).
    """

    caption: str | None = None
    tags: list[str] | None = None
    licence: str | None = None
    category: str | None = None
    source: str | None = None
    source_file: str | None = None
    captions: list[str] | None = None

    def merged(self, fallback: CaptionInfo) -> CaptionInfo:
        """Fields of ``self`` where given, else those of ``fallback``."""
        return CaptionInfo(
            caption=self.caption if self.caption else fallback.caption,
            tags=self.tags if self.tags else fallback.tags,
            licence=self.licence if self.licence else fallback.licence,
            category=self.category if self.category else fallback.category,
            source=self.source if self.source else fallback.source,
            source_file=self.source_file if self.source_file else fallback.source_file,
            captions=self.captions if self.captions else fallback.captions,
        )


def _is_noise(token: str) -> bool:
    return (
        token in NOISE_WORDS
        or token.isdigit()
        or len(token) < 2
        or bool(_VERSION.match(token))
        or (bool(_HEX.match(token)) and any(c.isdigit() for c in token))
    )


def _is_boundary(prev: str, cur: str, nxt: str) -> bool:
    """Whether a camelCase or letter/digit boundary lies between ``prev`` and ``cur`` (``nxt`` follows ``cur``,
    ``""`` at the end). Uses Unicode case and category, so ``"grandÉcran"`` splits like ``"grandEcran"``."""
    return (
        (prev.islower() and cur.isupper())
        or (prev.isupper() and cur.isupper() and nxt.islower())
        or (prev.isalpha() and cur.isdigit())
        or (prev.isdigit() and cur.isalpha())
    )


def _camel_split(chunk: str) -> list[str]:
    """Split one separator-free chunk at camelCase and letter/digit boundaries: ``"HTTPRequest2"`` ->
    ``["HTTP", "Request", "2"]``."""
    parts: list[str] = []
    start = 0
    for i in range(1, len(chunk)):
        if _is_boundary(chunk[i - 1], chunk[i], chunk[i + 1] if i + 1 < len(chunk) else ""):
            parts.append(chunk[start:i])
            start = i
    parts.append(chunk[start:])
    return parts


def words_from_name(name: str) -> list[str]:
    """Split one file or folder name into lower-case words, dropping numbers, hashes and noise tokens.

    ``"ExplosionBig_02"`` -> ``["explosion", "big"]``; ``"door-open-final-v2"`` -> ``["door", "open"]``;
    ``"sfx_laserShot"`` -> ``["laser", "shot"]``; ``"a3f9c2d1e0"`` -> ``[]``; ``"naïve_Café"`` ->
    ``["naïve", "café"]`` (letters are Unicode letters; the name is NFC-normalised first, so an accent written
    as a combining mark stays in its word).
    """
    words: list[str] = []
    for chunk in _SEPARATORS.split(unicodedata.normalize("NFC", name)):
        if not chunk:
            continue
        if _is_noise(chunk.lower()):  # keep hashes like "a3f9c2" whole so they are recognised
            continue
        for part in _camel_split(chunk):
            token = part.lower()
            if token and not _is_noise(token):
                words.append(token)
    return words


def _dedupe(words: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for w in words:
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def caption_from_path(relative: str) -> CaptionInfo:
    """Derive caption, tags and category from a path relative to its source (``/`` separated).

    The caption is the words of the folders (outermost first) followed by the words of the file name, each
    word once; the category is the words of the outermost folder that has any (``"other"`` when none). Archive
    members (``game.pk3::sounds/boom.ogg``) count the archive's name as a folder.

    Args:
        relative: e.g. ``"weapons/ExplosionBig_02.ogg"`` or ``"base.wz::audio/sfx/door-open.ogg"``.
    """
    parts = [p for p in re.split(f"{re.escape(MEMBER_SEPARATOR)}|/", relative.replace("\\", "/")) if p]
    if not parts:
        return CaptionInfo(tags=[], category=UNKNOWN_CATEGORY)
    stem = parts[-1].rsplit(".", 1)[0] if "." in parts[-1] else parts[-1]
    folder_words = [words_from_name(_strip_archive_suffix(p)) for p in parts[:-1]]
    file_words = words_from_name(stem)
    words = _dedupe([w for ws in folder_words for w in ws] + file_words)
    category = next((" ".join(ws) for ws in folder_words if ws), UNKNOWN_CATEGORY)
    return CaptionInfo(caption=" ".join(words) or None, tags=words, category=category)


def _strip_archive_suffix(name: str) -> str:
    lower = name.lower()
    for suffix in (".zip", ".pk3", ".wz"):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def parse_tags(value: Any) -> list[str] | None:
    """Tags from a list or from a string separated by ``;``, ``,`` or ``|`` (or a JSON list); None if empty."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = [t for t in re.split(r"[;,|]", text.strip("[]")) if t]
        else:
            value = re.split(r"[;,|]", text)
    if not isinstance(value, list | tuple):
        raise MetadataError(f"tags must be a list or a ';'-separated string, got {type(value).__name__}")
    tags = [str(t).strip() for t in value if str(t).strip()]
    return tags or None


def info_from_mapping(row: Mapping[str, Any], where: str) -> CaptionInfo:
    """Read a metadata row or sidecar object (``caption``, ``tags``, ``licence``/``license``, ...)."""

    def text(key: str) -> str | None:
        value = row.get(key)
        if value is None:
            return None
        if not isinstance(value, str | int | float):
            raise MetadataError(f"{where}: '{key}' must be a string, got {type(value).__name__}")
        return str(value).strip() or None

    licence = text("licence") or text("license")
    return CaptionInfo(
        caption=text("caption"),
        tags=parse_tags(row.get("tags")),
        licence=licence,
        category=text("category"),
        source=text("source"),
        source_file=text("source_file"),
        captions=parse_alternatives(row.get("captions"), where),
    )


def parse_alternatives(value: object, where: str) -> list[str] | None:
    """Alternative captions: a list of strings or a '|'-separated string (CSV); ``None`` when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = value.split("|")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise MetadataError(f"{where}: 'captions' must be a list of strings or a '|'-separated string")
    out = [" ".join(v.split()) for v in value if v.strip()]
    return out or None


def sidecar_names(member: str) -> list[str]:
    """Possible sidecar names of an archive member or file name, JSON first."""
    stem = member.rsplit(".", 1)[0] if "." in member.rsplit("/", 1)[-1] else member
    return [stem + ".json", member + ".json", stem + ".txt", member + ".txt"]


def sidecar_from_bytes(data: bytes, where: str) -> CaptionInfo:
    """Parse a sidecar's bytes: JSON object for ``.json`` names, else the caption as text."""
    text = data.decode("utf-8", errors="replace").strip()
    if where.lower().endswith(".json"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise MetadataError(f"{where}: not valid JSON ({e.msg} at line {e.lineno})") from e
        if not isinstance(obj, dict):
            raise MetadataError(f"{where}: a JSON sidecar must be an object with a 'caption' key")
        return info_from_mapping(obj, where)
    return CaptionInfo(caption=" ".join(text.split()) or None)


@dataclass
class MetadataTable:
    """Rows of a caption metadata file, looked up by the source path of an audio file.

    Attributes:
        absolute: rows whose ``path`` is absolute, keyed by the normalised absolute path.
        relative: rows whose ``path`` is relative to a source folder, keyed by the ``/`` separated path.
        origin: the metadata file, for messages.
    """

    absolute: dict[str, CaptionInfo] = field(default_factory=dict)
    relative: dict[str, CaptionInfo] = field(default_factory=dict)
    origin: str = ""

    def __len__(self) -> int:
        return len(self.absolute) + len(self.relative)

    def lookup(self, keys: Iterable[str]) -> CaptionInfo | None:
        """The row of a file named by any of ``keys`` (absolute paths, or paths relative to its source;
        archive members as ``archive::member``), first match wins."""
        for key in keys:
            if os.path.isabs(key.split(MEMBER_SEPARATOR, 1)[0]):
                hit = self.absolute.get(_norm_abs(key))
            else:
                hit = self.relative.get(_norm_rel(key))
            if hit is not None:
                return hit
        return None


def _norm_abs(path: str) -> str:
    archive, sep, member = path.partition(MEMBER_SEPARATOR)
    return os.path.normpath(os.path.abspath(archive)) + (sep + member if sep else "")


def _norm_rel(path: str) -> str:
    archive, sep, member = path.replace("\\", "/").partition(MEMBER_SEPARATOR)
    return os.path.normpath(archive).replace("\\", "/") + (sep + member if sep else "")


def load_metadata(path: str | Path) -> MetadataTable:
    """Read a CSV (header row with a ``path`` column) or JSONL (one object per line) metadata file.

    Raises:
        MetadataError: missing file, no ``path`` column/key, malformed line (the message names the line).
    """
    p = Path(path)
    if not p.is_file():
        raise MetadataError(f"captions file {p} does not exist (pass a .csv or .jsonl file with a 'path' column)")
    table = MetadataTable(origin=str(p))
    rows = _read_csv(p) if p.suffix.lower() in (".csv", ".tsv") else _read_jsonl(p)
    for where, row in rows:
        raw = row.get("path")
        if not isinstance(raw, str) or not raw.strip():
            raise MetadataError(f"{where}: every row needs a non-empty 'path'")
        info = info_from_mapping(row, where)
        if os.path.isabs(raw.split(MEMBER_SEPARATOR, 1)[0]):
            table.absolute[_norm_abs(raw.strip())] = info
        else:
            table.relative[_norm_rel(raw.strip())] = info
    return table


def _read_csv(path: Path) -> list[tuple[str, dict[str, Any]]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        if reader.fieldnames is None or "path" not in [n.strip() for n in reader.fieldnames]:
            raise MetadataError(f"{path}: the CSV header must have a 'path' column (and caption, tags, licence, ...)")
        return [
            (f"{path}:{i + 2}", {k.strip(): v for k, v in row.items() if k is not None})
            for i, row in enumerate(reader)
        ]


def _read_jsonl(path: Path) -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, dict[str, Any]]] = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise MetadataError(f"{path}:{i}: not valid JSON ({e.msg}); expected one object per line") from e
            if not isinstance(obj, dict):
                raise MetadataError(f"{path}:{i}: expected a JSON object per line, got {type(obj).__name__}")
            rows.append((f"{path}:{i}", obj))
    return rows


def resolve_info(
    derived: CaptionInfo, sidecar: CaptionInfo | None, metadata: CaptionInfo | None, default_source: str
) -> CaptionInfo:
    """Merge the three places (metadata > sidecar > path) and fill the defaults; every field is set."""
    info = derived
    if sidecar is not None:
        info = sidecar.merged(info)
    if metadata is not None:
        info = metadata.merged(info)
    tags = info.tags or []
    return CaptionInfo(
        caption=info.caption or (" ".join(tags) if tags else "sound"),
        tags=list(tags),
        licence=info.licence or UNKNOWN_LICENCE,
        category=info.category or UNKNOWN_CATEGORY,
        source=info.source or default_source,
        source_file=info.source_file,
        captions=list(info.captions or []),
    )
