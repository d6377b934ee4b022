"""Generations: create, list, get, cancel, delete, and variations of a finished one."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from soundgen.errors import InvalidRequestError
from soundgen.service import continuation, eta, jobs
from soundgen.service.core import Service
from soundgen.service.deps import OwnerDep, ServiceDep, SessionDep, get_owner
from soundgen.service.models import Job
from soundgen.service.schemas import ErrorOut, GenerationBatch, GenerationCreate, JobBatchOut, JobOut, JobPage
from soundgen.service.storage import job_prefix

_QUOTA_TURNS: dict[str, asyncio.Lock] = {}  # per key; one process's event loop
router = APIRouter(prefix="/api/v1/generations", tags=["generations"],
                   responses={code: {"model": ErrorOut} for code in (400, 401, 403, 404, 413, 415, 421, 503)})


def check_limits(service: ServiceDep, req: GenerationCreate) -> None:
    """Reject requests beyond this server's limits with a 422 that names the limit."""
    problems = limit_problems(service, req)
    if problems:
        raise HTTPException(422, "; ".join(problems))


def limit_problems(service: ServiceDep, req: GenerationCreate) -> list[str]:
    """What in ``req`` is beyond this server's limits, one ``"field: why"`` each (none: it may be queued)."""
    s = service.settings
    problems = []
    if not req.prompt.strip():
        problems.append("prompt: must not be blank; describe the sound, e.g. 'rain on a tin roof'")
    if len(req.prompt) > s.max_prompt_chars:
        problems.append(f"prompt: {len(req.prompt)} characters is too long; the limit is {s.max_prompt_chars}")
    if req.prompt.strip() and len(req.prompt) <= s.max_prompt_chars and service.prompt_tokens is not None:
        try:
            service.prompt_tokens.check(req.prompt)
        except InvalidRequestError as e:
            problems.append(f"prompt: {e}")
    problems += negative_prompt_problems(service, req.negative_prompt)
    if req.duration > s.max_duration:
        problems.append(f"duration: {req.duration:g} s is too long; the limit is {s.max_duration:g} s")
    if req.count > s.max_count:
        problems.append(f"count: {req.count} sounds per request is too many; the limit is {s.max_count}")
    return problems


def negative_prompt_problems(service: ServiceDep, text: str | None) -> list[str]:
    """What makes a negative prompt too long: the prompt's own limits, characters and text-encoder tokens."""
    if text is None or not text.strip():
        return []
    limit = service.settings.max_prompt_chars
    if len(text) > limit:
        return [f"negative_prompt: {len(text)} characters is too long; the limit is {limit}"]
    if service.prompt_tokens is not None:
        try:
            service.prompt_tokens.check(text)
        except InvalidRequestError as e:
            return [f"negative_prompt: {str(e).replace('the prompt', 'the negative prompt', 1)}"]
    return []


def check_quota(service: ServiceDep, owner: str, adding: int = 1) -> None:
    """Per-key rate limit and concurrent-job quota (for ``adding`` more jobs); 429 with Retry-After when exceeded."""
    if not owner.startswith("key:"):
        return
    wait = service.limiter.acquire(owner)
    if wait:
        raise HTTPException(429, f"too many requests with this key; try again in {wait:.0f} s",
                            headers={"Retry-After": f"{wait:.0f}"})
    quota = service.settings.max_active_jobs_per_key
    if quota:
        with service.db.session() as session:
            active = jobs.active_count(session, owner)
        if active + adding > quota:
            if adding > quota:
                raise HTTPException(429, f"{adding} jobs at once is more than this key may have queued or running "
                                         f"({quota}); send fewer prompts")
            raise HTTPException(429, f"this key already has {active} jobs queued or running and may have {quota}; "
                                     "wait for one to finish or cancel one", headers={"Retry-After": "5"})


