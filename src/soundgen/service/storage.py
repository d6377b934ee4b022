"""Where results live: a small key/value interface, the local filesystem first.

Keys are made by the server (``jobs/<job id>/<index>.<ext>``), never taken from user input, and are checked
against a strict pattern so that no key can climb out of the storage root. ``s3storage.S3Storage`` provides the
same methods on a bucket; ``storage_url.open_storage`` picks one from ``SOUNDGEN_STORAGE_URL``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from soundgen.utils import atomic_write

CHUNK_BYTES = 1 << 16

_KEY = re.compile(r"^[a-z]+(/[A-Za-z0-9_-]+)*(/[A-Za-z0-9_-]+\.[a-z0-9]{1,5})?$")


def result_key(job_id: str, index: int, ext: str) -> str:
    """The storage key of result ``index`` of ``job_id`` with file extension ``ext``."""
    return check_key(f"jobs/{job_id}/{int(index)}.{ext}")


def job_prefix(job_id: str) -> str:
    """The key prefix under which every file of ``job_id`` lives."""
    return check_key(f"jobs/{job_id}")


def check_key(key: str) -> str:
    """Return ``key`` if it is a well-formed storage key, else raise ValueError (a bug, not user input)."""
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"malformed storage key {key!r}")
    return key


@dataclass
class Blob:
    """A stored value read in chunks: ``chunks`` yields its bytes in order, ``size`` is their total."""

    chunks: Iterator[bytes]
    size: int


class Storage(Protocol):
    """Blob storage for generated audio and pictures."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically (readers see the old value or the new one)."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; FileNotFoundError when absent."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds something."""
        ...

    def delete_prefix(self, prefix: str) -> None:
        """Remove every key under ``prefix`` (no error when there are none)."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A filesystem path of ``key`` when the storage is local (lets the server stream it), else None."""
        ...

    def stream(self, key: str) -> Blob:
        """The bytes of ``key`` in chunks; FileNotFoundError (before the first chunk) when absent."""
        ...

    def presigned_url(self, key: str, *, media_type: str, disposition: str) -> str | None:
        """A URL where the client can fetch ``key`` itself (answered with ``media_type`` and the
        ``Content-Disposition`` ``disposition``), or None when the server sends it."""
        ...


class LocalStorage:
    """Storage in a directory tree on the local filesystem."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> None:
        """Write through a temporary file and rename, so a crash never leaves half a file."""
        with atomic_write(self._path(key)) as f:
            f.write(data)

    def get(self, key: str) -> bytes:
        """Read the file of ``key``."""
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        """Whether the file of ``key`` exists."""
        return self._path(key).is_file()

    def delete_prefix(self, prefix: str) -> None:
        """Remove the directory (or file) of ``prefix``."""
        path = self._path(prefix)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        """The file path of ``key``."""
        return self._path(key)

    def stream(self, key: str) -> Blob:
        """The file of ``key`` in chunks (opened now, so a missing file fails here)."""
        f = self._path(key).open("rb")
        size = f.seek(0, 2)
        f.seek(0)

        def chunks() -> Iterator[bytes]:
            with f:
                while chunk := f.read(CHUNK_BYTES):
                    yield chunk

        return Blob(chunks(), size)

    def presigned_url(self, key: str, *, media_type: str, disposition: str) -> str | None:
        """None: the server sends local files itself."""
        return None
