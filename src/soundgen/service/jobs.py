"""Jobs in the database: create, read, list, cancel, delete, and the worker's atomic claim/finish.

The database is the source of truth. Every state change is one conditional ``UPDATE`` (so two workers,
threads or processes, can never claim or finish the same job twice) plus one row in ``job_transitions``.
Nothing here is SQLite-specific: the same statements run on PostgreSQL.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from soundgen.errors import InvalidRequestError
from soundgen.service.batching import batcher_of
from soundgen.service.db import Database
from soundgen.service.models import ACTIVE_STATES, FINAL_STATES, JOB_STATES, Job, JobTransition
from soundgen.service.schemas import AUDIO_FORMATS, GenerationCreate, JobOut, ResultOut


class JobNotFound(LookupError):
    """No job with this id for this owner."""


class JobConflict(RuntimeError):
    """The job is not in a state that allows the operation."""


@dataclass
class Page:
    """A page of jobs, newest first, and the cursor of the next page (None on the last)."""

    jobs: list[Job]
    next_cursor: str | None


def _rows(s: Session, stmt: Any) -> int:
    """Execute an UPDATE and return how many rows it changed."""
    result: CursorResult[Any] = s.execute(stmt)  # type: ignore[assignment]
    return int(result.rowcount)


def _transition(s: Session, job_id: str, state: str, now: float) -> None:
    s.execute(insert(JobTransition).values(job_id=job_id, state=state, at=now))


def create_job(db: Database, owner: str, req: GenerationCreate, idempotency_key: str | None = None) -> Job:
    """Insert a queued job; a repeated ``idempotency_key`` returns the job it created the first time."""
    now = time.time()
    seed = req.seed if req.seed is not None else secrets.randbelow(2**31)
    job_id = uuid.uuid4().hex
    values: dict[str, Any] = dict(
        id=job_id, owner=owner, state="queued", prompt=req.prompt.strip(), duration=req.duration,
        count=req.count, seed=seed, cfg_coef=req.cfg_coef, temperature=req.temperature, top_k=req.top_k,
        top_p=req.top_p, idempotency_key=idempotency_key, progress_step=0, progress_total=0,
        cancel_requested=False, attempts=0, result_count=0, created_at=now, updated_at=now,
    )
    try:
        batcher_of(db).insert(values)
    except IntegrityError:
        existing = _by_idempotency(db, owner, idempotency_key) if idempotency_key is not None else None
        if existing is None:
            raise
        return existing
    job = Job(**values)
    return job


def _by_idempotency(db: Database, owner: str, key: str) -> Job | None:
    with db.session() as s:
        return s.scalars(select(Job).where(Job.owner == owner, Job.idempotency_key == key)).first()


def get_job(s: Session, job_id: str, owner: str | None) -> Job:
    """The job ``job_id``; ``owner=None`` skips the ownership check (admin/worker use).

    Raises:
        JobNotFound: no such job, or it belongs to someone else (the two look the same on purpose).
    """
    job = s.get(Job, job_id)
    if job is None or (owner is not None and job.owner != owner):
        raise JobNotFound(job_id)
    return job


def _encode_cursor(job: Job) -> str:
    return base64.urlsafe_b64encode(f"{job.created_at!r}|{job.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return float(created), job_id
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidRequestError("cursor is not one this server gave out; start again without it") from e


def list_jobs(s: Session, owner: str, *, limit: int = 20, cursor: str | None = None,
              states: list[str] | None = None, query: str | None = None) -> Page:
    """Jobs of ``owner``, newest first, filtered by state(s) and a prompt substring."""
    stmt = select(Job).where(Job.owner == owner)
    if states:
        unknown = sorted(set(states) - set(JOB_STATES))
        if unknown:
            raise InvalidRequestError(f"unknown state(s) {', '.join(unknown)}; use one of {', '.join(JOB_STATES)}")
        stmt = stmt.where(Job.state.in_(states))
    if query:
        stmt = stmt.where(Job.prompt.icontains(query, autoescape=True))
    if cursor:
        created, job_id = _decode_cursor(cursor)
        stmt = stmt.where((Job.created_at < created) | ((Job.created_at == created) & (Job.id < job_id)))
    jobs = list(s.scalars(stmt.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)))
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return Page(jobs=jobs, next_cursor=_encode_cursor(jobs[-1]) if more and jobs else None)


def cancel_job(db: Database, job_id: str, owner: str | None) -> Job:
    """Cancel a job: a queued one at once, a running one at its next generation step.

    Raises:
        JobNotFound: no such job for this owner.
        JobConflict: the job has already ended.
    """
    now = time.time()
    with db.write() as s:
        job = get_job(s, job_id, owner)
        if job.state in FINAL_STATES:
            raise JobConflict(f"job {job_id} has already ended ({job.state}); there is nothing to cancel")
        done = _rows(s, update(Job).where(Job.id == job_id, Job.state == "queued")
                         .values(state="cancelled", finished_at=now, updated_at=now,
                                 error="cancelled before it started"))
        if done:
            _transition(s, job_id, "cancelled", now)
        else:
            _rows(s, update(Job).where(Job.id == job_id).values(cancel_requested=True, updated_at=now))
    with db.session() as s:
        return get_job(s, job_id, owner)


def delete_job(db: Database, job_id: str, owner: str | None) -> Job:
    """Delete a job's row (a running one is asked to stop first); returns the deleted job."""
    with db.write() as s:
        job = get_job(s, job_id, owner)
        s.delete(job)
    return job


