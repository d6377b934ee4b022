"""Read members of zip-like archives (.zip, .pk3, .wz) without unpacking them to disk."""

from __future__ import annotations

import zipfile
from pathlib import Path

from soundgen.errors import AudioReadError

ARCHIVE_SUFFIXES = frozenset({".zip", ".pk3", ".wz"})
# A member bigger than this is refused rather than inflated (zip bombs, absurd files).
MAX_MEMBER_BYTES = 1 << 30
# A member that inflates more than this many times over is refused too, once over MIN_RATIO_CHECK_BYTES: real
# audio deflates to 1-3x (PCM) or not at all (FLAC, Ogg, MP3); even long digital silence stays under ~100x,
# while a bomb of zeros reaches 1000x.
MAX_COMPRESSION_RATIO = 200
MIN_RATIO_CHECK_BYTES = 1 << 20
MEMBER_SEPARATOR = "::"


def list_archive(path: str | Path) -> list[str]:
    """Names of the file members of an archive (folders left out), in archive order.

    Raises:
        AudioReadError: the file is not a readable zip archive.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            return [i.filename for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise AudioReadError(f"cannot open archive {path}: {e}") from e


def member_problem(info: zipfile.ZipInfo, max_bytes: int = MAX_MEMBER_BYTES) -> str | None:
    """Why a member must not be inflated (too big, or compressed like a zip bomb), or None when it may be."""
    if info.file_size > max_bytes:
        return f"{info.file_size} bytes, over the {max_bytes}-byte limit"
    if info.file_size > MIN_RATIO_CHECK_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
        ratio = info.file_size / max(info.compress_size, 1)
        return (f"{info.file_size} bytes compressed {ratio:.0f}:1, over the {MAX_COMPRESSION_RATIO}:1 limit "
                "(a zip bomb?)")
    return None


def read_member(path: str | Path, member: str, max_bytes: int = MAX_MEMBER_BYTES) -> bytes:
    """Return the bytes of one archive member.

    Raises:
        AudioReadError: no such member, a corrupt member (CRC mismatch), or one larger than ``max_bytes`` or
            compressed more than :data:`MAX_COMPRESSION_RATIO` times over.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError as e:
                raise AudioReadError(f"archive {path} has no member '{member}'") from e
            problem = member_problem(info, max_bytes)
            if problem is not None:
                raise AudioReadError(f"archive member {path}{MEMBER_SEPARATOR}{member}: {problem}")
            return zf.read(info)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        raise AudioReadError(f"cannot read {path}{MEMBER_SEPARATOR}{member}: {e}") from e


def split_member_path(source: str) -> tuple[Path, str] | None:
    """Split ``archive.pk3::sounds/boom.ogg`` into the archive path and the member name, if it is one."""
    if MEMBER_SEPARATOR not in source:
        return None
    archive, member = source.split(MEMBER_SEPARATOR, 1)
    if Path(archive).suffix.lower() not in ARCHIVE_SUFFIXES or not member:
        return None
    return Path(archive), member


def member_path(archive: str | Path, member: str) -> str:
    """``archive.pk3::sounds/boom.ogg``: how an archive member is named in manifests, reports and on the command
    line (:func:`split_member_path` reads it back)."""
    return f"{archive}{MEMBER_SEPARATOR}{member}"
