"""The in-process worker: claims queued jobs, runs the generator, stores results, finishes the job.

The worker knows the model only through :class:`Generator` (``TextToSound.generate``'s signature). Each claim is
a lease that a heartbeat thread renews while the job runs; the same thread puts jobs whose lease ran out (their
worker died) back in the queue. With distributed workers (``soundgen worker``, Celery), a task claims the job it
names and calls :meth:`Worker.run_job` (see ``celery_worker.py``); nothing else changes.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from sqlalchemy.exc import OperationalError

from soundgen.errors import CancelledError, SoundgenError
from soundgen.service import jobs
from soundgen.service.continuation import load_prompt
from soundgen.service.db import Database, DatabaseUnavailableError
from soundgen.service.eta import GenerationSpeed, remaining
from soundgen.service.events import EventBus
from soundgen.service.metrics import Metrics
from soundgen.service.models import Job
from soundgen.service.render import Rendered, result_files
from soundgen.service.settings import ServiceSettings
from soundgen.service.storage import Storage, job_prefix, result_key

if TYPE_CHECKING:  # the API process does not import torch; the model process does
    from soundgen.pipeline import CancelFn, GenerationRequest, GenerationResult, ProgressFn

log = logging.getLogger(__name__)

LATE_CANCEL = "cancelled after its last step; the sounds it made were discarded"


class Generator(Protocol):
    """What the worker needs of a model: ``TextToSound.generate``, or a model process that also makes the files
    (:class:`~soundgen.service.genproc.ProcessGenerator`, which returns them as a :class:`Rendered`)."""

    def __call__(self, request: GenerationRequest, progress: ProgressFn | None = None,
                 should_cancel: CancelFn | None = None) -> GenerationResult | Rendered:
        """Generate ``request.count`` sounds."""
        ...


class _Stopping(Exception):
    """The server is shutting down: put the job back in the queue."""


class _LeaseLost(Exception):
    """The job's lease ran out and it went back to the queue (another worker may run it): drop this run."""


