"""Read members of zip-like archives (.zip, .pk3, .wz) without unpacking them to disk."""

from __future__ import annotations

import zipfile
from pathlib import Path

from soundgen.errors import AudioReadError

ARCHIVE_SUFFIXES = frozenset({".zip", ".pk3", ".wz"})
# A member bigger than this is refused rather than inflated into memory (zip bombs, absurd files).
MAX_MEMBER_BYTES = 1 << 30
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


def read_member(path: str | Path, member: str, max_bytes: int = MAX_MEMBER_BYTES) -> bytes:
    """Return the bytes of one archive member.

    Raises:
        AudioReadError: no such member, a corrupt member (CRC mismatch) or one larger than ``max_bytes``.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                info = zf.getinfo(member)
            except KeyError as e:
                raise AudioReadError(f"archive {path} has no member '{member}'") from e
            if info.file_size > max_bytes:
                raise AudioReadError(
                    f"archive member {path}{MEMBER_SEPARATOR}{member} is {info.file_size} bytes, over the "
                    f"{max_bytes}-byte limit"
                )
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
