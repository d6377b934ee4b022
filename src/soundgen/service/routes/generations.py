"""Generations: create, list, get, cancel, delete, and variations of a finished one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from fastapi.responses import JSONResponse

from soundgen.service import jobs
from soundgen.service.deps import OwnerDep, ServiceDep, SessionDep
from soundgen.service.models import Job
from soundgen.service.schemas import ErrorOut, GenerationCreate, JobOut, JobPage
from soundgen.service.storage import job_prefix

router = APIRouter(prefix="/api/v1/generations", tags=["generations"],
                   responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}})


def check_limits(service: ServiceDep, req: GenerationCreate) -> None:
    """Reject requests beyond this server's limits with a 422 that names the limit."""
    s = service.settings
    problems = []
    if not req.prompt.strip():
        problems.append("prompt: must not be blank; describe the sound, e.g. 'rain on a tin roof'")
    if len(req.prompt) > s.max_prompt_chars:
        problems.append(f"prompt: {len(req.prompt)} characters is too long; the limit is {s.max_prompt_chars}")
    if req.duration > s.max_duration:
        problems.append(f"duration: {req.duration:g} s is too long; the limit is {s.max_duration:g} s")
    if req.count > s.max_count:
        problems.append(f"count: {req.count} sounds per request is too many; the limit is {s.max_count}")
    if problems:
        raise HTTPException(422, "; ".join(problems))


def check_quota(service: ServiceDep, session: SessionDep, owner: str) -> None:
    """Per-key rate limit and concurrent-job quota; 429 with Retry-After when exceeded."""
    if not owner.startswith("key:"):
        return
    wait = service.limiter.acquire(owner)
    if wait:
        raise HTTPException(429, f"too many requests with this key; try again in {wait:.0f} s",
                            headers={"Retry-After": f"{wait:.0f}"})
    quota = service.settings.max_active_jobs_per_key
    if quota and jobs.active_count(session, owner) >= quota:
        raise HTTPException(429, f"this key already has {quota} jobs queued or running (the limit); "
                                 "wait for one to finish or cancel one", headers={"Retry-After": "5"})


def _submit(service: ServiceDep, session: SessionDep, owner: str, req: GenerationCreate,
            idempotency_key: str | None) -> JSONResponse:
    check_limits(service, req)
    check_quota(service, session, owner)
    job = jobs.create_job(service.db, owner, req, idempotency_key)
    service.worker.notify()
    event = jobs.job_event(job)
    service.bus.publish(owner, event)
    return _json(event, status.HTTP_201_CREATED)


def _json(event: dict[str, Any], code: int = 200) -> JSONResponse:
    """A job answered as JSON without validating it again (it was built as a JobOut already)."""
    body = dict(event)
    body.pop("type", None)
    return JSONResponse(body, status_code=code)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobOut,
             responses={422: {"model": ErrorOut}, 429: {"model": ErrorOut}})
def create_generation(req: GenerationCreate, service: ServiceDep, session: SessionDep, owner: OwnerDep,
                      idempotency_key: Annotated[str | None, Header(max_length=128)] = None) -> JSONResponse:
    """Queue a generation. Send an ``Idempotency-Key`` header to make retries safe (same key, same job)."""
    return _submit(service, session, owner, req, idempotency_key)


@router.get("", response_model=JobPage)
def list_generations(session: SessionDep, owner: OwnerDep, service: ServiceDep,
                     limit: Annotated[int, Query(ge=1, le=100)] = 20, cursor: str | None = None,
                     state: Annotated[list[str] | None, Query()] = None,
                     q: Annotated[str | None, Query(max_length=200)] = None) -> JobPage:
    """Your generations, newest first; filter by ``state`` (repeatable) and prompt text ``q``."""
    page = jobs.list_jobs(session, owner, limit=limit, cursor=cursor, states=state, query=q)
    return JobPage(items=[jobs.job_view(j) for j in page.jobs], next_cursor=page.next_cursor)


@router.get("/{job_id}", response_model=JobOut)
def get_generation(job_id: str, session: SessionDep, owner: OwnerDep) -> JSONResponse:
    """One generation, with progress and result links."""
    return _json(jobs.job_event(_get(session, job_id, owner)))


def _get(session: SessionDep, job_id: str, owner: str) -> Job:
    try:
        return jobs.get_job(session, job_id, owner)
    except jobs.JobNotFound:
        raise HTTPException(404, f"no generation with id {job_id} (it may have been deleted)") from None


@router.post("/{job_id}/cancel", response_model=JobOut, responses={409: {"model": ErrorOut}})
def cancel_generation(job_id: str, service: ServiceDep, owner: OwnerDep) -> JobOut:
    """Cancel: a queued job at once, a running one at its next step."""
    try:
        job = jobs.cancel_job(service.db, job_id, owner)
    except jobs.JobNotFound:
        raise HTTPException(404, f"no generation with id {job_id}") from None
    except jobs.JobConflict as e:
        raise HTTPException(409, str(e)) from None
    service.worker.cancel(job_id)
    service.bus.publish(owner, jobs.job_event(job))
    return jobs.job_view(job)


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_generation(job_id: str, service: ServiceDep, owner: OwnerDep) -> Response:
    """Delete a generation and its files (a running one is stopped first)."""
    try:
        job = jobs.delete_job(service.db, job_id, owner)
    except jobs.JobNotFound:
        raise HTTPException(404, f"no generation with id {job_id}") from None
    service.worker.cancel(job_id)
    service.storage.delete_prefix(job_prefix(job.id))
    service.bus.publish(owner, {"type": "deleted", "id": job_id})
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{job_id}/variations", status_code=status.HTTP_201_CREATED, response_model=JobOut,
             responses={429: {"model": ErrorOut}})
def create_variation(job_id: str, service: ServiceDep, session: SessionDep, owner: OwnerDep) -> JSONResponse:
    """Queue a new generation with the same prompt and options and a new random seed."""
    src = _get(session, job_id, owner)
    req = GenerationCreate(prompt=src.prompt, duration=src.duration, count=src.count, seed=None,
                           cfg_coef=src.cfg_coef, temperature=src.temperature, top_k=src.top_k, top_p=src.top_p)
    return _submit(service, session, owner, req, None)
