"""Health, readiness, Prometheus metrics, and what the page needs to know about this server."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from soundgen import __version__
from soundgen.model_files import EXAMPLE_PROMPTS
from soundgen.service import jobs
from soundgen.service.core import UNTRAINED_WARNING, Service
from soundgen.service.deps import OwnerDep, ServiceDep, SessionDep
from soundgen.service.oidc import IssuerUnavailable
from soundgen.service.schemas import (
    AUDIO_FORMATS,
    OidcInfo,
    PromptCount,
    PromptCountOut,
    ServiceInfo,
    setting_infos,
)

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def health() -> JSONResponse:
    """Liveness: the process answers (on the event loop: no thread, no database, no validation)."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
def ready(service: ServiceDep, session: SessionDep) -> JSONResponse:
    """Readiness: the database answers and takes writes, and the model is loaded (503 with the reason otherwise)."""
    try:
        session.execute(text("SELECT 1"))
        problem = service.db.write_problem()
    except Exception as e:  # noqa: BLE001 - any database failure means not ready
        problem = str(e)
    if problem is not None:
        return JSONResponse({"status": "not ready", "reason": f"database: {problem}"}, status_code=503)
    worker = service.worker
    if worker.load_error:
        return JSONResponse({"status": "not ready", "reason": f"{worker.what}: {worker.load_error}"}, status_code=503)
    if not worker.ready.is_set():
        waiting = "the model is still loading" if worker.what == "model" else "the broker was not reached yet"
        return JSONResponse({"status": "not ready", "reason": waiting}, status_code=503)
    return JSONResponse({"status": "ready", "model": service.model_name})


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(service: ServiceDep, session: SessionDep, _: OwnerDep) -> PlainTextResponse:
    """Prometheus text format: queue depth, jobs by state, generation seconds, real-time factor.

    Needs a key where the API does (a server bound beyond loopback): the counts describe every key's jobs.
    """
    body = service.metrics.render(jobs.counts_by_state(session), service.worker.busy, service.worker.ready.is_set())
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/api/v1/info", response_model=ServiceInfo, tags=["info"])
def info(service: ServiceDep) -> ServiceInfo:
    """Limits, formats, example prompts, and whether a key is needed (asked by the page first)."""
    s = service.settings
    return ServiceInfo(
        version=__version__, auth_required=s.auth_required, model=service.model_name,
        untrained_model=s.tiny_random_model, warning=UNTRAINED_WARNING if s.tiny_random_model else None,
        max_prompt_chars=s.max_prompt_chars,
        max_prompt_tokens=service.prompt_tokens.max_tokens if service.prompt_tokens is not None else None,
        max_duration=s.max_duration, max_count=s.max_count, max_batch_prompts=s.max_batch_prompts,
        max_continue_seconds=s.max_continue_seconds, max_body_bytes=s.max_body_bytes,
        settings=setting_infos(),
        formats=list(AUDIO_FORMATS), example_prompts=service.example_prompts or EXAMPLE_PROMPTS,
        oidc=_oidc_info(service),
    )


def _oidc_info(service: Service) -> OidcInfo | None:
    """The issuer's endpoints for the page's sign-in (from its discovery document, cached), or None when off."""
    if service.oidc is None:
        return None
    s = service.settings
    info = OidcInfo(issuer=service.oidc.issuer, client_id=s.oidc_client_id, scopes=s.oidc_scopes,
                    authorization_endpoint=None, token_endpoint=None, end_session_endpoint=None, problem=None)
    try:
        found = service.oidc.discovery()
    except IssuerUnavailable as e:
        return info.model_copy(update={"problem": str(e)})
    return info.model_copy(update={"authorization_endpoint": found.authorization_endpoint,
                                   "token_endpoint": found.token_endpoint,
                                   "end_session_endpoint": found.end_session_endpoint})


@router.post("/api/v1/prompts/count", response_model=PromptCountOut, tags=["info"])
def count_prompt(body: PromptCount, service: ServiceDep, _: OwnerDep) -> PromptCountOut:
    """A prompt's length in characters and in the model's text-encoder tokens, against the limits a submission
    must meet (the page shows it live as you type)."""
    counter = service.prompt_tokens
    text = body.prompt.strip()
    return PromptCountOut(chars=len(text), max_chars=service.settings.max_prompt_chars,
                          tokens=counter.count(text) if counter is not None and text else (0 if counter else None),
                          max_tokens=counter.max_tokens if counter is not None else None)