def claim_next(db: Database, worker_id: str) -> Job | None:
    """Atomically move the oldest queued job to running for ``worker_id``; None when the queue is empty."""
    now = time.time()
    for _ in range(5):
        with db.write() as s:
            oldest = s.scalars(select(Job.id).where(Job.state == "queued")
                               .order_by(Job.created_at, Job.id).limit(1)).first()
            if oldest is None:
                return None
            claimed = _rows(s, update(Job).where(Job.id == oldest, Job.state == "queued").values(
                state="running", worker_id=worker_id, attempts=Job.attempts + 1, started_at=now,
                updated_at=now, progress_step=0, progress_total=0))
            if claimed:
                _transition(s, oldest, "running", now)
                job = s.get(Job, oldest)
                assert job is not None
                s.refresh(job)
                return job
    return None  # lost five races in a row: let the caller poll again


def record_progress(db: Database, job: Job, step: int, total: int) -> bool:
    """Store the progress of a running job; False when the job was deleted or taken away meanwhile."""
    with db.write() as s:
        return bool(_rows(s, update(Job).where(*_owned(job)).values(
            progress_step=step, progress_total=total, updated_at=time.time())))


def cancel_requested(db: Database, job_id: str) -> bool:
    """Whether someone asked to cancel ``job_id`` (True also when the job was deleted)."""
    with db.session() as s:
        flag = s.scalar(select(Job.cancel_requested).where(Job.id == job_id))
    return flag is None or bool(flag)


def _owned(job: Job) -> tuple[Any, ...]:
    """Conditions under which ``job`` is still this worker's to update (same claim, still running)."""
    return (Job.id == job.id, Job.state == "running", Job.worker_id == job.worker_id,
            Job.attempts == job.attempts)


def finish_job(db: Database, job: Job, state: str, **values: Any) -> bool:
    """Move a running job this worker claimed to a final ``state``; False when it is no longer ours."""
    assert state in FINAL_STATES, state
    now = time.time()
    with db.write() as s:
        done = _rows(s, update(Job).where(*_owned(job)).values(
            state=state, finished_at=now, updated_at=now, **values))
        if done:
            _transition(s, job.id, state, now)
    return bool(done)


def requeue_running(db: Database) -> int:
    """Put every running job back in the queue (at start-up: their worker died with the process)."""
    now = time.time()
    with db.write() as s:
        ids = list(s.scalars(select(Job.id).where(Job.state == "running")))
        for job_id in ids:
            _rows(s, update(Job).where(Job.id == job_id, Job.state == "running").values(
                state="queued", worker_id=None, progress_step=0, progress_total=0, updated_at=now))
            _transition(s, job_id, "queued", now)
    return len(ids)


def requeue_job(db: Database, job: Job) -> bool:
    """Put one running job this worker claimed back in the queue (the server is stopping)."""
    now = time.time()
    with db.write() as s:
        done = _rows(s, update(Job).where(*_owned(job)).values(
            state="queued", worker_id=None, progress_step=0, progress_total=0, updated_at=now))
        if done:
            _transition(s, job.id, "queued", now)
    return bool(done)


def counts_by_state(s: Session) -> dict[str, int]:
    """Number of jobs in each state (every state present, zero when none)."""
    counts: dict[str, int] = dict.fromkeys(JOB_STATES, 0)
    for state, n in s.execute(select(Job.state, func.count()).group_by(Job.state)):
        counts[state] = n
    return counts


def active_count(s: Session, owner: str) -> int:
    """Queued plus running jobs of ``owner``."""
    return int(s.scalar(select(func.count()).select_from(Job)
                        .where(Job.owner == owner, Job.state.in_(ACTIVE_STATES))) or 0)


API_PREFIX = "/api/v1"


def job_view(job: Job) -> JobOut:
    """The API shape of ``job``, with the URLs of its results."""
    base = f"{API_PREFIX}/generations/{job.id}"
    results = [
        ResultOut(index=i, audio_url=f"{base}/audio/{i}.wav", image_url=f"{base}/image/{i}.png",
                  downloads={fmt: f"{base}/audio/{i}.{fmt}" for fmt in AUDIO_FORMATS})
        for i in range(job.result_count if job.state == "succeeded" else 0)
    ]
    total = job.progress_total or 0
    if job.state == "succeeded":
        percent = 100.0
    else:
        percent = round(100.0 * job.progress_step / total, 1) if total else 0.0
    return JobOut(
        id=job.id, state=job.state, prompt=job.prompt, duration=job.duration, count=job.count,  # type: ignore[arg-type]
        seed=job.seed, cfg_coef=job.cfg_coef, temperature=job.temperature, top_k=job.top_k, top_p=job.top_p,
        progress=percent, step=job.progress_step, total_steps=total, error=job.error, attempts=job.attempts,
        sample_rate=job.sample_rate, elapsed=job.elapsed, created_at=job.created_at, updated_at=job.updated_at,
        started_at=job.started_at, finished_at=job.finished_at, results=results,
    )


def job_event(job: Job) -> dict[str, Any]:
    """The WebSocket message for ``job``'s current state."""
    return {"type": "job", **job_view(job).model_dump(mode="json")}
