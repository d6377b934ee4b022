"""Where results live: a small key/value interface, the local filesystem first.

Keys are made by the server (``jobs/<job id>/<index>.<ext>``), never taken from user input, and are checked
against a strict pattern so that no key can climb out of the storage root. An S3 implementation only has to
provide the same five methods.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from soundgen.errors import ConfigError
from soundgen.utils import atomic_write

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


def open_storage(url: str) -> Storage:
    """The storage behind ``url`` (``file:///path``; S3 is the next scheme to add).

    Raises:
        ConfigError: an unsupported scheme.
    """
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return LocalStorage(parsed.path if parsed.scheme else url)
    raise ConfigError(f"storage URL scheme {parsed.scheme!r} is not supported yet; use file:///a/directory")
