"""Run the dataset builder's per-file work in a pool of worker processes that survives decoder crashes."""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from soundgen.data.build_worker import ItemResult, ProcessSettings, SourceItem, process_item

Worker = Callable[[SourceItem, ProcessSettings, str], ItemResult]
_Queue = list[tuple[SourceItem, bool]]  # (item, must run alone), next item last


def execute_pool(
    items: list[SourceItem],
    settings: ProcessSettings,
    out_dir: Path,
    workers: int,
    fn: Worker = process_item,
    context: str | None = None,
) -> Iterator[ItemResult]:
    """Run items in a process pool, yielding results as they come.

    A worker that dies (a decoder crash) breaks the pool: the files that were in flight are retried one at a
    time in a fresh pool, and a file that kills its worker while running alone is skipped as ``error``.
    ``context`` is the multiprocessing start method; by default :func:`start_method`.
    """
    queue: _Queue = [(i, False) for i in reversed(items)]
    workers = max(1, min(workers, len(items)))  # a process per item at most
    context = context or start_method()
    ctx = multiprocessing.get_context(context)
    if context == "forkserver":
        # Workers fork from a server that has already imported numpy, soundfile and soxr.
        ctx.set_forkserver_preload(["soundgen.data.build_worker"])
    while queue:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=die_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            yield from _drain(pool, queue, settings, str(out_dir), 2 * workers, fn)


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_POLL_SECONDS = 0.5


def die_with_parent(build_pid: int) -> None:
    """Make this worker process end when the process that started it ends (a build killed by any signal).

    On Linux the kernel sends SIGKILL at the parent's death (``PR_SET_PDEATHSIG``); everywhere, a daemon thread
    also checks ``os.getppid()`` twice a second, as the parent is the build itself (``fork``) or a fork server
    that ends with it. Without this, a killed build's workers would wait forever on their task queue.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    parent = os.getppid()
    if parent == 1 or not pid_alive(build_pid):  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this machine (one we may not signal counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_method() -> str:
    """``fork`` when this process runs a single Python thread (fast: workers start in milliseconds with
    everything imported), else ``forkserver`` (a fork could copy a lock another thread holds) where the platform
    has it, else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def _drain(
    pool: ProcessPoolExecutor, queue: _Queue, settings: ProcessSettings, out_dir: str, depth: int, fn: Worker
) -> Iterator[ItemResult]:
    """Feed ``queue`` to ``pool`` (at most ``depth`` in flight) until it is empty or the pool breaks."""
    inflight: dict[Future[ItemResult], tuple[SourceItem, bool]] = {}
    while queue or inflight:
        while queue and len(inflight) < depth and not any(alone for _, alone in inflight.values()):
            if queue[-1][1] and inflight:
                break  # a suspect runs with nothing beside it
            item, alone = queue.pop()
            try:
                inflight[pool.submit(fn, item, settings, out_dir)] = (item, alone)
            except BrokenProcessPool:
                queue.append((item, alone))
                break
        if not inflight:
            return  # the pool broke before anything could be submitted: start a fresh one
        done, _ = wait(inflight, return_when=FIRST_COMPLETED)
        broken = False
        for fut in done:
            item, alone = inflight.pop(fut)
            exc = fut.exception()
            if exc is None:
                yield fut.result()
            elif isinstance(exc, BrokenProcessPool):
                broken = True
                yield from _suspect(item, alone, queue, settings)
            else:  # process_item catches everything, so this is a transport failure (e.g. pickling)
                yield ItemResult(item.cache_key(settings), item.source_file, "skipped", "error", f"{exc!r}")
        if broken:
            for item, alone in inflight.values():
                yield from _suspect(item, alone, queue, settings)
            return


def _suspect(item: SourceItem, alone: bool, queue: _Queue, settings: ProcessSettings) -> Iterator[ItemResult]:
    if alone:
        detail = "the decoder crashed on this file (its worker process died)"
        yield ItemResult(item.cache_key(settings), item.source_file, "skipped", "error", detail)
    else:
        queue.append((item, True))
