"""The dataset manifest: one JSON object per clip, one file per split.

Layout of a dataset directory::

    DATASET/
      audio/<id[:2]>/<id>.wav     mono PCM16 WAV at the dataset's sample rate, one file per clip
      train/manifest.jsonl        one record per clip (also valid/ and test/)
      report.json, report.md      what was built and what was skipped, and why
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from soundgen.errors import CorruptFileError
from soundgen.utils import atomic_write

Split = Literal["train", "valid", "test"]
SPLITS: tuple[Split, ...] = ("train", "valid", "test")


@dataclass
class Clip:
    """One clip of a dataset.

    Attributes:
        id: stable identifier derived from the clip's content.
        location: path of the clip's audio, relative to the dataset directory.
        duration: seconds.
        sample_rate: samples per second of the stored audio.
        caption: text describing the clip.
        tags: extra labels (words, package categories).
        category: one label a classifier can learn ("explosion", "music/piano", ...; "other" when unknown).
        source: where it came from (package or folder name).
        source_file: the original file (``archive::member`` for archive members), for attribution and splits.
        licence: the licence of the source.
        split: train, valid or test.
        captions: other captions of the same sound; training draws one of ``caption`` and these.
    """

    id: str
    location: str
    duration: float
    sample_rate: int
    caption: str
    tags: list[str] = field(default_factory=list)
    category: str = "other"
    source: str = ""
    source_file: str = ""
    licence: str = "unknown"
    split: str = "train"
    captions: list[str] = field(default_factory=list)

    def path(self, dataset_dir: str | Path) -> Path:
        """Absolute path of this clip's audio file."""
        return Path(dataset_dir) / self.location

    def to_json(self) -> str:
        data = asdict(self)
        if not data["captions"]:
            del data["captions"]  # manifests of single-caption datasets stay as they were
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Clip:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def manifest_path(dataset_dir: str | Path, split: str) -> Path:
    """``DATASET/<split>/manifest.jsonl``."""
    return Path(dataset_dir) / split / "manifest.jsonl"


def read_manifest(dataset_dir: str | Path, split: str) -> list[Clip]:
    """Read one split's clips.

    Raises:
        FileNotFoundError-like CorruptFileError: the manifest is missing or a line is not a valid record.
    """
    path = manifest_path(dataset_dir, split)
    if not path.exists():
        raise CorruptFileError(
            f"{path} not found: is {dataset_dir} a dataset built by 'soundgen data build'? (split '{split}')"
        )
    clips: list[Clip] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                clips.append(Clip.from_dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError) as e:
                raise CorruptFileError(f"{path}:{lineno}: not a valid manifest record ({e})") from e
    return clips


def write_manifest(dataset_dir: str | Path, split: str, clips: list[Clip]) -> Path:
    """Write one split's manifest atomically (sorted by id, so rebuilds are byte-identical)."""
    path = manifest_path(dataset_dir, split)
    with atomic_write(path, "w") as f:
        for clip in sorted(clips, key=lambda c: c.id):
            f.write(clip.to_json() + "\n")
    return path
