"""Build the FastAPI application: one process with the API, the page, the database and a worker.

Only assembly lives here (the service state, routes, guards, error handlers, start and stop); what the routes
need of the service is in ``core.py``, which they import instead of this module.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from soundgen import __version__
from soundgen.errors import ModelNotFoundError, SoundgenError
from soundgen.service.core import UNTRAINED_WARNING, Service, default_generator
from soundgen.service.db import DatabaseUnavailableError, migrate
from soundgen.service.settings import ServiceSettings
from soundgen.service.worker import Generator

__all__ = ["UNTRAINED_WARNING", "Service", "check_model_available", "create_app", "default_generator"]

log = logging.getLogger(__name__)


def check_model_available(settings: ServiceSettings) -> None:
    """Fail fast, before binding a port, when no model is there to serve.

    Raises:
        ModelNotFoundError: no ``--model`` directory and no bundled model.
    """
    if settings.tiny_random_model:
        return
    from soundgen.model_files import default_model_dir

    try:
        if settings.model_dir is None:
            default_model_dir()
        elif not (Path(settings.model_dir) / "lm" / "config.json").is_file():
            raise ModelNotFoundError(f"{settings.model_dir} is not a model directory (no lm/config.json); pass "
                                     "--model DIR with a directory made by 'soundgen lm export'")
    except ModelNotFoundError as e:
        raise ModelNotFoundError(f"no model to serve: {e}; or try the service with --tiny-random-model "
                                 "(an untrained model: its output is noise)") from e


def create_app(settings: ServiceSettings, load_generator: Callable[[], Generator] | None = None) -> FastAPI:
    """The application for ``settings``; ``load_generator`` overrides how the model is loaded."""
    service = Service(settings, load_generator)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The worker thread runs Python code between torch calls; a shorter GIL switch interval (default
        # 5 ms) lets request threads in sooner, which keeps API latency low while a generation runs.
        sys.setswitchinterval(settings.switch_interval)
        await asyncio.to_thread(_start, service)
        service.bus.bind(asyncio.get_running_loop())
        service.worker.start()
        # Everything loaded so far lives as long as the server: keep it out of the garbage collector's scans.
        gc.collect()
        gc.freeze()
        yield
        await asyncio.to_thread(service.worker.stop)
        close = getattr(service.worker.generator, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
        service.bus.close()
        service.db.dispose()

    app = FastAPI(title="soundgen", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Generate sounds from text. Jobs are queued, run by a worker and pushed to "
                              "WebSocket subscribers; results download as WAV, FLAC, OGG/Opus or MP3.\n\n"
                              + _limits_text(settings))
    app.state.service = service
    _add_error_handlers(app)
    _add_guards(app, settings)
    from soundgen.service.routes import events, generations, results, system, web

    for module in (generations, results, events, system, web):
        app.include_router(module.router)
    from soundgen.service.gql import graphql_router  # /graphql beside REST, on the same routes and auth

    app.include_router(graphql_router(settings.cors_origins))
    web.mount_static(app)
    return app


def _start(service: Service) -> None:
    migrate(service.db.engine)
    _ = service.prompt_tokens  # the tokenizer is read now, not by the first submission
    service.worker.speed.seed(service.db)  # the speed of the jobs done before: queue estimates survive a restart
    # Jobs that were running when a server stopped go back to the queue once their lease runs out (the worker's
    # heartbeat reaps them): not at start-up, where another server may still be running them.


def _limits_text(settings: ServiceSettings) -> str:
    """This server's limits, for the OpenAPI description (the page reads them from /api/v1/info)."""
    s = settings
    rate = f"{s.rate_limit_per_minute:g} submissions a minute" if s.rate_limit_per_minute else "no rate limit"
    quota = f"{s.max_active_jobs_per_key} active jobs" if s.max_active_jobs_per_key else "no job quota"
    return (f"**Limits of this server**: prompts of at most {s.max_prompt_chars} characters, at most "
            f"{s.max_duration:g} s and {s.max_count} sounds per request, request bodies of at most "
            f"{s.max_body_bytes} bytes (413), sent as application/json (415); per API key {rate} (burst "
            f"{s.rate_limit_burst}) and {quota} (429). Requests naming another host get 421, cross-site ones 403; "
            "a database that cannot be used gives 503.")


def _add_guards(app: FastAPI, settings: ServiceSettings) -> None:
    """Host, origin, content-type and size checks (service/guard.py); CORS only for the origins named."""
    from soundgen.service.guard import RequestGuard

    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key"])
    app.add_middleware(RequestGuard, settings=settings)  # added last: runs first


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
            parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
        return JSONResponse({"error": "; ".join(parts), "detail": jsonable(exc.errors())}, status_code=422)

    @app.exception_handler(SoundgenError)
    async def soundgen_error(_: Request, exc: SoundgenError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(DatabaseUnavailableError)
    async def database_gone(_: Request, exc: DatabaseUnavailableError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=503, headers={"Retry-After": "30"})

    @app.exception_handler(OperationalError)
    async def database_error(_: Request, exc: OperationalError) -> JSONResponse:
        # A read-only or full disk, a lost database server: not the request's fault, and not a bug here.
        return JSONResponse({"error": f"the database cannot be used right now: {exc.orig}"}, status_code=503,
                            headers={"Retry-After": "30"})


def jsonable(errors: object) -> object:
    """Validation errors with anything non-JSON turned into strings: exception objects in ``ctx``, the bytes of
    a body that is not UTF-8, and NaN or infinite numbers (JSON has none)."""
    from fastapi.encoders import jsonable_encoder

    def clean(x: object) -> object:
        if isinstance(x, bytes | bytearray):
            return bytes(x).decode("utf-8", "backslashreplace")
        if isinstance(x, float) and not math.isfinite(x):
            return str(x)
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        return x

    return jsonable_encoder(clean(errors), custom_encoder={Exception: str})
