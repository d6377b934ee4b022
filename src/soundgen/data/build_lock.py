"""The dataset lock: one ``soundgen data build`` writes a dataset folder at a time.

The lock is an ``flock`` on ``out/.cache/lock``, which the kernel drops when its holder dies, and the file
records the holder's PID and host. Two things could still leave a dataset locked after its build was killed,
and both are handled here:

- a process forked while the lock was held (a pool worker) shares the locked file: the descriptor is closed in
  every child forked by this process (:func:`os.register_at_fork`), so only the build itself holds it;
- a lock held by processes of an older build whose recorded PID is dead (orphans that escaped): it is stale,
  and a new build takes it over by replacing the lock file (the orphans keep a lock on a file no one uses).

Acquiring goes through a short-held guard lock, so two builds never take over the same stale lock at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from soundgen.data.build_pool import pid_alive
from soundgen.data.build_worker import DataSourceError

log = logging.getLogger(__name__)

LOCK_FILE = ".cache/lock"
_HELD: set[int] = set()  # descriptors of locks this process holds (closed in forked children)
_HELD_PATHS: set[Path] = set()  # flock does not exclude two opens in one process: this does
_MUTEX = threading.Lock()


def _close_in_child() -> None:
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()
    _HELD_PATHS.clear()


os.register_at_fork(after_in_child=_close_in_child)


def _holder(path: Path) -> tuple[int, str] | None:
    """The ``(pid, host)`` a lock file records, or None when it records none (or is unreadable)."""
    try:
        pid_text, _, host = path.read_text(encoding="utf-8").strip().partition(" ")
        return int(pid_text), host
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _stale(holder: tuple[int, str] | None) -> bool:
    """A recorded holder on this host whose process is gone; an unknown holder is never stale."""
    return holder is not None and holder[1] == socket.gethostname() and not pid_alive(holder[0])


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _acquire(out_dir: Path) -> int:
    path = out_dir / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name("lock.guard"), "a+") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # held for microseconds by whoever is acquiring
        fd = _try_lock(path)
        if fd is None:
            holder = _holder(path)
            if not _stale(holder):
                who = f" (PID {holder[0]} on {holder[1]})" if holder else ""
                raise DataSourceError(
                    f"another 'soundgen data build'{who} is writing {out_dir}; wait for it to finish or pick "
                    "another --out"
                )
            assert holder is not None
            log.warning("taking over the lock of %s: its build (PID %d) is gone", out_dir, holder[0])
            path.unlink(missing_ok=True)
            fd = _try_lock(path)
            if fd is None:  # only a process ignoring the guard could hold a brand-new file
                raise DataSourceError(f"cannot lock {path}; remove it if no build is running")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    return fd


@contextlib.contextmanager
def dataset_lock(out_dir: Path) -> Iterator[None]:
    """Hold the lock of dataset folder ``out_dir`` for the block.

    Raises:
        DataSourceError: a live build (in this process or another) holds it.
    """
    key = out_dir.resolve()
    with _MUTEX:
        if key in _HELD_PATHS:
            raise DataSourceError(f"another 'soundgen data build' in this process is writing {out_dir}")
        fd = _acquire(out_dir)
        _HELD.add(fd)
        _HELD_PATHS.add(key)
    try:
        yield
    finally:
        with _MUTEX:
            _HELD.discard(fd)
            _HELD_PATHS.discard(key)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