async def _submit(service: ServiceDep, owner: str, req: GenerationCreate, idempotency_key: str | None,
                  prompt: continuation.PromptAudio | None = None) -> JSONResponse:
    """Queue a job and answer it; ``prompt`` is the audio it continues (else read from ``req``, if it names any).

    Async end to end: the common case (no key, so no quota to read, no audio) never enters the thread pool, and the
    row itself is committed by the batcher's writer thread together with the other submissions waiting.
    """
    check_limits(service, req)
    if prompt is None and continuation.wants_audio(req):
        prompt = await run_in_threadpool(_prompt_audio, service, owner, req)
    if owner.startswith("key:"):
        # One submission of a key at a time between the quota check and the insert, or ten at once would all
        # read the same count and all pass a quota of eight.
        async with _QUOTA_TURNS.setdefault(owner, asyncio.Lock()):
            await run_in_threadpool(check_quota, service, owner)
            values = await _insert(service, owner, req, idempotency_key, prompt)
    else:
        values = await _insert(service, owner, req, idempotency_key, prompt)
    service.worker.notify([values["id"]])
    body = jobs.job_json(values)
    if service.bus.wants(owner, body["id"]):
        service.bus.publish(owner, {"type": "job", **body})
    return JSONResponse(body, status_code=status.HTTP_201_CREATED)


def _prompt_audio(service: Service, owner: str, req: GenerationCreate) -> continuation.PromptAudio:
    try:
        return continuation.prompt_audio(req, owner, service.db, service.storage, service.settings.max_continue_seconds)
    except InvalidRequestError as e:
        raise HTTPException(422, str(e)) from None


async def _insert(service: Service, owner: str, req: GenerationCreate, idempotency_key: str | None,
                  prompt: continuation.PromptAudio | None) -> dict[str, Any]:
    """Insert the job; a continuation's audio is stored first, under the id the job will have, so that the worker
    never claims a job whose audio is not there yet."""
    if prompt is None:
        return await jobs.create_job_async(service.db, owner, req, idempotency_key)
    job_id = uuid.uuid4().hex
    await run_in_threadpool(service.storage.put, continuation.prompt_key(job_id), prompt.wav)
    try:
        values = await jobs.create_job_async(service.db, owner, req, idempotency_key, id=job_id,
                                             continues=prompt.source, prompt_seconds=prompt.seconds)
    except BaseException:
        await run_in_threadpool(service.storage.delete_prefix, job_prefix(job_id))
        raise
    if values["id"] != job_id:  # a retry (same Idempotency-Key): the first submission's job and audio stand
        await run_in_threadpool(service.storage.delete_prefix, job_prefix(job_id))
    return values


_CREATE_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True,
                    "content": {"application/json": {"schema": GenerationCreate.model_json_schema()}}},
    "parameters": [{"name": "idempotency-key", "in": "header", "required": False,
                    "schema": {"type": "string", "maxLength": 128},
                    "description": "retries with the same key get the same job instead of a new one"}],
}


def parse_create(body: bytes, idempotency_key: str | None) -> GenerationCreate:
    """The request body as a GenerationCreate; a 422 in FastAPI's own shape when it is not one.

    Raises:
        RequestValidationError: the body is not valid JSON, misses or breaks a field, or the key is too long.
    """
    errors: list[Any] = []
    req = None
    if not body.strip():
        errors.append({"type": "missing", "loc": ("body",), "msg": "Field required", "input": None})
    else:
        try:
            req = GenerationCreate.model_validate_json(body)
        except ValidationError as e:
            errors += [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]
    errors += key_errors(idempotency_key)
    if errors or req is None:
        raise RequestValidationError(errors)
    return req


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobOut, openapi_extra=_CREATE_OPENAPI,
             responses={422: {"model": ErrorOut}, 429: {"model": ErrorOut}})
async def create_generation(request: Request) -> JSONResponse:
    """Queue a generation. Send an ``Idempotency-Key`` header to make retries safe (same key, same job)."""
    # The busiest write of the API reads its body and header itself: FastAPI's parameter machinery costs
    # more than the validation, and fifty submissions at once wait for each other's share of it.
    service: Service = request.app.state.service
    owner = await get_owner(request, service)
    key = request.headers.get("idempotency-key")
    return await _submit(service, owner, parse_create(await request.body(), key), key)


