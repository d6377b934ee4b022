"""The file table of a model card: every file's size and SHA-256, written into the card and checked against it
(``soundgen model verify``)."""

from __future__ import annotations

import re
from pathlib import Path

from soundgen.errors import ModelNotFoundError, SoundgenError
from soundgen.utils import sha256_file

CARD = "MODEL_CARD.md"
TABLE_HEAD = ["| file | bytes | sha256 |", "|---|---:|---|"]
_ROW = re.compile(r"^\| `([^`]+)` \| (\d+) \| `([0-9a-f]{64})` \|$")


class VerifyError(SoundgenError):
    """A model directory does not match its model card."""


def model_files(model_dir: Path) -> list[Path]:
    """Every file of a model directory but the card and hidden files, sorted by path."""
    return [
        path
        for path in sorted(p for p in model_dir.rglob("*") if p.is_file())
        if path.relative_to(model_dir).as_posix() != CARD
        and not any(part.startswith(".") for part in path.relative_to(model_dir).parts)
    ]


def file_hashes(model_dir: Path) -> list[tuple[str, int, str]]:
    """``(relative path, bytes, sha256)`` of every file but the card, sorted by path."""
    return [
        (path.relative_to(model_dir).as_posix(), path.stat().st_size, sha256_file(path))
        for path in model_files(model_dir)
    ]


def table_lines(rows: list[tuple[str, int, str]]) -> list[str]:
    """The Markdown table of ``rows`` (:func:`file_hashes`), as :func:`card_hashes` reads it back."""
    return [*TABLE_HEAD, *(f"| `{rel}` | {size} | `{digest}` |" for rel, size, digest in rows)]


def card_hashes(card_text: str) -> dict[str, tuple[int, str]]:
    """The file table of a model card: relative path -> (bytes, sha256)."""
    out = {}
    for line in card_text.splitlines():
        m = _ROW.match(line.strip())
        if m:
            out[m.group(1)] = (int(m.group(2)), m.group(3))
    return out


def verify_model(model_dir: str | Path) -> list[str]:
    """Check every file of ``model_dir`` against the SHA-256 table of its model card.

    Returns:
        The files checked.

    Raises:
        ModelNotFoundError: no directory or no card; VerifyError: a file is missing, extra or changed.
    """
    root = Path(model_dir)
    card = root / CARD
    if not card.is_file():
        raise ModelNotFoundError(f"no {CARD} in {root}: not a released model directory")
    expected = card_hashes(card.read_text(encoding="utf-8"))
    if not expected:
        raise VerifyError(f"{card} has no file table (| `path` | bytes | `sha256` |)")
    actual = {rel: (size, digest) for rel, size, digest in file_hashes(root)}
    problems = [f"missing: {rel}" for rel in sorted(set(expected) - set(actual))]
    problems += [f"not in the card: {rel}" for rel in sorted(set(actual) - set(expected))]
    problems += [f"changed: {rel}" for rel in sorted(set(expected) & set(actual)) if expected[rel] != actual[rel]]
    if problems:
        raise VerifyError(f"{root} does not match its model card: " + "; ".join(problems))
    return sorted(expected)