class Worker:
    """Threads that run queued jobs one at a time each.

    Args:
        db: the job database.
        storage: where results go.
        bus: where job events are published.
        load_generator: builds the generator (called once, in the first worker thread).
        settings: service settings (number of threads, progress persistence interval, poll interval, lease).
        metrics: generation metrics to update.
        on_requeued: called with the ids of lost jobs the heartbeat put back in the queue (default: wake an idle
            thread of this worker to claim them).
    """

    what = "model"  # what /readyz names when this is not ready

    def __init__(self, db: Database, storage: Storage, bus: EventBus, load_generator: Callable[[], Generator],
                 settings: ServiceSettings, metrics: Metrics,
                 on_requeued: Callable[[list[str]], None] | None = None) -> None:
        self.db, self.storage, self.bus, self.settings, self.metrics = db, storage, bus, settings, metrics
        self._load_generator = load_generator
        self._on_requeued = on_requeued or self.notify
        self._held: dict[str, Job] = {}  # job id -> the claim this process runs (the heartbeat renews them)
        self._lost: set[str] = set()  # held jobs whose lease could not be renewed: stopped at their next step
        self.generator: Generator | None = None
        self.load_error: str | None = None
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.busy = 0
        self.worker_id = f"{uuid.uuid4().hex[:8]}"
        self.speed = GenerationSpeed()  # seeded from the database by the app at start-up

    def start(self) -> None:
        """Load the model and start the worker threads and the heartbeat (returns at once)."""
        self._threads = [threading.Thread(target=self._main, name=f"soundgen-worker-{i}", daemon=True)
                         for i in range(max(1, self.settings.workers))]
        for t in self._threads:
            t.start()
        self.start_heartbeat()

    def start_heartbeat(self) -> None:
        """Start the thread that renews the leases of the jobs running here and reaps lost ones elsewhere."""
        t = threading.Thread(target=self._heartbeat, name="soundgen-heartbeat", daemon=True)
        t.start()
        self._threads.append(t)

    def _heartbeat(self) -> None:
        lease = self.settings.lease_seconds
        while True:
            with self._lock:
                held = list(self._held.values())
            for job in held:
                try:
                    renewed = jobs.extend_lease(self.db, job, lease)
                except (DatabaseUnavailableError, OperationalError) as e:
                    log.warning("cannot renew the lease of job %s: %s", job.id, e)
                    continue
                if not renewed:
                    with self._lock:
                        if self._held.get(job.id) is job:  # still running here (not just ended): stop it
                            self._lost.add(job.id)
            try:
                requeued = jobs.reap_expired(self.db)
            except (DatabaseUnavailableError, OperationalError) as e:
                log.warning("cannot look for lost jobs: %s", e)
                requeued = []
            if requeued:
                log.warning("requeued %d job(s) whose worker stopped renewing its lease: %s", len(requeued),
                            ", ".join(requeued))
                self._on_requeued(requeued)
            if self._stop.wait(lease / 4):
                return

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current step; a job in progress goes back to the queue."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)

    def notify(self, job_ids: Sequence[str] = ()) -> None:
        """Jobs were queued (``job_ids``, when the caller knows them): wake an idle worker now instead of at the
        next poll."""
        self._wake.set()

    def cancel(self, job_id: str) -> None:
        """Stop ``job_id`` at its next generation step if this process runs it."""
        with self._lock:
            self._cancelled.add(job_id)

    def _main(self) -> None:
        with self._lock:
            if self.generator is None and self.load_error is None:
                try:
                    self.generator = self._load_generator()
                except SoundgenError as e:
                    self.load_error = str(e)
                    log.error("cannot load the model: %s", e)
                except Exception as e:  # noqa: BLE001 - reported on /readyz instead of killing the thread
                    self.load_error = f"{type(e).__name__}: {e}"
                    log.exception("cannot load the model")
        if self.generator is None:
            return
        self.ready.set()
        while not self._stop.is_set():
            try:
                job = jobs.claim_next(self.db, self.worker_id, self.settings.lease_seconds)
            except (DatabaseUnavailableError, OperationalError) as e:  # /readyz says why; retried, not fatal
                log.warning("cannot claim a job: %s", e)
                job = None
            if job is None:
                self._wake.wait(self.settings.poll_seconds)
                self._wake.clear()
                continue
            self.run_job(job)

    def run_job(self, job: Job, generator: Generator | None = None) -> None:
        """Run one claimed job to its end (succeeded, failed, cancelled, or back to the queue on stop) with
        ``generator`` (default: this worker's own)."""
        generator = generator or self.generator
        assert generator is not None
        with self._lock:
            self.busy += 1
            self._held[job.id] = job
        self._publish(job)
        try:
            self._generate(job, generator)
        except _Stopping:
            self._requeue(job)
        except _LeaseLost:
            log.warning("job %s lost its lease while it ran here (went back to the queue); this run is dropped",
                        job.id)
        except CancelledError:
            if self._was_lost(job):
                log.warning("job %s lost its lease while it ran here; stopped, it runs again elsewhere", job.id)
            else:
                self._end(job, "cancelled", error="cancelled while running")
        except SoundgenError as e:
            self._end(job, "failed", error=str(e))
        except Exception as e:  # noqa: BLE001 - one job's bug must not take the worker down
            log.exception("job %s failed", job.id)
            self._end(job, "failed", error=f"internal error while generating ({type(e).__name__}: {e}); "
                                           "the server log has the details")
        finally:
            with self._lock:
                self.busy -= 1
                self._cancelled.discard(job.id)
                self._held.pop(job.id, None)
                self._lost.discard(job.id)

    def _was_lost(self, job: Job) -> bool:
        with self._lock:
            return job.id in self._lost

    def _generate(self, job: Job, generator: Generator) -> None:
        from soundgen.pipeline import GenerationRequest

        request = GenerationRequest(prompt=job.prompt, duration=job.duration, count=job.count, seed=job.seed,
                                    cfg_coef=job.cfg_coef, temperature=job.temperature, top_k=job.top_k,
                                    top_p=job.top_p, negative_prompt=job.negative_prompt)
        if job.continues is not None:  # every sound starts with the audio stored for it at submission
            request.audio_prompt, request.audio_prompt_rate = load_prompt(self.storage, job.id)
        t0 = time.perf_counter()
        result = generator(request, progress=self._progress_fn(job), should_cancel=self._cancel_fn(job))
        if self._stop.is_set():
            raise _Stopping
        if isinstance(result, Rendered):  # the model process made the files already
            files, result = result.files, result.result
        else:
            files = result_files(result)
        audio: list[np.ndarray] = list(result.audio)
        # Still ours? A worker that was paused past its lease must not write over the files of the run that took
        # the job over (the keys are the job's, so a rerun overwrites the same names: idempotent).
        if self._was_lost(job) or not jobs.extend_lease(self.db, job, self.settings.lease_seconds):
            if self._job_exists(job.id):
                raise _LeaseLost
        for i, (wav, png) in enumerate(files):
            self.storage.put(result_key(job.id, i, "wav"), wav)
            self.storage.put(result_key(job.id, i, "png"), png)
        elapsed = time.perf_counter() - t0
        seconds = sum(a.shape[-1] for a in audio) / result.sample_rate
        self.metrics.observe_generation(elapsed, seconds)
        self.speed.observe(elapsed, seconds)
        self._end(job, "succeeded", result_count=len(audio), sample_rate=int(result.sample_rate),
                  result_duration=float(result.duration), elapsed=elapsed,
                  progress_step=job.progress_total or job.progress_step,
                  progress_total=job.progress_total or job.progress_step)  # a short job's total was never written

    def _progress_fn(self, job: Job) -> ProgressFn:
        # Written at most every progress_persist_seconds from the start: a short job's progress never is (its
        # end is one write), and subscribers here get every step from the bus anyway.
        last_persist = [time.time()]

        def progress(step: int, total: int) -> None:
            if step == job.progress_step and total == job.progress_total:
                return
            job.progress_step, job.progress_total = step, total
            job.updated_at = now = time.time()
            if now - last_persist[0] >= self.settings.progress_persist_seconds:
                last_persist[0] = now
                jobs.record_progress(self.db, job, step, total, self.settings.lease_seconds)
            self._publish(job)

        return progress

    def _cancel_fn(self, job: Job) -> CancelFn:
        last_check = [time.monotonic()]

        def should_cancel() -> bool:
            if self._stop.is_set():
                raise _Stopping
            with self._lock:
                if job.id in self._cancelled or job.id in self._lost:
                    return True
            now = time.monotonic()
            if now - last_check[0] >= 0.5:  # a cancel from another process shows up in the database
                last_check[0] = now
                return jobs.cancel_requested(self.db, job.id)
            return False

        return should_cancel

    def _end(self, job: Job, state: str, **values: Any) -> None:
        if jobs.finish_job(self.db, job, state, **values):
            self._ended(job, state)
        elif state == "succeeded" and jobs.finish_job(self.db, job, "cancelled", error=LATE_CANCEL):
            self.storage.delete_prefix(job_prefix(job.id))  # a cancel after the last step: the sounds go
            self._ended(job, "cancelled")
        elif self._job_exists(job.id):  # taken away (its lease ran out): the files belong to the run that took it
            log.warning("job %s was taken away from this worker (its lease ran out); this run is dropped", job.id)
        else:  # deleted while running: drop what was written
            self.storage.delete_prefix(job_prefix(job.id))
            log.info("job %s was deleted while running; its files are removed", job.id)

    def _job_exists(self, job_id: str) -> bool:
        with self.db.session() as s:
            return s.get(Job, job_id) is not None

    def _ended(self, job: Job, state: str) -> None:
        self.metrics.count_finished(state)
        if self.bus.wants(job.owner, job.id):
            with self.db.session() as s:
                fresh = s.get(Job, job.id)
                if fresh is not None:
                    self._publish(fresh)
        log.info("job %s %s", job.id, state)

    def _requeue(self, job: Job) -> None:
        jobs.requeue_job(self.db, job)
        log.info("job %s goes back to the queue (server stopping)", job.id)

    def _publish(self, job: Job) -> None:
        if self.bus.wants(job.owner, job.id):  # building an event nobody reads costs the API its GIL time
            event = jobs.job_event(job)
            if job.state == "running":
                event["eta_seconds"] = round(remaining(
                    {"duration": job.duration, "count": job.count, "started_at": job.started_at,
                     "progress_step": job.progress_step, "progress_total": job.progress_total}, self.speed), 1)
            self.bus.publish(job.owner, event)