def key_errors(idempotency_key: str | None) -> list[dict[str, Any]]:
    """The validation error of an ``Idempotency-Key`` header over 128 characters (none when it is fine)."""
    if idempotency_key is None or len(idempotency_key) <= 128:
        return []
    return [{"type": "string_too_long", "loc": ("header", "idempotency-key"),
             "msg": "String should have at most 128 characters", "input": idempotency_key, "ctx": {"max_length": 128}}]


def parse_batch(service: Service, body: bytes) -> list[GenerationCreate]:
    """The prompts of a batch, each with the shared fields, as GenerationCreate requests (in order).

    Raises:
        RequestValidationError: the body is not a JSON object with a list of strings as ``prompts``.
        BatchRefused: a field or a line is wrong (every wrong line is named, 1 being the first prompt).
    """
    try:
        batch = GenerationBatch.model_validate_json(body if body.strip() else b"null")
    except ValidationError as e:
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]
                                     ) from None
    shared = dict(batch.model_extra or {})
    if "prompt" in shared:
        raise BatchRefused("prompt: a batch takes 'prompts', a list of one prompt per line; one prompt goes to "
                           "POST /api/v1/generations")
    if "continue_from" in shared or "audio_prompt" in shared:
        raise BatchRefused("continue_from: a batch cannot continue audio; send each continuation on its own to "
                           "POST /api/v1/generations")
    limit = service.settings.max_batch_prompts
    if len(batch.prompts) > limit:
        raise BatchRefused(f"prompts: {len(batch.prompts)} prompts is too many for one request; the limit is {limit}")
    reqs: list[GenerationCreate] = []
    common: dict[str, None] = {}  # the problems of shared fields, once each, in order
    lines: list[tuple[int, str]] = []
    for line, prompt in enumerate(batch.prompts, 1):
        try:
            req = GenerationCreate.model_validate({**shared, "prompt": prompt})
        except ValidationError as e:
            problems = [f"{'.'.join(map(str, err['loc'])) or 'request'}: {err['msg']}" for err in e.errors()]
        else:
            reqs.append(req)
            problems = limit_problems(service, req)
        for p in problems:
            if p.startswith("prompt:"):
                lines.append((line, p.removeprefix("prompt:").strip()))
            else:
                common[p] = None
    if common or lines:
        raise BatchRefused("; ".join([*common, *(f"line {n}: {why}" for n, why in lines)]), lines)
    return reqs


