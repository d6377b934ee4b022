"""Open the files a dataset build reads, safely: regular files only, archive members within limits.

A FIFO named ``x.wav`` would hang a build forever and a ``.wav`` link to ``/dev/zero`` would read until memory
runs out, so anything but a regular file is refused (opened without blocking, then checked with ``fstat``, so a
file swapped after the scan is caught too). Archive members are refused past a size and a compression ratio
(:func:`soundgen.audio.archive.member_problem`) and are read through a handle, never inflated whole.
"""

from __future__ import annotations

import contextlib
import os
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO, Literal

from soundgen.audio.archive import member_path, member_problem
from soundgen.errors import AudioReadError

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))
_ZIPS: dict[str, zipfile.ZipFile] = {}


class UnsafeSourceError(AudioReadError):
    """A source file that must not be read: ``reason`` is ``not_a_file`` or ``too_large``."""

    def __init__(self, reason: Literal["not_a_file", "too_large"], detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def special_kind(mode: int) -> str | None:
    """What a non-regular file is (``a FIFO``, ``a character device``, ...), or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def check_regular(path: Path) -> os.stat_result:
    """``stat`` of ``path`` (links followed).

    Raises:
        UnsafeSourceError: it is not a regular file (``not_a_file``).
        OSError: it cannot be read (missing, a dangling link, no permission).
    """
    st = path.stat()
    kind = special_kind(st.st_mode)
    if kind is not None:
        raise UnsafeSourceError("not_a_file", f"{path} is {kind}, not a regular file")
    return st


def open_regular(path: str | Path) -> BinaryIO:
    """Open a regular file for reading; refuse anything else without blocking on it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        kind = special_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise UnsafeSourceError("not_a_file", f"{path} is {kind}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def utf8_name(name: str) -> bool:
    """False for a name holding bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(path: str | Path) -> str:
    """A path as text that can always be written: bytes that are not UTF-8 appear as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _zip(path: str) -> zipfile.ZipFile:
    """An open archive; kept per process, so a worker does not re-read the directory for each member."""
    zf = _ZIPS.get(path)
    if zf is None:
        if len(_ZIPS) >= 4:
            _ZIPS.pop(next(iter(_ZIPS))).close()
        with open_regular(path):  # the check; ZipFile reopens the (regular) file itself
            pass
        zf = _ZIPS[path] = zipfile.ZipFile(path)
    return zf


@contextlib.contextmanager
def open_source(path: str, member: str | None) -> Iterator[tuple[Path | BinaryIO, int]]:
    """A plain file (its path, once checked) or an archive member (a guarded handle), with its size in bytes.

    Raises:
        UnsafeSourceError: not a regular file, or a member over the limits.
        OSError, KeyError, zipfile.BadZipFile: missing or unreadable (raised from the block for members whose
            data turns out corrupt while being read).
    """
    if member is None:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
        yield Path(path), size
        return
    info = _zip(path).getinfo(member)
    problem = member_problem(info)
    if problem is not None:
        raise UnsafeSourceError("too_large", f"archive member {member}: {problem}")
    with _zip(path).open(info) as raw:
        guarded = _Guarded(raw, info.file_size)
        try:
            yield guarded, info.file_size  # type: ignore[misc]
        finally:
            if guarded.error is not None:  # the real cause wins over what the decoder made of the cut-short data
                raise guarded.error


def read_small(path: str, member: str | None, max_bytes: int) -> bytes:
    """All bytes of a small file or member (a sidecar).

    Raises:
        AudioReadError: not a regular file, or larger than ``max_bytes``.
        OSError, KeyError, zipfile.BadZipFile: missing or unreadable.
    """
    with open_source(path, member) as (source, size):
        if size > max_bytes:
            where = member_path(path, member) if member is not None else path
            raise UnsafeSourceError("too_large", f"{where} is {size} bytes, over the {max_bytes}-byte limit")
        if isinstance(source, Path):
            with open_regular(source) as f:
                return f.read(max_bytes + 1)[:max_bytes]
        return source.read(max_bytes)


class _Guarded:
    """A file-like view of an archive member that keeps the first read error instead of raising it.

    libsndfile calls ``read`` from C; an exception there would be printed and lost, so it is kept, the read
    answers end of file, and :func:`open_source` raises it once decoding is over. Asking for the length
    (``seek(0, SEEK_END)``, ``tell``, seek back) is answered from the directory, and seeks read forward 1 MiB at
    a time: zipfile's own seek inflates in 16 MB reads.
    """

    def __init__(self, raw: IO[bytes], size: int) -> None:
        self.raw = raw
        self.size = size
        self.error: Exception | None = None
        self._at_end = False

    def read(self, n: int = -1) -> bytes:
        if self.error is not None or self._at_end:
            return b""
        try:
            return self.raw.read(n)
        except Exception as e:  # noqa: BLE001 - kept and raised after the decode (see the class)
            self.error = e
            return b""

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END and offset == 0:
            self._at_end = True
            return self.size
        if whence == os.SEEK_CUR and self._at_end:
            offset, whence = self.size + offset, os.SEEK_SET
        self._at_end = False
        target = {os.SEEK_SET: offset, os.SEEK_CUR: self.raw.tell() + offset}.get(whence, self.size + offset)
        target = min(max(target, 0), self.size)
        try:  # a seek inflates up to its target, so it meets corrupt data (and the CRC at the end) too
            if target < self.raw.tell():
                self.raw.seek(0)  # back to the start costs nothing; zipfile would then read forward 16 MB at once
            while self.raw.tell() < target and self.raw.read(min(target - self.raw.tell(), 1 << 20)):
                pass
        except Exception as e:  # noqa: BLE001 - kept, as in read
            self.error = self.error or e
        return self.raw.tell()

    def tell(self) -> int:
        return self.size if self._at_end else self.raw.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True
