"""Run the dataset builder's per-file work in a pool of worker processes that survives decoder crashes."""

from __future__ import annotations

import multiprocessing
import threading
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
    context = context or start_method()
    ctx = multiprocessing.get_context(context)
    if context == "forkserver":
        # Workers fork from a server that has already imported numpy, soundfile and soxr.
        ctx.set_forkserver_preload(["soundgen.data.build_worker"])
    while queue:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            yield from _drain(pool, queue, settings, str(out_dir), 2 * workers, fn)


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