class BatchRefused(Exception):
    """A batch that cannot be queued: ``message`` says why, ``lines`` which prompts (1-based) and why each."""

    def __init__(self, message: str, lines: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.lines = lines or []


@router.post("/batch", status_code=status.HTTP_201_CREATED, response_model=JobBatchOut,
             openapi_extra={**_CREATE_OPENAPI, "requestBody": {
                 "required": True, "content": {"application/json": {"schema": GenerationBatch.model_json_schema()}}}},
             responses={422: {"model": ErrorOut}, 429: {"model": ErrorOut}})
async def create_batch(request: Request) -> JSONResponse:
    """Queue one generation per prompt of ``prompts`` (the other fields shared), in order, all or none: a refusal
    names each wrong line (``"line 3: the prompt is 80 tokens long..."``; ``lines`` lists them)."""
    service: Service = request.app.state.service
    owner = await get_owner(request, service)
    key = request.headers.get("idempotency-key")
    if key_errors(key):
        raise RequestValidationError(key_errors(key))
    try:
        reqs = parse_batch(service, await request.body())
    except BatchRefused as e:
        return JSONResponse({"error": str(e), "lines": [{"line": n, "error": why} for n, why in e.lines]},
                            status_code=422)
    if owner.startswith("key:"):
        async with _QUOTA_TURNS.setdefault(owner, asyncio.Lock()):
            await run_in_threadpool(check_quota, service, owner, len(reqs))
            created = await jobs.create_jobs_async(service.db, owner, reqs, key)
    else:
        created = await jobs.create_jobs_async(service.db, owner, reqs, key)
    service.worker.notify([values["id"] for values in created])
    bodies = [jobs.job_json(values) for values in created]
    for body in bodies:
        if service.bus.wants(owner, body["id"]):
            service.bus.publish(owner, {"type": "job", **body})
    return JSONResponse({"items": bodies}, status_code=status.HTTP_201_CREATED)


@router.get("", response_model=JobPage)
def list_generations(session: SessionDep, owner: OwnerDep, service: ServiceDep,
                     limit: Annotated[int, Query(ge=1, le=100)] = 20, cursor: str | None = None,
                     state: Annotated[list[str] | None, Query()] = None,
                     q: Annotated[str | None, Query(max_length=200)] = None) -> JobPage:
    """Your generations, newest first; filter by ``state`` (repeatable) and prompt text ``q``."""
    page = jobs.list_jobs(session, owner, limit=limit, cursor=cursor, states=state, query=q)
    return JobPage(items=[JobOut.model_validate(_placed(service, jobs.job_json(j))) for j in page.jobs],
                   next_cursor=page.next_cursor)


def _placed(service: Service, body: dict[str, Any]) -> dict[str, Any]:
    """A job's body with its queue position and time to finish."""
    return eta.with_place(body, service.db, service.worker.speed, service.settings.workers)


@router.get("/{job_id}", response_model=JobOut)
async def get_generation(job_id: str, service: ServiceDep, owner: OwnerDep) -> JSONResponse:
    """One generation, with progress and result links."""
    # The status poll is the most frequent request. On SQLite a read by primary key takes microseconds and
    # never waits for a writer (WAL), so it runs on the event loop: cheaper than a trip through the thread
    # pool. A database across the network is read in a thread instead.
    # A queued job's place in the queue takes two more reads.
    try:
        if service.db.serializes_writes:
            job = jobs.read_job(service.db, job_id, owner)
            body = _placed(service, jobs.job_json(job))
        else:
            job = await run_in_threadpool(jobs.read_job, service.db, job_id, owner)
            body = await run_in_threadpool(_placed, service, jobs.job_json(job))
    except jobs.JobNotFound:
        raise HTTPException(404, f"no generation with id {job_id} (it may have been deleted)") from None
    return JSONResponse(body)


def _get_job(service: ServiceDep, job_id: str, owner: str) -> Job:
    with service.db.session() as session:
        return _get(session, job_id, owner)


def _get(session: SessionDep, job_id: str, owner: str) -> Job:
    try:
        return jobs.get_job(session, job_id, owner)
    except jobs.JobNotFound:
        raise HTTPException(404, f"no generation with id {job_id} (it may have been deleted)") from None


@router.post("/{job_id}/cancel", response_model=JobOut, responses={409: {"model": ErrorOut}})
def cancel_generation(job_id: str, service: ServiceDep, owner: OwnerDep) -> JobOut:
    """Cancel: a queued job at once, a running one at its next step (one past its last step ends cancelled, its
    sounds discarded); 409 "too late to cancel" when it has ended."""
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
async def create_variation(job_id: str, service: ServiceDep, owner: OwnerDep) -> JSONResponse:
    """Queue a new generation with the same prompt and options (and audio, for a continuation) and a new random
    seed."""
    src = await run_in_threadpool(_get_job, service, job_id, owner)
    req = GenerationCreate(prompt=src.prompt, duration=src.duration, count=src.count, seed=None,
                           cfg_coef=src.cfg_coef, temperature=src.temperature, top_k=src.top_k, top_p=src.top_p,
                           negative_prompt=src.negative_prompt)
    prompt = None
    if src.continues is not None:  # it continues the same audio
        key = continuation.prompt_key(src.id)
        if not await run_in_threadpool(service.storage.exists, key):
            raise HTTPException(409, f"the audio generation {job_id} continued is gone from storage; continue it again")
        wav = await run_in_threadpool(service.storage.get, key)
        prompt = continuation.PromptAudio(wav, src.prompt_seconds or 0.0, src.continues)
    return await _submit(service, owner, req, None, prompt)
