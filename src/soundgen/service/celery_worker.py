"""``soundgen worker``: a Celery worker on Redis that runs the model for the API servers (see ``broker.py``).

One process holds ``concurrency`` model processes (``genproc.ProcessGenerator``) and as many Celery threads; each
task claims the job it names in the database and runs it with one of the models, through the same
:class:`~soundgen.service.worker.Worker` code as the embedded server (progress, cancel, files, the lease's
heartbeat). Killed with SIGKILL, the process takes its model processes with it (their pipe closes); its jobs'
leases run out and they run again elsewhere.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import OperationalError

from soundgen.errors import ConfigError
from soundgen.service import jobs
from soundgen.service.broker import QUEUE, TASK_NAME, RedisEventBus, broker_problem, celery_app, hide_password
from soundgen.service.core import default_generator
from soundgen.service.db import Database, DatabaseUnavailableError, migrate
from soundgen.service.metrics import Metrics
from soundgen.service.settings import ServiceSettings
from soundgen.service.storage_url import open_storage
from soundgen.service.worker import Generator, Worker

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)
DB_RETRY_S = 5.0  # a task that cannot reach the database is delivered again this much later


class _NoModel(Exception):
    """The worker's own loader is never used: the models are loaded before Celery starts."""


def _unused_loader() -> Generator:
    raise _NoModel


def load_models(settings: ServiceSettings, n: int) -> list[Generator]:
    """``n`` models (each in its own process unless ``settings.generator_process`` is off), loaded in parallel."""
    loader = default_generator(settings)
    if not settings.generator_process:  # one in-process model, shared by the threads
        return [loader()] * n
    out: list[Generator] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            gen = loader()
        except BaseException as e:  # noqa: BLE001 - re-raised below, in the caller's thread
            errors.append(e)
        else:
            out.append(gen)

    threads = [threading.Thread(target=load) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for gen in out:
            _close(gen)
        raise errors[0]
    return out


def _close(gen: Generator) -> None:
    close = getattr(gen, "close", None)
    if close is not None:
        close()


class TaskRunner:
    """What a task does: claim the job it names and run it with a free model.

    Args:
        settings: service settings (database, storage, broker, lease).
        models: the loaded models, one per concurrent task.
    """

    def __init__(self, settings: ServiceSettings, models: list[Generator], app: Celery) -> None:
        assert settings.broker_url
        self.settings, self.app = settings, app
        self.db = Database(settings.db_url)
        migrate(self.db.engine)  # a worker may start before any API server has made the tables
        self.bus = RedisEventBus(settings.broker_url, on_cancel=self._cancel)
        self.worker = Worker(self.db, open_storage(settings.storage_root, settings.storage_presign_seconds),
                             self.bus, _unused_loader, settings, Metrics(), on_requeued=self.send)
        self.worker.worker_id = f"{socket.gethostname()[:40]}-{os.getpid()}-{self.worker.worker_id}"
        self.worker.generator = models[0]
        self.worker.ready.set()
        self.worker.speed.seed(self.db)
        self._models: queue.Queue[Generator] = queue.Queue()
        for m in models:
            self._models.put(m)
        self.models = models

    def start(self) -> None:
        """Start renewing leases and reaping lost jobs."""
        self.worker.start_heartbeat()

    def stop(self) -> None:
        """Stop the heartbeat, the models and the event bus."""
        self.worker.stop()
        for gen in dict.fromkeys(self.models):
            _close(gen)
        self.bus.close()
        self.db.dispose()

    def send(self, job_ids: list[str]) -> None:
        """Send tasks for jobs this worker's heartbeat put back in the queue."""
        for job_id in job_ids:
            try:
                self.app.send_task(TASK_NAME, args=[job_id], queue=QUEUE)
            except Exception as e:  # noqa: BLE001 - an API server's caretaker sends it later
                log.warning("cannot send job %s again (%s); an API server's sweep will", job_id, e)
                return
        jobs.mark_dispatched(self.db, job_ids)

    def _cancel(self, job_id: str) -> None:
        self.worker.cancel(job_id)

    def run(self, job_id: str) -> str:
        """Claim ``job_id`` and run it; what happened, in a word (for the log).

        Raises:
            DatabaseUnavailableError, OperationalError: the claim could not be made (the task is retried).
        """
        model = self._models.get()
        try:
            job = jobs.claim_job(self.db, job_id, self.worker.worker_id, self.settings.lease_seconds)
            if job is None:  # running elsewhere, ended, cancelled or deleted: a second delivery of its task
                return "skipped"
            self.worker.run_job(job, model)
            return "ran"
        finally:
            self._models.put(model)


def register_task(app: Celery, runner: TaskRunner) -> None:
    """The one task: ``soundgen.run_job(job_id)``, acknowledged after it ran."""

    @app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
              max_retries=None)
    def run_job(task: Any, job_id: str) -> None:
        try:
            outcome = runner.run(job_id)
        except (DatabaseUnavailableError, OperationalError) as e:
            log.warning("cannot claim job %s (%s); trying again in %.0f s", job_id, e, DB_RETRY_S)
            raise task.retry(countdown=DB_RETRY_S) from None
        log.info("task for job %s: %s", job_id, outcome)


def run_worker(settings: ServiceSettings, concurrency: int, loglevel: str = "WARNING") -> int:
    """Load ``concurrency`` models, then take tasks until stopped (SIGTERM or Ctrl-C: the running jobs finish).

    Raises:
        ConfigError: no broker is configured, or it cannot be reached.
        ModelNotFoundError (and the model's other load errors): the model cannot be loaded.
    """
    if not settings.broker_url:
        raise ConfigError("soundgen worker takes its jobs from a broker: set SOUNDGEN_BROKER_URL=redis://HOST:6379/0 "
                          "(the same as the API servers')")
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {concurrency}")
    problem = broker_problem(settings.broker_url)
    if problem is not None:
        raise ConfigError(f"cannot reach the broker {hide_password(settings.broker_url)}: {problem}")
    models = load_models(settings, concurrency)
    app = celery_app(settings.broker_url)
    runner = TaskRunner(settings, models, app)
    register_task(app, runner)
    runner.start()
    name = f"soundgen-{os.getpid()}@{socket.gethostname()}"
    log.info("worker %s takes jobs from %s with %d model(s)", name, hide_password(settings.broker_url), concurrency)
    try:
        worker = app.Worker(hostname=name, pool_cls="threads", concurrency=concurrency, queues=[QUEUE],
                            loglevel=loglevel, without_gossip=True, without_mingle=True, without_heartbeat=True,
                            quiet=True, optimization="fair")
        worker.start()
        return int(worker.exitcode or 0)
    finally:
        runner.stop()
