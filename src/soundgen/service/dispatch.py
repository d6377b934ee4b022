"""The API's side of Celery on Redis: send each queued job's task, and look after jobs nobody runs.

A :class:`Dispatcher` stands where the in-process :class:`~soundgen.service.worker.Worker` stands without a broker
(the routes call the same ``notify``, ``cancel``, ``ready``...), but runs no model. Its threads:

* the sender sends one task per job it is told about and records it (``jobs.mark_dispatched``);
* the caretaker, every quarter lease (at most every 5 s): checks the broker answers (``/readyz``), puts jobs whose
  lease ran out back in the queue and sends them again (``jobs.reap_expired``), and sends the queued jobs whose
  task was never sent or is long overdue (a server that stopped between recording a job and sending it, a broker
  that lost its data). Several servers may do all this at once: a task whose job is not queued does nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Sequence

from sqlalchemy.exc import OperationalError

from soundgen.service import jobs
from soundgen.service.broker import QUEUE, TASK_NAME, VISIBILITY_TIMEOUT_S, RedisEventBus, broker_problem, celery_app
from soundgen.service.db import Database, DatabaseUnavailableError
from soundgen.service.eta import GenerationSpeed
from soundgen.service.settings import ServiceSettings

log = logging.getLogger(__name__)
SWEEP_AFTER_S = 10.0  # a queued job without a task this long after it was recorded is sent by the caretaker
RESEED_S = 60.0  # how often the queue estimates take the speed of the workers' latest jobs
_SEND_BATCH = 200


class Dispatcher:
    """Sends jobs to ``soundgen worker`` processes through the broker (see the module's docstring).

    Args:
        db: the job database.
        bus: the Redis event bus (cancels go out through it).
        settings: service settings (``broker_url``, ``lease_seconds``).
    """

    what = "broker"  # what /readyz names when this is not ready
    generator = None  # no model in this process

    def __init__(self, db: Database, bus: RedisEventBus, settings: ServiceSettings) -> None:
        assert settings.broker_url, "a Dispatcher needs a broker URL"
        self.db, self.bus, self.settings = db, bus, settings
        self.url = settings.broker_url
        self.ready = threading.Event()
        self.load_error: str | None = None
        self.busy = 0  # jobs run in the workers
        self.speed = GenerationSpeed()
        self.worker_id = f"api-{uuid.uuid4().hex[:8]}"
        self._celery = celery_app(self.url)
        self._pending: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the sender and the caretaker (returns at once)."""
        self._threads = [threading.Thread(target=self._send_loop, name="soundgen-dispatch", daemon=True),
                         threading.Thread(target=self._care_loop, name="soundgen-caretaker", daemon=True)]
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop both threads (jobs not sent yet are sent by a caretaker later, here or on another server)."""
        self._stop.set()
        self._pending.put(None)
        for t in self._threads:
            t.join(timeout)

    def notify(self, job_ids: Sequence[str] = ()) -> None:
        """Send a task for each of ``job_ids`` (queued just now); without ids the caretaker's sweep finds them."""
        for job_id in job_ids:
            self._pending.put(job_id)

    def cancel(self, job_id: str) -> None:
        """Tell every worker to stop ``job_id`` at its next step (the database says so as well)."""
        self.bus.send_cancel(job_id)

    def _send_loop(self) -> None:
        while True:
            first = self._pending.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < _SEND_BATCH:
                try:
                    nxt = self._pending.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._pending.put(None)
                    break
                batch.append(nxt)
            self._send(batch)

    def _send(self, job_ids: list[str]) -> None:
        sent = []
        for job_id in dict.fromkeys(job_ids):
            try:
                self._celery.send_task(TASK_NAME, args=[job_id], queue=QUEUE)
            except Exception as e:  # noqa: BLE001 - the broker is down: the caretaker's sweep sends them later
                log.warning("cannot send job %s to the broker (%s); it is sent again once the broker answers",
                            job_id, " ".join(str(e).split()))
                break
            sent.append(job_id)
        try:
            jobs.mark_dispatched(self.db, sent)
        except (DatabaseUnavailableError, OperationalError) as e:  # sent all the same: a second send is harmless
            log.warning("cannot record that %d job(s) were sent: %s", len(sent), e)

    def _care_loop(self) -> None:
        interval = min(self.settings.lease_seconds / 4, 5.0)
        last_seed = 0.0
        while True:
            self._check_broker()
            try:
                self.notify(jobs.reap_expired(self.db))
                now = time.time()
                self.notify(jobs.undispatched(self.db, now - SWEEP_AFTER_S, now - VISIBILITY_TIMEOUT_S))
                if time.monotonic() - last_seed >= RESEED_S:
                    self.speed.seed(self.db)
                    last_seed = time.monotonic()
            except (DatabaseUnavailableError, OperationalError) as e:
                log.warning("cannot look after lost jobs: %s", e)
            if self._stop.wait(interval):
                return

    def _check_broker(self) -> None:
        problem = broker_problem(self.url)
        if problem is None:
            self.load_error = None
            self.ready.set()
        else:
            if self.load_error is None:
                log.warning("the broker cannot be reached: %s", problem)
            self.load_error = f"cannot reach {self.url.split('@')[-1]}: {problem}"
            self.ready.clear()
