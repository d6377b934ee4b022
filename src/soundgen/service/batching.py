"""Group commit of new jobs (many concurrent submissions, few transactions)."""

from __future__ import annotations

import asyncio
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from soundgen.service.db import Database
from soundgen.service.models import Job, JobTransition

IDLE_EXIT_SECONDS = 5.0  # the writer thread ends after this long without work (a new one starts on demand)
_JOBS = Job.__table__
_INSERT_JOB = insert(Job)
_INSERT_TRANSITION = insert(JobTransition)


@dataclass(eq=False)
class _Pending:
    values: dict[str, Any]
    future: asyncio.Future[dict[str, Any]] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None
    error: Exception | None = None


class InsertBatcher:
    """Group commit of new jobs: one writer thread inserts every job waiting, in one transaction.

    Fifty clients submitting at once then cost a few transactions instead of fifty queued ones, and an
    async request hands its row over without a trip through the thread pool: it awaits a future that the
    writer thread resolves after the commit. A batch that hits a constraint (a repeated idempotency key) is
    retried row by row, so each caller gets its own answer: the job it created, or the one its key made before.

    A caller is answered only after its row is committed. On SQLite (WAL, ``synchronous=NORMAL``, see
    :func:`~soundgen.service.db.make_engine`) a commit writes the log without an fsync: it survives a killed
    process, not a power cut, which may lose the last commits.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: list[_Pending] = []
        self._cond = threading.Condition()
        self._running = False

    def insert(self, values: dict[str, Any]) -> dict[str, Any]:
        """Insert one job row (and its first transition); returns the columns of the job the caller gets.

        That is ``values`` itself, or, when its idempotency key was used before by the same owner, the
        earlier job. Raises IntegrityError (for this row only) on any other constraint.
        """
        item = _Pending(values)
        self._put(item)
        item.done.wait()
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result

    async def insert_async(self, values: dict[str, Any]) -> dict[str, Any]:
        """:meth:`insert` for the event loop: awaits the commit without blocking the loop."""
        item = _Pending(values, future=asyncio.get_running_loop().create_future())
        self._put(item)
        assert item.future is not None
        return await item.future

    def _put(self, item: _Pending) -> None:
        with self._cond:
            self._queue.append(item)
            if self._running:
                self._cond.notify()
                return
            self._running = True
        threading.Thread(target=self._run, name="soundgen-job-inserts", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    if not self._cond.wait(IDLE_EXIT_SECONDS) and not self._queue:
                        self._running = False
                        return
            with self.db.writer_turn():
                with self._cond:  # everything that queued up while this thread waited for its turn
                    batch, self._queue = self._queue, []
                self._flush(batch)

    def _flush(self, batch: list[_Pending]) -> None:
        try:
            self._insert(batch)
            for item in batch:
                item.result = item.values
        except IntegrityError:
            for item in batch:
                try:
                    self._insert([item])
                    item.result = item.values
                except IntegrityError as e:
                    item.result = self._earlier(item.values)
                    if item.result is None:
                        item.error = e
                except Exception as e:  # noqa: BLE001 - handed to the waiting caller
                    item.error = e
        except Exception as e:  # noqa: BLE001 - handed to every waiting caller
            for item in batch:
                item.error = e
        for item in batch:
            _deliver(item)

    def _insert(self, batch: list[_Pending]) -> None:
        # Core statements on one connection (no ORM session, no unit of work): one executemany per table.
        with self.db.engine.begin() as conn:
            conn.execute(_INSERT_JOB, [item.values for item in batch])
            conn.execute(_INSERT_TRANSITION, [{"job_id": item.values["id"], "state": "queued",
                                               "at": item.values["created_at"]} for item in batch])

    def _earlier(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """The job that ``values``' idempotency key created before (same owner), as a dict of its columns."""
        if values.get("idempotency_key") is None:
            return None
        with self.db.engine.connect() as conn:
            row = conn.execute(select(*_JOBS.columns).where(
                _JOBS.c.owner == values["owner"], _JOBS.c.idempotency_key == values["idempotency_key"])
            ).mappings().first()
        return dict(row) if row is not None else None


def _deliver(item: _Pending) -> None:
    """Wake the caller of ``item``: a thread waiting on its event, or a coroutine awaiting its future."""
    fut = item.future
    if fut is None:
        item.done.set()
        return
    try:
        fut.get_loop().call_soon_threadsafe(_resolve, fut, item.result, item.error)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass


def _resolve(fut: asyncio.Future[dict[str, Any]], result: dict[str, Any] | None, error: Exception | None) -> None:
    if fut.done():  # the request was cancelled (client gone); the job stays, a retry with its key finds it
        return
    if error is not None:
        fut.set_exception(error)
    else:
        assert result is not None
        fut.set_result(result)


_BATCHERS: weakref.WeakKeyDictionary[Database, InsertBatcher] = weakref.WeakKeyDictionary()
_BATCHERS_LOCK = threading.Lock()


def batcher_of(db: Database) -> InsertBatcher:
    """The batcher of ``db`` (one per database object)."""
    with _BATCHERS_LOCK:
        if db not in _BATCHERS:
            _BATCHERS[db] = InsertBatcher(db)
        return _BATCHERS[db]
