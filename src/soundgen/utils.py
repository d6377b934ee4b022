"""Small shared helpers: atomic file writes, output checks, hashing, progress bars, devices."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from tqdm import tqdm

from soundgen.errors import OutputWriteError

T = TypeVar("T")


def _umask() -> int:
    """The process's umask (Linux reports it; elsewhere it is read by setting it back at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def _public(fd: int) -> None:
    """Give a ``mkstemp`` file (always 0600) the mode an ordinary ``open`` would: 0666 less the umask."""
    os.fchmod(fd, 0o666 & ~_umask())


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` and move it into place only if the block succeeds.

    A crash or an exception never leaves a half-written file under the final name.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    _public(fd)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_path(path: str | Path) -> contextlib.AbstractContextManager[Path]:
    """Like :func:`atomic_write` but yields a temporary *path* for libraries that open files themselves."""

    @contextlib.contextmanager
    def _cm() -> Iterator[Path]:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
        _public(fd)
        os.close(fd)
        try:
            yield Path(tmp)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    return _cm()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def progress(iterable: Iterable[T] | None = None, **kwargs: Any) -> tqdm:
    """A tqdm progress bar on stderr; silent when ``SOUNDGEN_NO_PROGRESS=1`` (tests, logs)."""
    asked = bool(kwargs.pop("disable", False))
    disable = asked or os.environ.get("SOUNDGEN_NO_PROGRESS") == "1"
    return tqdm(iterable, file=sys.stderr, disable=disable, dynamic_ncols=True, **kwargs)


def swap_into_place(tmp: Path, out: Path) -> None:
    """Move the finished directory ``tmp`` to ``out``, replacing what is there with two renames (the old one is
    deleted only once the new one is in place), so readers never see a half-written directory."""
    import shutil

    tmp.chmod(0o755)  # mkdtemp makes it private; a model or dataset directory is for everyone on the machine
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


_WRITE_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up: free some space or write elsewhere",
    errno.EROFS: "{folder} is on a read-only file system: write elsewhere",
    errno.EACCES: "no permission to write in {folder}: choose a folder you can write to",
    errno.EPERM: "no permission to write in {folder}: choose a folder you can write to",
    errno.ENOENT: "the folder {folder} does not exist",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder: give a file name",
    errno.ENAMETOOLONG: "the name is too long",
}


def write_error(path: str | Path, error: OSError) -> OutputWriteError:
    """The error to show a user when writing ``path`` failed with ``error`` (permission, full disk, ...)."""
    known = _WRITE_HINTS.get(error.errno or 0)
    hint = known.format(folder=Path(path).parent) if known else error.strerror or str(error)
    return OutputWriteError(f"cannot write {path}: {hint}")


def check_writable(path: str | Path) -> Path:
    """Make sure a file can be written at ``path`` before long work starts, so that an unwritable output fails in
    a second rather than after the work.

    The nearest existing folder on the way to ``path`` must be a folder that takes a new file (a probe file is
    created and removed there: that answers for root, read-only mounts and ACLs alike); folders missing below it
    are left for the writer to create, as :func:`atomic_write` does. A full disk can still fail the write later;
    writers report it with :func:`write_error`.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputWriteError: ``path`` is a folder, a part of it is a file, or the folder is not writable.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputWriteError(f"cannot write {target}: it is a folder: give a file name")
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputWriteError(f"cannot write {target}: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise write_error(target, e) from e
    return target
