"""Where a job stands: its place in the queue and about when it will be done, from measured generation speed.

The speed is seconds of generation per second of audio (``duration * count``), a running average of what this
server's worker measured. It starts from the jobs that succeeded before (their ``elapsed`` is in the database, so
an estimate survives a restart) and from :data:`FIRST_GUESS` on a server that has generated nothing yet.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, func, or_, select

from soundgen.service.db import Database
from soundgen.service.models import Job

FIRST_GUESS = 1.0  # s of work per s of audio before anything was measured (the bundled model: ~0.35 on a CPU)
HISTORY = 20  # succeeded jobs read at start-up
WEIGHT = 0.3  # of each new measurement in the running average


class GenerationSpeed:
    """Seconds of generation per second of audio, averaged over the jobs this server finished.

    Args:
        first_guess: the value before any measurement.
        weight: how much one new measurement moves the average (exponential moving average).
    """

    def __init__(self, first_guess: float = FIRST_GUESS, weight: float = WEIGHT) -> None:
        self._value = first_guess
        self._weight = weight
        self._lock = threading.Lock()
        self.measured = False

    @property
    def value(self) -> float:
        """The current estimate, seconds of work per second of audio."""
        return self._value

    def seed(self, db: Database) -> None:
        """Start from the median speed of the last :data:`HISTORY` succeeded jobs (if any)."""
        with db.session() as s:
            rows = s.execute(select(Job.elapsed, Job.result_duration, Job.result_count)
                             .where(Job.state == "succeeded", Job.elapsed.is_not(None))
                             .order_by(Job.finished_at.desc()).limit(HISTORY)).all()
        speeds = [e / (d * n) for e, d, n in rows if d and n and e and e > 0]
        if speeds:
            with self._lock:
                self._value, self.measured = statistics.median(speeds), True

    def observe(self, elapsed: float, audio_seconds: float) -> None:
        """Add one finished generation: ``elapsed`` wall seconds for ``audio_seconds`` of audio."""
        if audio_seconds <= 0 or elapsed <= 0:
            return
        speed = elapsed / audio_seconds
        with self._lock:
            self._value = speed if not self.measured else (1 - self._weight) * self._value + self._weight * speed
            self.measured = True

    def estimate(self, audio_seconds: float) -> float:
        """Seconds that ``audio_seconds`` of audio will take to generate."""
        return self._value * audio_seconds


def _audio_seconds(job: Mapping[str, Any]) -> float:
    return float(job["duration"]) * int(job["count"])


def remaining(job: Mapping[str, Any], speed: GenerationSpeed, now: float | None = None) -> float:
    """Seconds until a running job is done: from its own pace once it made steps, else from ``speed``."""
    now = time.time() if now is None else now
    spent = max(0.0, now - float(job["started_at"] or now))
    step, total = job["progress_step"] or 0, job["progress_total"] or 0
    if step > 0 and total > 0:
        return spent * max(0, total - step) / step
    return max(0.0, speed.estimate(_audio_seconds(job)) - spent)


def queue_place(db: Database, job: Mapping[str, Any], speed: GenerationSpeed, workers: int) -> tuple[int, float]:
    """A queued job's position (1: next to start) and the seconds until it is done.

    Jobs start oldest first (``created_at``, then ``id``: the worker's claim order); the running ones finish
    first, then those ahead, shared out over ``workers``.
    """
    ahead = and_(Job.state == "queued", or_(Job.created_at < job["created_at"],
                                            and_(Job.created_at == job["created_at"], Job.id < job["id"])))
    with db.engine.connect() as conn:
        n, audio = conn.execute(select(func.count(), func.coalesce(func.sum(Job.duration * Job.count), 0.0))
                                .where(ahead)).one()
        running = conn.execute(select(Job.duration, Job.count, Job.started_at, Job.progress_step,
                                      Job.progress_total).where(Job.state == "running")).mappings().all()
    now = time.time()
    busy = sum(remaining(dict(r), speed, now) for r in running)
    wait = (busy + speed.estimate(float(audio))) / max(1, workers)
    return int(n) + 1, wait + speed.estimate(_audio_seconds(job))


def with_place(body: dict[str, Any], db: Database, speed: GenerationSpeed, workers: int) -> dict[str, Any]:
    """A job's API body (``jobs.job_json``) with ``queue_position`` and ``eta_seconds`` filled in."""
    if body["state"] == "queued":
        position, eta = queue_place(db, _columns(body), speed, workers)
        body["queue_position"], body["eta_seconds"] = position, round(eta, 1)
    elif body["state"] == "running":
        body["eta_seconds"] = round(remaining(_columns(body), speed), 1)
    return body


def _columns(body: Mapping[str, Any]) -> dict[str, Any]:
    """The columns :func:`remaining` and :func:`queue_place` read, from a job's API body."""
    return {"id": body["id"], "created_at": body["created_at"], "duration": body["duration"], "count": body["count"],
            "started_at": body["started_at"], "progress_step": body["step"], "progress_total": body["total_steps"]}
