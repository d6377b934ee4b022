"""Jobs in the database: create, read, list, cancel, delete, and the worker's atomic claim/finish.

The database is the source of truth. Every state change is one conditional ``UPDATE`` (so two workers,
threads or processes, can never claim or finish the same job twice) plus one row in ``job_transitions``.
Nothing here is SQLite-specific: the same statements run on PostgreSQL, where a claim also locks the row it
picks and skips rows other claimers hold (``FOR UPDATE SKIP LOCKED``), so concurrent workers take different jobs
instead of racing for the oldest one.

A claim is a lease (``lease_until``): the worker running a job moves it on while it runs (:func:`extend_lease`),
and :func:`reap_expired`, which any server or worker may run, puts a job whose lease ran out back in the queue
(its worker died or lost the database). A late write of a worker that lost its lease changes nothing: every
update of a running job names the claim (worker and attempt) it was made under.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, false, func, insert, select, update
from sqlalchemy.orm import Session

from soundgen.errors import InvalidRequestError
from soundgen.lm.sampling_params import SEED
from soundgen.service.batching import batcher_of
from soundgen.service.db import Database
from soundgen.service.models import ACTIVE_STATES, FINAL_STATES, JOB_STATES, Job, JobTransition
from soundgen.service.schemas import AUDIO_FORMATS, GenerationCreate, JobOut


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


def new_job_values(owner: str, req: GenerationCreate, idempotency_key: str | None = None) -> dict[str, Any]:
    """Every column of a new queued job for ``req`` (a random seed when the request names none)."""
    now = time.time()
    seed = req.seed if req.seed is not None else secrets.randbelow(int(SEED.maximum) + 1)
    return dict(
        id=uuid.uuid4().hex, owner=owner, state="queued", prompt=req.prompt.strip(),
        negative_prompt=(req.negative_prompt or "").strip() or None, continues=None, prompt_seconds=None,
        duration=req.duration,
        count=req.count, seed=seed, cfg_coef=req.cfg_coef, temperature=req.temperature, top_k=req.top_k,
        top_p=req.top_p, idempotency_key=idempotency_key, progress_step=0, progress_total=0,
        cancel_requested=False, attempts=0, worker_id=None, error=None, result_count=0, sample_rate=None,
        result_duration=None, elapsed=None, created_at=now, updated_at=now, started_at=None, finished_at=None,
        lease_until=None, dispatched_at=None,
    )


def create_job(db: Database, owner: str, req: GenerationCreate, idempotency_key: str | None = None) -> Job:
    """Insert a queued job; a repeated ``idempotency_key`` returns the job it created the first time."""
    values = batcher_of(db).insert(new_job_values(owner, req, idempotency_key))
    return Job(**values)


async def create_job_async(db: Database, owner: str, req: GenerationCreate,
                           idempotency_key: str | None = None, **columns: Any) -> dict[str, Any]:
    """:func:`create_job` for the event loop: the columns of the new (or earlier, same key) job; ``columns``
    replace those :func:`new_job_values` makes (a continuation's ``id``, ``continues``, ``prompt_seconds``).

    The row is committed by the batcher's writer thread, together with the other submissions waiting.
    """
    return await batcher_of(db).insert_async({**new_job_values(owner, req, idempotency_key), **columns})


async def create_jobs_async(db: Database, owner: str, reqs: list[GenerationCreate],
                            idempotency_key: str | None = None) -> list[dict[str, Any]]:
    """Queue one job per request, in order (they start in this order); a repeated ``idempotency_key`` returns the
    jobs it created the first time."""
    values = [new_job_values(owner, req, _line_key(idempotency_key, i)) for i, req in enumerate(reqs)]
    for i, v in enumerate(values[1:], 1):  # strictly later than the one before: the claim order is the line order
        v["created_at"] = v["updated_at"] = max(v["created_at"], values[i - 1]["created_at"] + 1e-5)
    return list(await asyncio.gather(*(batcher_of(db).insert_async(v) for v in values)))


def _line_key(key: str | None, line: int) -> str | None:
    """The idempotency key of one line of a batch (a column of 128 characters, like the header)."""
    return None if key is None else f"batch:{hashlib.sha256(key.encode()).hexdigest()[:48]}:{line}"


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

    A running job asked to cancel never ends ``succeeded`` (see :func:`finish_job`): a cancel that comes after
    its last step discards the sounds made instead of being silently ignored.

    Raises:
        JobNotFound: no such job for this owner.
        JobConflict: the job has already ended.
    """
    now = time.time()
    with db.write() as s:
        job = get_job(s, job_id, owner)
        if job.state in FINAL_STATES:
            raise JobConflict(f"too late to cancel: job {job_id} has already ended ({job.state})")
        done = _rows(s, update(Job).where(Job.id == job_id, Job.state == "queued")
                         .values(state="cancelled", finished_at=now, updated_at=now,
                                 error="cancelled before it started"))
        if done:
            _transition(s, job_id, "cancelled", now)
        elif not _rows(s, update(Job).where(Job.id == job_id, Job.state == "running")
                       .values(cancel_requested=True, updated_at=now)):
            raise JobConflict(f"too late to cancel: job {job_id} has just ended")
    with db.session() as s:
        return get_job(s, job_id, owner)


def delete_job(db: Database, job_id: str, owner: str | None) -> Job:
    """Delete a job's row (a running one is asked to stop first); returns the deleted job."""
    with db.write() as s:
        job = get_job(s, job_id, owner)
        s.delete(job)
    return job


_T = cast(Table, Job.__table__)
_TRANSITIONS = cast(Table, JobTransition.__table__)
# FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite has no row locks and renders nothing (its writers take turns).
_OLDEST_QUEUED = (select(_T.c.id).where(_T.c.state == "queued").order_by(_T.c.created_at, _T.c.id).limit(1)
                  .with_for_update(skip_locked=True))
# One statement claims and returns the job (RETURNING: SQLite >= 3.35 and PostgreSQL); it only succeeds while
# the job is still queued, so two claimers never both get it.
_CLAIM = (update(_T).where(_T.c.id == bindparam("claim_id"), _T.c.state == "queued")
          .values(state="running", worker_id=bindparam("claimer"), attempts=_T.c.attempts + 1,
                  started_at=bindparam("claim_at"), updated_at=bindparam("claim_at"), progress_step=0,
                  progress_total=0, lease_until=bindparam("lease_until"))
          .returning(*_T.columns))
_INSERT_TRANSITION = insert(_TRANSITIONS)
LEASE_SECONDS = 30.0  # ServiceSettings.lease_seconds's default


def claim_job(db: Database, job_id: str, worker_id: str, lease_seconds: float = LEASE_SECONDS) -> Job | None:
    """Claim the queued job ``job_id`` for ``worker_id`` (a broker's task names its job); None when it is not
    queued (already running elsewhere, ended, cancelled or deleted: the task has nothing to do)."""
    now = time.time()
    with db.writer_turn(), db.engine.begin() as conn:
        row = conn.execute(_CLAIM, {"claim_id": job_id, "claimer": worker_id, "claim_at": now,
                                    "lease_until": now + lease_seconds}).mappings().first()
        if row is None:
            return None
        conn.execute(_INSERT_TRANSITION, {"job_id": job_id, "state": "running", "at": now})
    return Job(**row)


def claim_next(db: Database, worker_id: str, lease_seconds: float = LEASE_SECONDS) -> Job | None:
    """Atomically move the oldest queued job to running for ``worker_id``; None when the queue is empty.

    Core statements on one connection (the worker's per-job database work competes with API requests for
    the server's GIL); the job comes back as a detached ``Job``.
    """
    now = time.time()
    for _ in range(5):
        with db.writer_turn(), db.engine.begin() as conn:
            oldest = conn.execute(_OLDEST_QUEUED).scalar()
            if oldest is None:
                return None
            row = conn.execute(_CLAIM, {"claim_id": oldest, "claimer": worker_id, "claim_at": now,
                                        "lease_until": now + lease_seconds}).mappings().first()
            if row is not None:
                conn.execute(_INSERT_TRANSITION, {"job_id": oldest, "state": "running", "at": now})
                return Job(**row)
    return None  # lost five races in a row: let the caller poll again


def record_progress(db: Database, job: Job, step: int, total: int, lease_seconds: float | None = None) -> bool:
    """Store the progress of a running job (and renew its lease, when ``lease_seconds`` is given: the write is made
    anyway); False when the job was deleted or taken away meanwhile."""
    now = time.time()
    lease = {} if lease_seconds is None else {"lease_until": now + lease_seconds}
    with db.write() as s:
        return bool(_rows(s, update(Job).where(*_owned(job)).values(
            progress_step=step, progress_total=total, updated_at=now, **lease)))


def cancel_requested(db: Database, job_id: str) -> bool:
    """Whether someone asked to cancel ``job_id`` (True also when the job was deleted)."""
    with db.session() as s:
        flag = s.scalar(select(Job.cancel_requested).where(Job.id == job_id))
    return flag is None or bool(flag)


def _owned(job: Job) -> tuple[Any, ...]:
    """Conditions under which ``job`` is still this worker's to update (same claim, still running)."""
    return (Job.id == job.id, Job.state == "running", Job.worker_id == job.worker_id,
            Job.attempts == job.attempts)


def _owned_columns(job: Job) -> list[Any]:
    """:func:`_owned` in Core columns."""
    return [_T.c.id == job.id, _T.c.state == "running", _T.c.worker_id == job.worker_id,
            _T.c.attempts == job.attempts]


def finish_job(db: Database, job: Job, state: str, **values: Any) -> bool:
    """Move a running job this worker claimed to a final ``state``; False when it is no longer ours, or when it
    would be ``succeeded`` but a cancel was asked for meanwhile (the worker then ends it ``cancelled``)."""
    assert state in FINAL_STATES, state
    now = time.time()
    owned = _owned_columns(job)
    values = {**values, "lease_until": None}
    if state == "succeeded":  # the same statement as the cancel's UPDATE decides which of the two came first
        owned.append(_T.c.cancel_requested == false())
    with db.writer_turn(), db.engine.begin() as conn:
        done = conn.execute(update(_T).where(*owned).values(
            state=state, finished_at=now, updated_at=now, **values)).rowcount
        if done:
            conn.execute(_INSERT_TRANSITION, {"job_id": job.id, "state": state, "at": now})
    return bool(done)


def extend_lease(db: Database, job: Job, lease_seconds: float = LEASE_SECONDS) -> bool:
    """Move the lease of a running job this worker claimed on to ``lease_seconds`` from now (the heartbeat);
    False when the job is no longer this claim's (ended, deleted, or reaped after its lease ran out)."""
    with db.writer_turn(), db.engine.begin() as conn:
        done = conn.execute(update(_T).where(*_owned_columns(job)).values(lease_until=time.time() + lease_seconds))
    return bool(done.rowcount)


_REQUEUED = dict(state="queued", worker_id=None, progress_step=0, progress_total=0, lease_until=None,
                 dispatched_at=None)


def reap_expired(db: Database) -> list[str]:
    """Put every running job whose lease ran out back in the queue and return their ids; safe to run on every
    server at once (each job is requeued by exactly one of them). A running job without a lease (written before
    leases existed) counts as lost."""
    now = time.time()
    lost = (_T.c.state == "running") & (_T.c.lease_until.is_(None) | (_T.c.lease_until < now))
    with db.writer_turn(), db.engine.begin() as conn:
        ids = [r[0] for r in conn.execute(update(_T).where(lost).values(updated_at=now, **_REQUEUED)
                                          .returning(_T.c.id))]
        for job_id in ids:
            conn.execute(_INSERT_TRANSITION, {"job_id": job_id, "state": "queued", "at": now})
    return ids


def mark_dispatched(db: Database, job_ids: list[str]) -> None:
    """Record that the broker has a task for each queued job of ``job_ids``."""
    if job_ids:
        with db.writer_turn(), db.engine.begin() as conn:
            conn.execute(update(_T).where(_T.c.id.in_(job_ids), _T.c.state == "queued")
                         .values(dispatched_at=time.time()))


def undispatched(db: Database, older_than: float, sent_before: float, limit: int = 500) -> list[str]:
    """Queued jobs to send (again), oldest first: those recorded before ``older_than`` whose task was never sent
    (the server that took them stopped before it could, or the broker was down), and those whose task was sent
    before ``sent_before`` and never taken (a broker that lost its data)."""
    never = _T.c.dispatched_at.is_(None) & (_T.c.created_at < older_than)
    with db.engine.connect() as conn:
        return [r[0] for r in conn.execute(
            select(_T.c.id).where(_T.c.state == "queued", never | (_T.c.dispatched_at < sent_before))
            .order_by(_T.c.created_at, _T.c.id).limit(limit))]


def requeue_job(db: Database, job: Job) -> bool:
    """Put one running job this worker claimed back in the queue (the server is stopping)."""
    now = time.time()
    with db.write() as s:
        done = _rows(s, update(Job).where(*_owned(job)).values(updated_at=now, **_REQUEUED))
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
    return JobOut.model_validate(job_json(job))


COLUMNS: tuple[str, ...] = tuple(c.key for c in Job.__table__.columns)
_READ_ONE = select(*Job.__table__.columns).where(Job.__table__.c.id == bindparam("job_id"))


def read_job(db: Database, job_id: str, owner: str | None) -> dict[str, Any]:
    """The columns of job ``job_id`` as a dict: one cached Core statement, no ORM objects (the status poll).

    Raises:
        JobNotFound: no such job, or it belongs to someone else.
    """
    with db.engine.connect() as conn:
        row = conn.execute(_READ_ONE, {"job_id": job_id}).mappings().first()
    if row is None or (owner is not None and row["owner"] != owner):
        raise JobNotFound(job_id)
    return dict(row)


def job_json(job: Job | dict[str, Any]) -> dict[str, Any]:
    """The API shape of a job (what ``JobOut`` serializes to), built directly: the hot paths skip pydantic.

    ``job`` is an ORM object or a dict of its columns.
    """
    j = job if isinstance(job, dict) else {c: getattr(job, c) for c in COLUMNS}
    job_id, state = j["id"], j["state"]
    base = f"{API_PREFIX}/generations/{job_id}"
    results = [
        {"index": i, "audio_url": f"{base}/audio/{i}.wav", "image_url": f"{base}/image/{i}.png",
         "downloads": {fmt: f"{base}/audio/{i}.{fmt}" for fmt in AUDIO_FORMATS}}
        for i in range((j["result_count"] or 0) if state == "succeeded" else 0)
    ]
    step, total = j["progress_step"] or 0, j["progress_total"] or 0
    if state == "succeeded":
        percent = 100.0
    else:
        percent = round(100.0 * step / total, 1) if total else 0.0
    return {
        "id": job_id, "state": state, "prompt": j["prompt"], "duration": float(j["duration"]), "count": j["count"],
        "seed": j["seed"], "cfg_coef": float(j["cfg_coef"]), "temperature": float(j["temperature"]),
        "top_k": j["top_k"], "top_p": float(j["top_p"]), "negative_prompt": j["negative_prompt"],
        "continues": j["continues"], "prompt_seconds": _opt_float(j["prompt_seconds"]),
        "progress": percent, "step": step, "total_steps": total,
        "error": j["error"], "attempts": j["attempts"], "sample_rate": j["sample_rate"],
        "elapsed": _opt_float(j["elapsed"]), "created_at": float(j["created_at"]),
        "updated_at": float(j["updated_at"]), "started_at": _opt_float(j["started_at"]),
        "finished_at": _opt_float(j["finished_at"]), "queue_position": None, "eta_seconds": None, "results": results,
        "archive_url": f"{base}/sounds.zip" if results else None,
    }


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def job_event(job: Job | dict[str, Any]) -> dict[str, Any]:
    """The WebSocket message for ``job``'s current state."""
    return {"type": "job", **job_json(job)}
