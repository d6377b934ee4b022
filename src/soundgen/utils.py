"""Small shared helpers: atomic file writes, hashing, progress bars, devices."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from tqdm import tqdm

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
