"""Group commit of new jobs (many concurrent submissions, few transactions)."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from soundgen.service.db import Database
from soundgen.service.models import Job, JobTransition


@dataclass(eq=False)
class _Pending:
    values: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None


class InsertBatcher:
    """Group commit of new jobs: whoever gets the turn to write inserts every job waiting, in one transaction.

    Fifty clients submitting at once then cost a few transactions instead of fifty queued ones. A batch
    that hits a constraint (a repeated idempotency key) is retried row by row, so each caller gets its own
    answer.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[_Pending] = []
        self._mutex = threading.Lock()

    def insert(self, values: dict[str, Any]) -> None:
        """Insert one job row (and its first transition); raises IntegrityError for this row only."""
        item = _Pending(values)
        with self._mutex:
            self._pending.append(item)
        with self.db.writer_turn():
            if not item.done.is_set():
                with self._mutex:
                    batch, self._pending = self._pending, []
                self._flush(batch)
        item.done.wait()
        if item.error is not None:
            raise item.error

    def _flush(self, batch: list[_Pending]) -> None:
        if not batch:  # another caller took them all (possible where writers do not take turns)
            return
        try:
            self._insert(batch)
        except IntegrityError:
            for item in batch:
                try:
                    self._insert([item])
                except IntegrityError as e:
                    item.error = e
        except Exception as e:  # noqa: BLE001 - handed to every waiting caller
            for item in batch:
                item.error = e
        for item in batch:
            item.done.set()

    def _insert(self, batch: list[_Pending]) -> None:
        with self.db.sessions() as s, s.begin():
            s.execute(insert(Job), [item.values for item in batch])
            s.execute(insert(JobTransition), [{"job_id": item.values["id"], "state": "queued",
                                               "at": item.values["created_at"]} for item in batch])


_BATCHERS: weakref.WeakKeyDictionary[Database, InsertBatcher] = weakref.WeakKeyDictionary()
_BATCHERS_LOCK = threading.Lock()


def batcher_of(db: Database) -> InsertBatcher:
    """The batcher of ``db`` (one per database object)."""
    with _BATCHERS_LOCK:
        if db not in _BATCHERS:
            _BATCHERS[db] = InsertBatcher(db)
        return _BATCHERS[db]
